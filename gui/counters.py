"""What the GUI counts while frames stream: rates over a sliding window, and the counter line."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

__all__ = ["Counters", "RateMeter"]


class RateMeter:
    """Events per second over the last ``window_s`` seconds (thread-safe; cheap to add)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._events: collections.deque[tuple[float, int]] = collections.deque()
        self._lock = threading.Lock()
        self.total = 0

    def add(self, n: int = 1, now: float | None = None) -> None:
        """Count ``n`` events at ``now`` (``perf_counter`` seconds; default: the current time)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._events.append((now, n))
            self.total += n
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        """Events per second in the window (0 until two events are in it)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._events) < 2:
                return 0.0
            first = self._events[0][0]
            span = max(now - first, self._events[-1][0] - first)
            counted = sum(n for _, n in list(self._events)[1:])
            return counted / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._events and now - self._events[0][0] > self.window_s:
            self._events.popleft()


@dataclass(frozen=True)
class Counters:
    """One reading of everything the counter line shows."""

    raw_fps: float = 0.0
    sr_fps: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    frames_acquired: int = 0
    sr_shown: int = 0
    dropped_for_display: int = 0
    frames_written: int | None = None
    free_disk_bytes: int | None = None
    camera_buffer_fill: float | None = None
    writer_queue_fill: float | None = None
    #: SR sets whose trust signal was below the threshold (``None``: no trust signal)
    low_trust: int | None = None

    def describe(self) -> dict[str, str]:
        """Label → text, in display order (``-`` where nothing is known)."""

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.0f}%"

        from acquisition.protocol import human_bytes

        buffers = f"cam {pct(self.camera_buffer_fill)}"
        if self.writer_queue_fill is not None:
            buffers += f" · writer {pct(self.writer_queue_fill)}"
        return {
            "raw fps": f"{self.raw_fps:.1f}",
            "SR fps": f"{self.sr_fps:.2f}",
            "latency p50/p99 ms": f"{ms(self.latency_p50_ms)} / {ms(self.latency_p99_ms)}",
            "dropped for display": str(self.dropped_for_display),
            "frames written": "-" if self.frames_written is None else str(self.frames_written),
            "free disk": "-" if self.free_disk_bytes is None
            else human_bytes(self.free_disk_bytes),
            "buffer fill": buffers,
            "low-trust SR": "-" if self.low_trust is None else str(self.low_trust),
        }
