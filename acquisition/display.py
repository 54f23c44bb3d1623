"""What a GUI shows: the newest image per channel, and the SR results of a stream.

The newest image per channel is kept in a :class:`DisplaySlot`; a stream's SR results are put
there by :class:`SRDisplay` (a protocol run's and Live's alike).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from acquisition.set_info import SetInfo
    from inference.streaming import StreamResult

__all__ = ["DisplayFrame", "DisplaySlot", "SRDisplay"]


@dataclass(frozen=True)
class DisplayFrame:
    """The newest image of a channel, for a GUI timer to show."""

    channel: str
    t: int
    position: int
    kind: str  # "sr" or "wf"
    image: np.ndarray
    #: seconds from the set's arrival to this image (SR); 0 for WF
    latency_s: float
    #: the set's trust signal (:mod:`acquisition.trust`; ``None``: not measured)
    trust: float | None = None
    #: whether the trust is below the channel's threshold
    trust_low: bool = False
    #: what the image is: ``sr``, or the fallback shown for a low set (``wiener-sim``, ``wf``)
    shown: str = "sr"


class DisplaySlot:
    """Newest image per channel; writers replace, readers take the newest (never a queue)."""

    def __init__(self) -> None:
        self._frames: dict[str, DisplayFrame] = {}
        self._lock = threading.Lock()
        self.updates = 0

    def put(self, frame: DisplayFrame) -> None:
        """Replace the newest frame of ``frame.channel`` and count the update."""
        with self._lock:
            self._frames[frame.channel] = frame
            self.updates += 1

    def latest(self, channel: str | None = None) -> DisplayFrame | None:
        """Return the newest frame of ``channel`` (or of any channel, by ``t`` then position)."""
        with self._lock:
            if channel is not None:
                return self._frames.get(channel)
            if not self._frames:
                return None
            return max(self._frames.values(), key=lambda f: (f.t, f.position))


class SRDisplay:
    """Each reconstructed set into a display slot.

    Failed sets are counted, the first one's error kept to be said once; so are the sets whose
    trust was below the threshold (:attr:`low_trust`).

    Parameters
    ----------
    display : DisplaySlot
        Where the SR images go.
    """

    def __init__(self, display: DisplaySlot) -> None:
        self.display = display
        self.failed = 0
        self.first_error: str | None = None
        #: SR sets whose trust was below the channel's threshold
        self.low_trust = 0

    def show(self, result: StreamResult[SetInfo]) -> DisplayFrame | None:
        """Put ``result``'s image in the slot (inference thread); ``None`` when the set failed."""
        if result.error is not None or result.image is None:
            self.failed += 1
            if self.first_error is None:
                self.first_error = f"{type(result.error).__name__}: {result.error}"
            return None
        info = result.metadata
        report = result.report
        trust = report.get("trust")
        low = bool(report.get("trust_low", False))
        self.low_trust += low
        frame = DisplayFrame(info.channel, info.t, info.p, "sr", result.image, result.latency_s,
                             None if trust is None else float(trust), low,
                             str(report.get("shown", "sr")))
        self.display.put(frame)
        return frame
