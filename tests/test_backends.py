"""Inference backends on the CPU: torch and ONNX Runtime equal the reference pipeline; ``auto``
picks what works here and falls back with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.backends import (
    BackendUnavailable,
    FallbackBackend,
    InferenceBackend,
    named_backend,
    select_backend,
)
from inference.backends.cpu_choice import candidates, machine_signature
from inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from inference.backends.processing_torch import normalise_frames, postprocess_t
from inference.backends.torch_backend import TorchBackend
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.predict.official import prepare_input
from inference.predict.processing import postprocess
from inference.reconstructor import DFCANReconstructor, Reconstructor

SIM9 = DFCANConfig(in_channels=9, n_groups=1, n_blocks=2, features=16, reduction=8, size_psc=16)
SISR = DFCANConfig(in_channels=1, scale=3, n_groups=1, n_blocks=1, features=16, reduction=8,
                   size_psc=16)


def _model(cfg: DFCANConfig, seed: int = 0) -> DFCAN:
    torch.manual_seed(seed)
    return DFCAN(cfg).eval()


def _frames(n: int, h: int = 48, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 4000, (n, h, w)).astype(np.uint16)


@pytest.fixture(scope="module")
def sim_model() -> DFCAN:
    return _model(SIM9)


def test_torch_processing_equals_numpy() -> None:
    raw = np.random.default_rng(1).random((70, 50))
    raw[5, 5], raw[30, 20] = 3.0, -1.0  # outliers for rm_outliers
    assert np.abs(postprocess_t(torch.from_numpy(raw)).numpy() - postprocess(raw)).max() < 1e-12
    stack = _frames(9)
    stack[0, 0, :3] = (0, 40000, 65535)  # the full uint16 range survives the upload
    for sisr, mode, ch in ((True, "sisr", 1), (False, "sim", 9)):
        got = normalise_frames(torch.from_numpy(stack), sisr).numpy()
        assert np.abs(got - prepare_input(stack, mode, ch)).max() < 1e-6


@pytest.mark.parametrize("dft", ["matmul", "fft"])
def test_torch_cpu_equals_the_reference_reconstructor(sim_model: DFCAN, dft: str) -> None:
    backend = TorchBackend(sim_model, "cpu", dft=dft)
    assert isinstance(backend, Reconstructor)
    assert (backend.name, backend.scale, backend.frames_per_set) == ("dfcan-sim", 2, 9)
    frames = _frames(9)
    out = backend.reconstruct(frames)
    ref = DFCANReconstructor(sim_model).reconstruct(frames)  # uint16-quantised
    assert out.shape == (96, 80) and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 2e-5


def test_raw_output_equals_the_network(sim_model: DFCAN, tmp_path: Path) -> None:
    frames = _frames(9)
    x = prepare_input(frames, "sim", 9)
    with torch.no_grad():
        expected = sim_model(torch.from_numpy(x))[0, 0].numpy()
    for backend in (TorchBackend(sim_model, "cpu", postprocess=False),
                    OnnxRuntimeBackend(sim_model, cache_dir=tmp_path, postprocess=False)):
        assert np.abs(backend.reconstruct(frames) - expected).max() <= 1e-5, backend
        assert np.abs(backend.infer(x) - expected).max() <= 1e-5, backend


def test_onnxruntime_equals_torch_and_caches_its_graph(sim_model: DFCAN, tmp_path: Path) -> None:
    frames = _frames(9, 32, 32)
    backend = OnnxRuntimeBackend(sim_model, cache_dir=tmp_path)
    out = backend.reconstruct(frames)
    assert np.abs(out - TorchBackend(sim_model, "cpu").reconstruct(frames)).max() <= 1e-5
    graphs = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(graphs) == 1 and "9x32x32-fp32" in graphs[0].name
    stamp = graphs[0].stat().st_mtime_ns
    OnnxRuntimeBackend(sim_model, cache_dir=tmp_path).prepare(32, 32)
    assert graphs[0].stat().st_mtime_ns == stamp  # reused, not exported again


def test_sisr_backend_averages_a_set() -> None:
    model = _model(SISR)
    backend = TorchBackend(model, "cpu")
    frames = _frames(9, 24, 24)
    out = backend.reconstruct(frames)
    assert out.shape == (72, 72)
    assert np.abs(out - backend.reconstruct(frames.mean(axis=0))).max() <= 1e-6


def test_wrong_input_is_refused_with_where_and_what(sim_model: DFCAN) -> None:
    with pytest.raises(ValueError, match=r"dfcan-sim \(torch-cpu fp32 [^)]*\): needs 9 raw frames"):
        TorchBackend(sim_model, "cpu").reconstruct(_frames(3))
    with pytest.raises(ValueError, match="torch on cpu runs fp32 or bf16, not fp16"):
        TorchBackend(sim_model, "cpu", "fp16")
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        named_backend("tensorflow", sim_model)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_gpu_backends_say_why_they_are_unavailable(sim_model: DFCAN) -> None:
    with pytest.raises(BackendUnavailable, match="CUDA is not available"):
        named_backend("tensorrt", sim_model)
    with pytest.raises(BackendUnavailable, match="CUDA is not available"):
        named_backend("torch", sim_model, device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU choice")
def test_auto_without_a_gpu_runs_the_fastest_accurate_cpu_configuration(
        sim_model: DFCAN, tmp_path: Path) -> None:
    backend = select_backend("auto", sim_model, shape=(32, 32), cache_dir=tmp_path)
    assert isinstance(backend, FallbackBackend) and isinstance(backend, Reconstructor)
    assert backend.skipped == []  # no GPU backend is tried where there is no GPU
    # the candidates were timed once here and recorded, fastest first
    recorded = json.loads((tmp_path / "cpu_choice.json").read_text())
    entry = recorded[machine_signature()]["32"]
    assert set(entry["ms"]) == set(candidates()) and entry["order"][0] == min(
        entry["ms"], key=entry["ms"].get)
    expected = {"onnxruntime-fp32": "onnxruntime fp32", "torch-fp32": "torch-cpu fp32",
                "torch-bf16": "torch-cpu bf16"}[entry["order"][0]]
    assert backend.description.startswith(expected)
    assert backend.reconstruct(_frames(9, 32, 32)).shape == (64, 64)
    # a later auto reads the record instead of timing again
    stamp = (tmp_path / "cpu_choice.json").stat().st_mtime_ns
    select_backend("auto", sim_model, shape=(32, 32), cache_dir=tmp_path)
    assert (tmp_path / "cpu_choice.json").stat().st_mtime_ns == stamp


class _OutOfMemoryOnRun(TorchBackend):
    """A backend whose device runs out of memory at run time (no GPU here to make it happen)."""

    def __init__(self, model: DFCAN) -> None:
        super().__init__(model, "cpu")
        self.kind = "torch-cuda"  # type: ignore[misc]

    def infer(self, x: np.ndarray) -> np.ndarray:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def complete(self, staged: object) -> np.ndarray:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_a_backend_failing_at_run_time_hands_over_with_a_warning(sim_model: DFCAN) -> None:
    chain = FallbackBackend([
        ("failing", lambda: _OutOfMemoryOnRun(sim_model)),
        ("torch-cpu", lambda: TorchBackend(sim_model, "cpu")),
    ])
    assert "torch-cuda" in chain.description
    frames = _frames(9, 32, 32)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        out = chain.reconstruct(frames)
    assert chain.description.startswith("torch-cpu")
    assert np.abs(out - TorchBackend(sim_model, "cpu").reconstruct(frames)).max() == 0
    with pytest.raises(ValueError, match="needs 9 raw frames"):  # the caller's error: no retry
        chain.reconstruct(_frames(4, 32, 32))
    assert chain.description.startswith("torch-cpu")


def test_no_working_backend_is_one_clear_error(sim_model: DFCAN) -> None:
    def broken() -> InferenceBackend:
        raise BackendUnavailable("nothing here")

    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match=r"a: .*nothing here"):
        FallbackBackend([("a", broken)])


# -- GPU (skipped without CUDA) ---------------------------------------------------------------

GOLDEN_H5 = Path(__file__).parent / "data" / "golden" / "dfcan_sisr_random_seed0.h5"
TRAINED = sorted((Path(__file__).parents[1] / "inference" / "weights").glob("*.safetensors"))
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("weights", [GOLDEN_H5, *TRAINED], ids=lambda p: Path(p).stem)
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_fast_torch_path_matches_fp32(weights: Path, precision: str) -> None:
    from inference.models.weights import load_model

    model = load_model(weights)
    assert isinstance(model, DFCAN)
    channels = model.config.in_channels
    frames = _frames(channels if channels > 1 else 9, 256, 256)
    ref = TorchBackend(model, "cuda", "fp32", dft="fft", channels_last=False, cuda_graphs=False,
                       postprocess=False).reconstruct(frames)
    fast = TorchBackend(model, "cuda", precision, postprocess=False)
    assert fast.cuda_graphs and fast.channels_last
    out = fast.reconstruct(frames)
    tol = 2e-3 if precision == "fp16" else 1e-2
    assert np.abs(out - ref).max() <= tol
    again = fast.reconstruct(frames)  # graph replay, ring slot reuse
    assert np.array_equal(out, again)
