"""StreamingPredictor: reconstruct raw sets as they arrive, off the acquisition thread.

``submit(frames, metadata)`` never blocks: it hands the set to a worker thread and returns its
sequence number. The metadata (any type ``M``, best immutable: it is passed on as is) comes back
with the set's :class:`StreamResult`. Two modes:

- ``"latest"`` (display): one pending set at most; a newer set replaces a pending one, which is
  counted as dropped. The newest result sits in :meth:`latest` for a GUI timer to read.
- ``"every"`` (saving): every set is reconstructed, in order; results go to ``on_result`` and to
  :meth:`get`. Nothing is dropped unless ``max_pending`` is set and exceeded.

Any :class:`~inference.reconstructor.Reconstructor` works (DFCAN on any backend, Wiener-SIM, …).
One with a ``last_report`` dict (what it found in the set it just reconstructed) has it
copied into that set's :attr:`StreamResult.report`.
One that also has ``upload(frames)`` / ``complete(staged)`` (the inference backends) is pipelined:
the next set's upload is issued before the current set's compute is waited on, so on a GPU the
copy of set k+1 overlaps the network on set k.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

import numpy as np

from inference.reconstructor import Reconstructor

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["StreamResult", "StreamStats", "StreamingPredictor"]

log = logging.getLogger(__name__)
Mode = Literal["latest", "every"]
LATENCY_WINDOW = 10_000
#: what travels with each set, from :meth:`StreamingPredictor.submit` to its result
M = TypeVar("M")


@dataclass(frozen=True)
class StreamResult(Generic[M]):
    """One reconstructed set (or the error that stopped it)."""

    seq: int
    image: np.ndarray | None
    #: what was submitted with the set
    metadata: M
    #: seconds from submit to result
    latency_s: float
    error: BaseException | None = None
    #: what the reconstructor said about this set (its ``last_report``, e.g. Wiener-SIM's
    #: pattern tracking), empty when it says nothing
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamStats:
    """Counts and latency percentiles (over the last 10 000 results) of a stream."""

    submitted: int
    processed: int
    dropped: int
    failed: int
    pending: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None


@dataclass
class _Item(Generic[M]):
    seq: int
    frames: np.ndarray
    metadata: M
    submitted: float
    staged: Any = field(default=None)


class StreamingPredictor(Generic[M]):
    """Reconstruct submitted sets on a worker thread; ``M``: the metadata of each set.

    Args:
        reconstructor: any :class:`~inference.reconstructor.Reconstructor`.
        mode: ``"latest"`` (display: stale sets dropped) or ``"every"`` (all sets, in order).
        on_result: called on the worker thread with each :class:`StreamResult` (keep it short).
        max_pending: ``"every"`` mode: sets waiting at most (None: unbounded); beyond it a
            submit is refused (returns -1) and counted as dropped.
    """

    def __init__(
        self,
        reconstructor: Reconstructor,
        mode: Mode = "latest",
        on_result: Callable[[StreamResult[M]], None] | None = None,
        max_pending: int | None = None,
    ) -> None:
        if mode not in ("latest", "every"):
            raise ValueError(f"mode must be 'latest' or 'every', got {mode!r}")
        if not isinstance(reconstructor, Reconstructor):
            raise TypeError(f"{type(reconstructor).__name__} is not a Reconstructor")
        self.reconstructor = reconstructor
        self.mode = mode
        self.on_result = on_result
        self.max_pending = max_pending
        self._staged = hasattr(reconstructor, "upload") and hasattr(reconstructor, "complete")
        self._cond = threading.Condition()
        self._pending: collections.deque[_Item[M]] = collections.deque()
        self._results: queue.Queue[StreamResult[M]] = queue.Queue()
        self._latest: StreamResult[M] | None = None
        self._latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._submitted = self._processed = self._dropped = self._failed = 0
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="livesr-stream", daemon=True)
        self._worker.start()

    # -- producer side ---------------------------------------------------------------------------

    @overload
    def submit(self: StreamingPredictor[None], frames: np.ndarray) -> int: ...

    @overload
    def submit(self, frames: np.ndarray, metadata: M) -> int: ...

    def submit(self, frames: np.ndarray, metadata: M | None = None) -> int:
        """Queue one raw set ``(N, H, W)`` and its metadata; return its sequence number.

        The metadata is ``None`` if not given; the number is -1 when the set is refused (full).

        Does not block and does not copy: do not modify ``frames`` afterwards.
        """
        now = time.perf_counter()
        with self._cond:
            if self._closed:
                raise RuntimeError("StreamingPredictor is closed")
            seq = self._submitted
            self._submitted += 1
            item = _Item(seq, frames, cast("M", metadata), now)
            if self.mode == "latest":
                self._dropped += len(self._pending)
                self._pending.clear()
            elif self.max_pending is not None and len(self._pending) >= self.max_pending:
                self._dropped += 1
                return -1
            self._pending.append(item)
            self._cond.notify()
        return seq

    # -- consumer side ---------------------------------------------------------------------------

    def latest(self) -> StreamResult[M] | None:
        """Return the newest result (display slot), or None before the first."""
        return self._latest

    def get(self, timeout: float | None = None) -> StreamResult[M]:
        """Return the next result in order (``"every"`` mode).

        Blocks up to ``timeout``; raises :class:`queue.Empty` on timeout.
        """
        return self._results.get(timeout=timeout)

    def results(self) -> Iterator[StreamResult[M]]:
        """Results delivered so far, without waiting."""
        while True:
            try:
                yield self._results.get_nowait()
            except queue.Empty:
                return

    def stats(self) -> StreamStats:
        """Return the counts so far and the latency percentiles (ms) of the recent results."""
        with self._cond:
            lat = np.array(self._latencies) * 1e3
            return StreamStats(
                submitted=self._submitted,
                processed=self._processed,
                dropped=self._dropped,
                failed=self._failed,
                pending=len(self._pending),
                latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
                latency_p99_ms=float(np.percentile(lat, 99)) if lat.size else None,
            )

    def close(self, timeout: float | None = None) -> StreamStats:
        """Refuse new sets, finish the pending ones, stop the worker; returns the final stats."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._worker.join(timeout)
        return self.stats()

    def __enter__(self) -> StreamingPredictor[M]:
        """Return the predictor itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the stream (finishing the pending sets)."""
        self.close()

    # -- worker --------------------------------------------------------------------------------

    def _take(self, wait: bool) -> _Item[M] | None:
        with self._cond:
            while wait and not self._pending and not self._closed:
                self._cond.wait()
            return self._pending.popleft() if self._pending else None

    def _run(self) -> None:
        current: _Item[M] | None = None
        while True:
            if current is None:
                current = self._take(wait=True)
                if current is None:
                    return  # closed and drained
                self._stage(current)
            # pipelining: start the next set's upload before waiting on this one
            following = self._take(wait=False) if self._staged else None
            if following is not None:
                self._stage(following)
            self._finish(current)
            current = following

    def _stage(self, item: _Item[M]) -> None:
        if not self._staged or item.staged is not None:
            return
        try:
            item.staged = self.reconstructor.upload(item.frames)  # type: ignore[attr-defined]
        except Exception as exc:
            item.staged = exc

    def _finish(self, item: _Item[M]) -> None:
        image: np.ndarray | None = None
        error: BaseException | None = None
        try:
            if isinstance(item.staged, BaseException):
                raise item.staged
            if self._staged:
                image = self.reconstructor.complete(item.staged)  # type: ignore[attr-defined]
            else:
                image = self.reconstructor.reconstruct(item.frames)
            report = dict(getattr(self.reconstructor, "last_report", None) or {})
        except Exception as exc:
            error = exc
            report = {}
            log.warning("set %d failed: %s: %s", item.seq, type(exc).__name__, exc)
        latency = time.perf_counter() - item.submitted
        result = StreamResult(item.seq, image, item.metadata, latency, error, report)
        with self._cond:
            if error is None:
                self._processed += 1
                self._latencies.append(latency)
            else:
                self._failed += 1
        if error is None:
            self._latest = result
        if self.mode == "every":
            self._results.put(result)
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.exception("on_result callback failed")
