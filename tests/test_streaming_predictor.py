"""StreamingPredictor: latest-set-wins for display, every set for saving, stats, errors."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from inference.backends.torch_backend import TorchBackend
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.reconstructor import check_frames
from inference.streaming import StreamingPredictor, StreamResult

if TYPE_CHECKING:
    from pathlib import Path


class GatedWidefield:
    """A real (trivial) reconstructor — the wide-field mean, upsampled — that holds each set
    until the test releases it, so the test controls what is pending.
    """

    name, scale, frames_per_set = "wf-gated", 2, None

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.seen: list[float] = []

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        stack = check_frames(frames, None, self.name).astype(np.float32)
        self.seen.append(float(stack[0, 0, 0]))
        self.entered.release()
        assert self.release.acquire(timeout=30), "test never released the set"
        wf = stack.mean(axis=0)
        return np.kron(wf / (wf.max() + 1), np.ones((2, 2), np.float32))


def _set(value: int) -> np.ndarray:
    return np.full((9, 8, 8), value, np.uint16)


def test_display_mode_drops_stale_sets_and_keeps_the_newest() -> None:
    recon = GatedWidefield()
    stream = StreamingPredictor(recon, mode="latest")
    assert stream.submit(_set(0), {"t": 0}) == 0
    assert recon.entered.acquire(timeout=30)  # set 0 is being reconstructed
    for t in range(1, 5):
        stream.submit(_set(t), {"t": t})  # each replaces the pending one
    for _ in range(2):
        recon.release.release()
    stats = stream.close(timeout=30)
    assert recon.seen == [0.0, 4.0]
    assert (stats.submitted, stats.processed, stats.dropped, stats.pending) == (5, 2, 3, 0)
    latest = stream.latest()
    assert latest is not None and latest.seq == 4 and latest.metadata == {"t": 4}
    assert latest.image is not None and latest.image.shape == (16, 16)


def test_every_set_mode_delivers_all_in_order() -> None:
    recon = GatedWidefield()
    delivered: list[int] = []
    stream = StreamingPredictor(recon, mode="every", on_result=lambda r: delivered.append(r.seq))
    stream.submit(_set(0))
    assert recon.entered.acquire(timeout=30)
    for t in range(1, 5):
        stream.submit(_set(t))
    for _ in range(5):
        recon.release.release()
    stats = stream.close(timeout=30)
    assert recon.seen == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert delivered == [0, 1, 2, 3, 4]
    results = list(stream.results())
    assert [r.seq for r in results] == [0, 1, 2, 3, 4]
    assert all(r.metadata is None for r in results)  # submitted without metadata
    assert (stats.processed, stats.dropped) == (5, 0)
    assert stats.latency_p50_ms is not None and stats.latency_p99_ms is not None
    assert stats.latency_p99_ms >= stats.latency_p50_ms > 0


def test_every_set_mode_with_a_bound_refuses_beyond_it() -> None:
    recon = GatedWidefield()
    stream = StreamingPredictor(recon, mode="every", max_pending=2)
    stream.submit(_set(0))
    assert recon.entered.acquire(timeout=30)
    assert [stream.submit(_set(t)) for t in (1, 2, 3)] == [1, 2, -1]
    for _ in range(3):
        recon.release.release()
    stats = stream.close(timeout=30)
    assert (stats.processed, stats.dropped, stats.submitted) == (3, 1, 4)


def test_a_failing_set_is_reported_and_the_stream_goes_on() -> None:
    torch.manual_seed(0)
    cfg = DFCANConfig(in_channels=9, n_groups=1, n_blocks=1, features=16, reduction=8,
                      size_psc=16)
    backend = TorchBackend(DFCAN(cfg), "cpu")
    with StreamingPredictor(backend, mode="every") as stream:
        stream.submit(_set(3)[:4])  # 4 frames for a 9-frame model
        stream.submit(np.random.default_rng(0).integers(0, 999, (9, 32, 32)).astype(np.uint16))
        bad, good = stream.get(timeout=60), stream.get(timeout=60)
    assert isinstance(bad.error, ValueError) and bad.image is None
    assert "needs 9 raw frames" in str(bad.error)
    assert good.error is None and good.image is not None and good.image.shape == (64, 64)
    stats = stream.stats()
    assert (stats.processed, stats.failed) == (1, 1)
    with pytest.raises(RuntimeError, match="closed"):
        stream.submit(_set(0))


def test_a_backend_streams_its_staged_path_with_the_same_results(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = DFCANConfig(in_channels=9, n_groups=1, n_blocks=1, features=16, reduction=8,
                      size_psc=16)
    backend = TorchBackend(DFCAN(cfg), "cpu")
    rng = np.random.default_rng(1)
    sets = [rng.integers(100, 3000, (9, 32, 32)).astype(np.uint16) for _ in range(4)]
    results: queue.Queue[StreamResult] = queue.Queue()
    stream = StreamingPredictor(backend, mode="every", on_result=results.put)
    for i, frames in enumerate(sets):
        stream.submit(frames, {"i": i})
    stream.close(timeout=120)
    got = [results.get_nowait() for _ in sets]
    for result, frames in zip(got, sets, strict=True):
        assert result.image is not None
        assert np.array_equal(result.image, backend.reconstruct(frames))
    assert [r.metadata["i"] for r in got] == [0, 1, 2, 3]


def test_refuses_what_is_not_a_reconstructor() -> None:
    with pytest.raises(TypeError, match="not a Reconstructor"):
        StreamingPredictor(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be"):
        StreamingPredictor(GatedWidefield(), mode="all")  # type: ignore[arg-type]


def test_metadata_comes_back_as_submitted() -> None:
    """Any metadata type: the very object submitted rides with its result."""
    recon = GatedWidefield()
    tag = ("set", 7)
    stream: StreamingPredictor[tuple[str, int] | None] = StreamingPredictor(recon, mode="every")
    stream.submit(_set(1), tag)
    stream.submit(_set(2), None)
    for _ in range(2):
        recon.release.release()
    stream.close(timeout=30)
    first, second = list(stream.results())
    assert first.metadata is tag and second.metadata is None
