"""What travels with a raw set through a :class:`~inference.streaming.StreamingPredictor`.

That is the set's place in the run, to show its SR image and to write it where it belongs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, TypeAlias

from inference.streaming import StreamingPredictor

if TYPE_CHECKING:
    from hardware.frameset import FrameSet

__all__ = ["SetInfo", "SetPredictor", "SetRecord"]

#: a set's metadata as the SR journal's JSON lines hold it (with the reconstructor's report,
#: e.g. Wiener-SIM's per-orientation phase drift)
SetRecord: TypeAlias = dict[str, int | float | str | list[float]]


@dataclass(frozen=True)
class SetInfo:
    """One raw set's time point, position and channel (and its first frame's timing).

    Attributes
    ----------
    t : int
        Time point (in Live: the set's count since the session started).
    p : int
        Position index.
    channel : str
        Channel preset.
    timestamp_ms : float
        The set's first frame, ms since the run started.
    exposure_ms : float
        Exposure per raw frame, ms.
    """

    t: int
    p: int
    channel: str
    timestamp_ms: float
    exposure_ms: float

    @classmethod
    def of(cls, frame_set: FrameSet, t: int | None = None) -> SetInfo:
        """Return the info of ``frame_set`` (``t``: another time point than the engine's)."""
        info = cls(t=frame_set.t, p=frame_set.position, channel=frame_set.channel,
                   timestamp_ms=float(frame_set.timestamps_ms[0]),
                   exposure_ms=frame_set.exposure_ms)
        return info if t is None else replace(info, t=t)

    def to_record(self) -> SetRecord:
        """Return the JSON-line record of the set.

        Its keys: ``t``, ``p``, ``channel``, ``timestamp_ms``, ``exposure_ms``.
        """
        return asdict(self)


#: a channel's streaming reconstructor, each set known by its :class:`SetInfo`
SetPredictor: TypeAlias = StreamingPredictor[SetInfo]
