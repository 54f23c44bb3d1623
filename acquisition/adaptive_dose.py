"""Closed-loop dose: each channel's laser power follows its trust signal, set by set.

A channel with ``dose: {mode: adaptive}`` starts at its ``power_mw``. After each of its SR sets
is judged (:mod:`acquisition.trust`), the power for its next time point is lowered by
``step_down`` when the set's trust is at or above the threshold (plus ``margin``), raised by
``step_up`` when it is below, always within ``min_power_mw`` … ``max_power_mw`` and the laser's
own limit: the run settles at the least excitation at which the reconstruction stays trusted.
The SR of a set arrives after the next sets have started, so a change takes effect a few sets
late. The power is set on the engine's thread before each set's camera sequence (time points
at an interval > 0 are separate sequences), and every set's power and dose is recorded:
``run.json``'s ``summary.dose_control``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import useq

    from acquisition.protocol import ChannelSpec, Protocol
    from acquisition.set_info import SetInfo
    from hardware.microscope import Microscope
    from inference.streaming import StreamResult

__all__ = ["DoseController"]


class DoseController:
    """The powers of a run's channels, fixed or adapted to each set's trust.

    Parameters
    ----------
    protocol
        The run's protocol (channels, their dose settings, exposure, frames per set).
    scope
        The microscope whose lasers are set.
    """

    def __init__(self, protocol: Protocol, scope: Microscope) -> None:
        self._lock = threading.Lock()
        self._scope = scope
        self._frames = protocol.frames_per_set
        self._channels: dict[str, ChannelSpec] = {c.preset: c for c in protocol.channels}
        self._lines = {c.preset: scope.channel_line(c.preset) for c in protocol.channels}
        self._power: dict[str, float] = {c.preset: c.power_mw for c in protocol.channels}
        self._bounds: dict[str, tuple[float, float]] = {}
        for channel in protocol.channels:
            laser_max = scope.lasers[self._lines[channel.preset]].max_power_mw
            high = min(channel.dose.max_power_mw or laser_max, laser_max)
            self._bounds[channel.preset] = (min(channel.dose.min_power_mw, high), high)
        self._applied: set[tuple[Any, ...]] = set()
        self._sets: dict[str, dict[str, list[Any]]] = {}

    @property
    def adaptive(self) -> bool:
        """Whether any channel adapts its power."""
        return any(c.dose.mode == "adaptive" for c in self._channels.values())

    def before_setup(self, event: useq.MDAEvent) -> None:
        """Set the channel's power for the set ``event`` starts (engine thread; once per set)."""
        inner = getattr(event, "events", None)  # a hardware sequence: its first frame's event
        if inner:
            event = inner[0]
        channel = event.channel.config if event.channel is not None else None
        if channel not in self._channels:
            return
        index = event.index
        key = (index.get("t", 0), index.get("p", 0), channel)
        with self._lock:
            if key in self._applied:
                return
            self._applied.add(key)
            power = self._power[channel]
            spec = self._channels[channel]
            columns = self._sets.setdefault(channel, {"t": [], "p": [], "power_mw": [],
                                                      "dose_mj": []})
            columns["t"].append(key[0])
            columns["p"].append(key[1])
            columns["power_mw"].append(round(power, 6))
            columns["dose_mj"].append(round(power * spec.exposure_ms * self._frames / 1000, 9))
        if spec.dose.mode == "adaptive":
            self._scope.lasers[self._lines[channel]].power_mw = power

    def observe(self, result: StreamResult[SetInfo]) -> None:
        """Adapt the channel's next power to the trust of one of its SR sets."""
        channel = result.metadata.channel
        spec = self._channels.get(channel)
        trust = result.report.get("trust")
        if spec is None or spec.dose.mode != "adaptive" or trust is None:
            return
        threshold = spec.reconstruction.trust.threshold if spec.reconstruction.trust else None
        if threshold is None:
            return
        low, high = self._bounds[channel]
        with self._lock:
            power = self._power[channel]
            if trust < threshold:
                power *= spec.dose.step_up
            elif trust >= threshold + spec.dose.margin:
                power *= spec.dose.step_down
            self._power[channel] = min(max(power, low), high)

    def summary(self) -> dict[str, dict[str, Any]]:
        """JSON-ready, per channel: mode, bounds, total dose and every set's power and dose."""
        with self._lock:
            found: dict[str, dict[str, Any]] = {}
            for channel, spec in self._channels.items():
                columns = self._sets.get(channel, {"t": [], "p": [], "power_mw": [],
                                                   "dose_mj": []})
                found[channel] = {
                    "mode": spec.dose.mode,
                    "min_power_mw": self._bounds[channel][0],
                    "max_power_mw": self._bounds[channel][1],
                    "total_dose_mj": round(sum(columns["dose_mj"]), 9),
                    "sets": {k: list(v) for k, v in columns.items()},
                }
            return found
