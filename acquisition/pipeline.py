"""From the acquisition thread to disk, inference and the display slot, without ever blocking it.

    acquisition thread ─► bounded writer queue (every raw set) ─► raw/WF writer thread
            │
            └─► StreamingPredictor per reconstructed channel ("every" set when all SR is
                saved, else "latest": stale sets dropped for display)
                    └─► display slot (newest image per channel) and the SR writer thread

:meth:`Pipeline.on_set` runs on the acquisition thread and only puts into queues. If the writer
queue is full (the disk does not keep up), the run is stopped with a clear error rather than a
raw frame dropped; a writer that fails stops the run too.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, TypedDict

from acquisition.display import DisplayFrame, DisplaySlot, SRDisplay
from acquisition.set_info import SetInfo, SetPredictor, SetRecord
from acquisition.trust import TrustedReconstructor, TrustTally

if TYPE_CHECKING:
    from collections.abc import Callable

    from acquisition.storage.writers import RunWriters
    from hardware.frameset import FrameSet
    from inference.streaming import StreamResult

__all__ = ["InferenceStats", "Pipeline", "PipelineError", "ReconstructionTally", "sr_record"]


class InferenceStats(TypedDict):
    """Inference counts and latency percentiles over every predictor of a run."""

    inferred: int
    dropped_for_display: int
    failed: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None


def sr_record(result: StreamResult[SetInfo]) -> SetRecord:
    """Build the SR journal's JSON line of ``result``.

    Its set's record, ``seq``, ``latency_ms`` and the reconstructor's report on the set.
    """
    return {**result.metadata.to_record(), "seq": result.seq,
            "latency_ms": round(result.latency_s * 1000, 3), **result.report}


class ReconstructionTally:
    """Per channel: how many sets each reconstructor report status had, and the first of each.

    For Wiener-SIM the status is how the set's pattern was obtained (``estimated``,
    ``tracked``, ``fallback``…); the first set of each status is kept with its time point and
    note, so ``run.json`` says when and why the first fallback happened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, dict[str, int]] = {}
        self.first: dict[str, dict[str, SetRecord]] = {}

    def add(self, result: StreamResult[SetInfo]) -> None:
        """Count one result's report (results without a status are not counted)."""
        status = result.report.get("pattern")
        if status is None:
            return
        channel = result.metadata.channel
        with self._lock:
            counts = self.counts.setdefault(channel, {})
            counts[str(status)] = counts.get(str(status), 0) + 1
            self.first.setdefault(channel, {}).setdefault(str(status), {
                "t": result.metadata.t, "p": result.metadata.p, **result.report})

    def summary(self) -> dict[str, dict[str, object]]:
        """JSON-ready: per channel, the counts and the first set of each status."""
        with self._lock:
            return {c: {"sets": dict(n), "first": dict(self.first.get(c, {}))}
                    for c, n in self.counts.items()}


class PipelineError(RuntimeError):
    """The pipeline stopped the run (writer behind or failed)."""


class Pipeline:
    """Writer threads, predictors and the display slot of one run.

    Args:
        writers: the run's journals.
        predictors: channel name → its StreamingPredictor (reconstructed channels only).
        save_sr: ``"every"``, ``"displayed"`` or ``"none"``.
        queue_sets: raw sets the writer queue holds.
        stop_run: called (from any thread) to stop the acquisition when the pipeline fails.
        on_written: called on the writer thread after each set is written (progress).
        display: the display slot to fill (default: a new one).
    """

    def __init__(self, writers: RunWriters, predictors: dict[str, SetPredictor],
                 save_sr: str, queue_sets: int, stop_run: Callable[[], None],
                 on_written: Callable[[], None] | None = None,
                 display: DisplaySlot | None = None) -> None:
        self.writers = writers
        self.predictors = predictors
        self.save_sr = save_sr
        self.stop_run = stop_run
        self.on_written = on_written
        self.sr_display = SRDisplay(display if display is not None else DisplaySlot())
        #: what the reconstructors reported per set (Wiener-SIM's pattern tracking)
        self.tally = ReconstructionTally()
        #: every SR set's trust, per channel (channels with a trust signal)
        self.trust = TrustTally()
        #: called with every SR result, on the inference threads (e.g. the dose controller)
        self.result_listeners: list[Callable[[StreamResult[SetInfo]], None]] = []
        self.queue_sets = queue_sets
        self._raw_queue: queue.Queue[FrameSet | None] = queue.Queue(maxsize=queue_sets)
        self._sr_queue: queue.Queue[StreamResult[SetInfo] | None] = queue.Queue()
        self.error: str | None = None
        self.sets_acquired = self.frames_acquired = 0
        self.sets_written = 0
        self.sr_submitted = self.sr_refused = 0
        #: perf_counter of the first set's arrival and of the last set written
        self.t_first_set: float | None = None
        self.t_last_written: float | None = None
        self._raw_thread = threading.Thread(target=self._write_raw, name="livesr-raw-writer",
                                            daemon=True)
        # SR writers: the queue of displayed results, and each every-set predictor's results
        self._inference_closed = threading.Event()
        self._sr_threads = [threading.Thread(target=self._write_displayed_sr,
                                             name="livesr-sr-writer", daemon=True)]
        for name, predictor in predictors.items():
            predictor.on_result = self._on_result
            rec = predictor.reconstructor
            if isinstance(rec, TrustedReconstructor):
                self.trust.configure(name, rec.meter.signal, rec.threshold, rec.fallback)
            if predictor.mode == "every":
                self._sr_threads.append(threading.Thread(
                    target=self._write_every_sr, args=(predictor,),
                    name=f"livesr-sr-writer-{name}", daemon=True))

    @property
    def display(self) -> DisplaySlot:
        """The newest image of each channel (SR, else WF)."""
        return self.sr_display.display

    @display.setter
    def display(self, slot: DisplaySlot) -> None:
        self.sr_display.display = slot

    @property
    def sr_failed(self) -> int:
        """Sets whose reconstruction failed."""
        return self.sr_display.failed

    @property
    def first_sr_error(self) -> str | None:
        """The first failed reconstruction's error."""
        return self.sr_display.first_error

    def start(self) -> None:
        """Start the raw/WF writer thread and the SR writer threads."""
        self._raw_thread.start()
        for thread in self._sr_threads:
            thread.start()

    # -- acquisition thread: cheap, never blocks
    def on_set(self, frame_set: FrameSet) -> None:
        """Queue a raw set for writing and submit it to its channel's predictor (never blocks).

        A full writer queue stops the run instead of dropping the set.
        """
        if self.t_first_set is None:
            self.t_first_set = time.perf_counter()
        self.sets_acquired += 1
        self.frames_acquired += frame_set.n_frames
        if self.error is not None:
            return  # the run is being stopped
        try:
            self._raw_queue.put_nowait(frame_set)
        except queue.Full:
            self._fail(f"the writer fell behind: {self.queue_sets} raw sets were waiting for the "
                       "disk; the run was stopped rather than drop raw frames (use a faster "
                       "disk, fewer channels or a smaller ROI)")
            return
        predictor = self.predictors.get(frame_set.channel)
        if predictor is not None:
            if predictor.submit(frame_set.frames, SetInfo.of(frame_set)) < 0:
                self.sr_refused += 1
            else:
                self.sr_submitted += 1

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
            self.stop_run()

    # -- raw / WF writer thread
    def _write_raw(self) -> None:
        while (frame_set := self._raw_queue.get()) is not None:
            if self.error is not None:
                continue  # keep draining: the acquisition is stopping
            try:
                wf = self.writers.write_set(frame_set)
            except Exception as exc:
                self._fail(f"writing raw frames failed: {type(exc).__name__}: {exc}")
                continue
            self.sets_written += 1
            self.t_last_written = time.perf_counter()
            if frame_set.channel not in self.predictors:
                image = wf if wf is not None else (
                    frame_set.widefield() if frame_set.n_frames > 1 else frame_set.frames[0])
                self.display.put(DisplayFrame(frame_set.channel, frame_set.t,
                                              frame_set.position, "wf", image, 0.0))
            if self.on_written is not None:
                self.on_written()

    # -- inference worker threads → display slot and SR writer
    def _on_result(self, result: StreamResult[SetInfo]) -> None:
        self.tally.add(result)
        self.trust.add(result)
        for listener in self.result_listeners:
            listener(result)
        if self.sr_display.show(result) is not None and self.save_sr == "displayed":
            self._sr_queue.put(result)

    def _write_displayed_sr(self) -> None:
        while (result := self._sr_queue.get()) is not None:
            self._save_sr(result)

    def _write_every_sr(self, predictor: SetPredictor) -> None:
        """Every result of an every-set predictor, in order (taking them also frees them)."""
        while True:
            try:
                result = predictor.get(timeout=0.2)
            except queue.Empty:
                if self._inference_closed.is_set():
                    for result in predictor.results():  # delivered before the close
                        self._save_sr(result)
                    return
                continue
            self._save_sr(result)

    def _save_sr(self, result: StreamResult[SetInfo]) -> None:
        if self.error is not None or result.image is None:
            return
        try:
            self.writers.write_sr(result.image, sr_record(result))
        except Exception as exc:
            self._fail(f"writing SR images failed: {type(exc).__name__}: {exc}")

    # -- end of the run
    def finish_acquisition(self) -> None:
        """Write what is queued once the acquisition has ended (joins the raw writer thread)."""
        self._raw_queue.put(None)
        self._raw_thread.join()

    def finish_inference(self) -> None:
        """Reconstruct what is pending (every-set mode), then write the last SR images."""
        for predictor in self.predictors.values():
            predictor.close()
        self._inference_closed.set()
        self._sr_queue.put(None)
        for thread in self._sr_threads:
            thread.join()

    def writer_queue_fill(self) -> float:
        """How full the raw writer queue is (0–1)."""
        return self._raw_queue.qsize() / self.queue_sets

    def stats(self) -> InferenceStats:
        """Inference counts and latency percentiles over every predictor."""
        processed = dropped = failed = 0
        p50: list[float] = []
        p99: list[float] = []
        for predictor in self.predictors.values():
            s = predictor.stats()
            processed += s.processed
            dropped += s.dropped if predictor.mode == "latest" else 0
            failed += s.failed
            if s.latency_p50_ms is not None and s.latency_p99_ms is not None:
                p50.append(s.latency_p50_ms)
                p99.append(s.latency_p99_ms)
        return {"inferred": processed, "dropped_for_display": dropped + self.sr_refused,
                "failed": failed, "latency_p50_ms": max(p50) if p50 else None,
                "latency_p99_ms": max(p99) if p99 else None}
