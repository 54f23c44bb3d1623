"""What runs behind the GUI's views: live acquisition, or a protocol run, on a worker thread.

Both sessions acquire on the GUI's open :class:`~hardware.microscope.Microscope` and only ever
*store* their newest results: the raw set in a :class:`NewestSet` slot and the SR images in a
:class:`~acquisition.display.DisplaySlot`. The window reads both on its own timer, so the display
never slows the acquisition thread. The acquisition itself is ``acquisition/``'s:

- :class:`LiveSession`: Snap or Live, WF or SIM (:class:`~acquisition.live.LiveAcquisition`:
  the chosen reconstructor behind a ``StreamingPredictor`` in ``"latest"`` mode; nothing is
  written).
- :class:`ProtocolSession`: ``acquisition.run(protocol, scope=…)`` (writers, predictors, files).

Emission is off when either ends, however it ends (the SIM engine sees to it; a failed session
turns it off once more).
"""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acquisition.display import DisplayFrame, DisplaySlot
from acquisition.live import LiveAcquisition
from gui.counters import Counters, RateMeter

if TYPE_CHECKING:
    from collections.abc import Callable

    from acquisition.pipeline import Pipeline
    from acquisition.protocol import Protocol
    from acquisition.runner import RunResult
    from acquisition.set_info import SetPredictor
    from hardware.frameset import FrameSet
    from hardware.microscope import Microscope

__all__ = ["LiveSession", "NewestSet", "ProtocolSession", "Session"]


class NewestSet:
    """The newest raw set of each channel (references, never copies) and how many came."""

    def __init__(self) -> None:
        self._sets: dict[str, FrameSet] = {}
        self._newest: FrameSet | None = None
        self._lock = threading.Lock()
        self.count = 0

    def put(self, frame_set: FrameSet) -> None:
        """Keep ``frame_set`` as its channel's and the overall newest set; count it."""
        with self._lock:
            self._sets[frame_set.channel] = self._newest = frame_set
            self.count += 1

    def latest(self, channel: str | None = None) -> FrameSet | None:
        """Return the newest set of ``channel`` when it has one, else the newest of any channel."""
        with self._lock:
            if channel is not None and channel in self._sets:
                return self._sets[channel]
            return self._newest


class Session:
    """A worker thread that acquires.

    The window polls :attr:`raw`, :attr:`display` and :meth:`counters`. ``on_finished`` is
    called on the worker thread when it ends.
    """

    kind = "session"

    def __init__(self, scope: Microscope, on_finished: Callable[[Session], None] | None = None
                 ) -> None:
        self.scope = scope
        self.on_finished = on_finished
        self.raw = NewestSet()
        self.display = DisplaySlot()
        self.raw_rate = RateMeter()
        self.sr_rate = RateMeter()
        self.frames_acquired = 0
        self.error: str | None = None
        self.traceback: str | None = None
        self.started = self.finished = 0.0
        #: perf_counter of the first and the newest set's arrival
        self.first_set_at: float | None = None
        self.last_set_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"livesr-gui-{self.kind}",
                                        daemon=True)

    # -- control (GUI thread)
    def start(self) -> None:
        """Start the worker thread."""
        self.started = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        """Ask the acquisition to stop after the current event (returns at once)."""
        self._stop.set()
        self._cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the worker; True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Started and not yet ended.

        False once the acquisition has ended, while the worker thread may still be reporting it.
        """
        return self._thread.is_alive() and not self.finished

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    # -- worker thread
    def _main(self) -> None:
        try:
            self._work()
        except BaseException as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.traceback = traceback.format_exc()
            self._emission_off()
        finally:
            self.finished = time.perf_counter()
            if self.on_finished is not None:
                self.on_finished(self)

    def _work(self) -> None:
        raise NotImplementedError

    def _cancel(self) -> None:
        raise NotImplementedError

    def _emission_off(self) -> None:
        try:
            self.scope.emission_off()
        except Exception as exc:  # keep the first error; say this one too
            self.error = f"{self.error}; and emission off failed: {exc}"

    def _on_set(self, frame_set: FrameSet) -> None:
        """Acquisition thread: store the newest set and count it (cheap)."""
        now = time.perf_counter()
        if self.first_set_at is None:
            self.first_set_at = now
        self.last_set_at = now
        self.raw.put(frame_set)
        self.frames_acquired += frame_set.n_frames
        self.raw_rate.add(frame_set.n_frames)

    # -- counters (GUI thread)
    def counters(self) -> Counters:
        """Return the counter line's values now (each session kind says how)."""
        raise NotImplementedError

    def rates(self) -> tuple[float, float]:
        """Return the raw and SR frames/s.

        Over the last seconds while running, over the whole session once it has ended.
        """
        if self.running or self.first_set_at is None:
            return self.raw_rate.rate(), self.sr_rate.rate()
        end = self.last_set_at or self.first_set_at
        first_set_frames = self.frames_acquired // max(self.raw.count, 1)
        raw = (self.frames_acquired - first_set_frames) / (end - self.first_set_at) \
            if end > self.first_set_at else 0.0
        span = (self.finished or end) - self.first_set_at
        return raw, (self.sr_rate.total / span if span > 0 else 0.0)

    def _camera_buffer_fill(self) -> float | None:
        core = getattr(self.scope.backend, "core", None)
        if core is None:
            return None
        try:
            capacity = int(core.getBufferTotalCapacity())
            return int(core.getRemainingImageCount()) / capacity if capacity else None
        except Exception:
            return None


class LiveSession(Session):
    """Snap (``count`` sets) or Live (until stopped).

    An :class:`~acquisition.live.LiveAcquisition` runs on the session's thread.

    Args:
        scope: the GUI's microscope.
        protocol: a one-channel protocol holding what the controls chose (mode, preset, power,
            exposure, reconstruction, backend); its ``timelapse`` is ignored.
        count: sets to acquire (``None``: until :meth:`stop`).
        chunk: sets per engine run (Live runs chunk after chunk, so a WF stream never
            collects an endless camera sequence).
    """

    kind = "live"

    def __init__(self, scope: Microscope, protocol: Protocol, count: int | None = None,
                 chunk: int | None = None,
                 on_finished: Callable[[Session], None] | None = None) -> None:
        super().__init__(scope, on_finished)
        self.protocol = protocol
        self.live = LiveAcquisition(scope, protocol, count, chunk, self.display)
        self.live.set_ready.connect(self._on_set)
        self.live.sr_shown.connect(self._on_sr_shown)

    @property
    def count(self) -> int | None:
        """Sets to acquire (``None``: until stopped)."""
        return self.live.count

    @property
    def chunk(self) -> int:
        """Sets per engine run."""
        return self.live.chunk

    @property
    def sets_acquired(self) -> int:
        """Raw sets acquired so far."""
        return self.live.sets_acquired

    @property
    def predictor(self) -> SetPredictor | None:
        """The streaming reconstructor (``None``: no reconstruction, or not started yet)."""
        return self.live.predictor

    @property
    def reconstructor_info(self) -> dict[str, Any]:
        """The reconstructor's method, model, weights hash, backend and scale."""
        return self.live.reconstructor_info

    @property
    def sr_failed(self) -> int:
        """Sets whose reconstruction failed."""
        return self.live.sr_failed

    @property
    def first_sr_error(self) -> str | None:
        """Shown once in the window."""
        return self.live.first_sr_error

    def _work(self) -> None:
        self.live.run()

    def _cancel(self) -> None:
        self.live.stop()

    def _on_sr_shown(self, frame: DisplayFrame) -> None:
        self.sr_rate.add()

    def counters(self) -> Counters:
        """Return the rates, SR latency, frames, drops, free disk and camera buffer fill."""
        stats = self.predictor.stats() if self.predictor is not None else None
        raw_fps, sr_fps = self.rates()
        return Counters(
            raw_fps=raw_fps, sr_fps=sr_fps,
            latency_p50_ms=stats.latency_p50_ms if stats else None,
            latency_p99_ms=stats.latency_p99_ms if stats else None,
            frames_acquired=self.frames_acquired, sr_shown=self.sr_rate.total,
            dropped_for_display=stats.dropped if stats else 0,
            frames_written=None, free_disk_bytes=_free_disk(Path.cwd()),
            camera_buffer_fill=self._camera_buffer_fill(),
            low_trust=(self.live.sr_display.low_trust if "trust" in self.reconstructor_info
                       else None))


class ProtocolSession(Session):
    """``acquisition.run(protocol, scope=…)`` on the GUI's microscope; :attr:`result` after."""

    kind = "protocol"

    def __init__(self, scope: Microscope, protocol: Protocol, out: Path | None = None,
                 overwrite: bool = False,
                 on_finished: Callable[[Session], None] | None = None) -> None:
        super().__init__(scope, on_finished)
        self.protocol = protocol
        self.out = out if out is not None else protocol.output_dir()
        self.overwrite = overwrite
        self.pipeline: Pipeline | None = None
        self.result: RunResult | None = None

    def _work(self) -> None:
        from acquisition.runner import run

        self.result = run(self.protocol, self.out, progress=False, overwrite=self.overwrite,
                          display=self.display, on_pipeline=self._attach, scope=self.scope)

    def _attach(self, pipeline: Pipeline) -> None:
        """See every set the engine delivers (then hand it to the pipeline) and every result."""
        self.pipeline = pipeline
        deliver = pipeline.on_set

        def on_set(frame_set: FrameSet) -> None:
            self._on_set(frame_set)
            deliver(frame_set)

        pipeline.on_set = on_set  # type: ignore[method-assign]
        if self._stop.is_set():
            pipeline.stop_run()

    def _cancel(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop_run()

    def _on_set(self, frame_set: FrameSet) -> None:
        super()._on_set(frame_set)
        if self._stop.is_set() and self.pipeline is not None:
            self.pipeline.stop_run()  # a stop that came before the engine started

    def counters(self) -> Counters:
        """Return the rates, SR latency, frames acquired/written, drops, disk and queue fills."""
        pipeline = self.pipeline
        if pipeline is None:
            return Counters(free_disk_bytes=_free_disk(self.out))
        stats = pipeline.stats()
        shown = pipeline.display.updates
        self._count_inferred(stats["inferred"])
        raw_fps, sr_fps = self.rates()
        return Counters(
            raw_fps=raw_fps, sr_fps=sr_fps,
            latency_p50_ms=stats["latency_p50_ms"], latency_p99_ms=stats["latency_p99_ms"],
            frames_acquired=self.frames_acquired, sr_shown=shown,
            dropped_for_display=stats["dropped_for_display"],
            frames_written=pipeline.writers.raw_frames, free_disk_bytes=_free_disk(self.out),
            camera_buffer_fill=self._camera_buffer_fill(),
            writer_queue_fill=pipeline.writer_queue_fill(),
            low_trust=pipeline.sr_display.low_trust if pipeline.trust.configured else None)

    def _count_inferred(self, inferred: int) -> None:
        """Reconstructions counted from the pipeline's total's growth since the last reading."""
        new = inferred - self.sr_rate.total
        if new > 0:
            self.sr_rate.add(new)


def _free_disk(path: Path) -> int | None:
    probe = path.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None
