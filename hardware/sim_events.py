"""Expand a plain useq ``MDASequence`` into SIM pattern events.

Each acquire event becomes ``n_patterns`` events (index ``sim`` = 0…n−1, orientation-major),
each setting the pattern device's state. Consecutive events that differ only in sequenceable
properties are then hardware-sequenced by pymmcore-plus's engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    import useq


def expand_sim_events(
    events: Iterable[useq.MDAEvent],
    n_patterns: int = 9,
    pattern_device: str = "Pattern",
    pattern_property: str = "Pattern",
    state_format: str = "{index}",
) -> list[useq.MDAEvent]:
    """Expand ``events`` (an MDASequence or any iterable of events) into SIM events, a list.

    A list, not a generator: ``core.mda.run`` skips its event iterator (and so hardware
    sequencing) when handed a generator. Pattern state ``k`` is ``state_format.format(index=k)``.
    """
    if n_patterns < 1:
        raise ValueError(f"n_patterns must be ≥ 1, got {n_patterns}")
    out: list[useq.MDAEvent] = []
    for event in events:
        for k in range(n_patterns):
            state = state_format.format(index=k)
            props = (*(event.properties or ()), (pattern_device, pattern_property, state))
            out.append(event.model_copy(update={"index": {**event.index, "sim": k},
                                                "properties": props}))
    return out
