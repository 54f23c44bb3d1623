"""The CPU path: exact rewrites of the network, bf16 and int8, and auto's choice per machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inference.backends import cpu_choice
from inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from inference.backends.torch_backend import TorchBackend
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.fca import FCALayer
from inference.models.fft_fca import FFTFoldFCA, with_fft_fold
from inference.models.subpixel_conv import SubpixelConv, with_subpixel_conv
from inference.models.weights import load_model

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dlsr" / "golden"
needs_golden = pytest.mark.skipif(not GOLDEN.is_dir(), reason="../shared/reference is missing")


@pytest.mark.parametrize(("height", "width", "size_psc", "folds"), [
    (64, 64, 32, (2, 2)), (128, 96, 32, (4, 3)), (40, 24, None, (1, 1)), (33, 35, None, (1, 1)),
    (256, 256, 128, (2, 2)),
])
def test_folded_real_fft_fca_equals_the_official_layer(
        height: int, width: int, size_psc: int | None, folds: tuple[int, int]) -> None:
    torch.manual_seed(0)
    layer = FCALayer(16, 8, size_psc, 0.8)
    x = torch.randn(2, 16, height, width)
    fast = FFTFoldFCA(layer, height, width)
    assert (fast.fold_h, fast.fold_w) == folds  # every f-th frequency: an f-times folded map
    with torch.no_grad():
        assert torch.allclose(fast(x), layer(x), atol=2e-6, rtol=0)


def test_a_resized_spectrum_keeps_the_matrix_dft() -> None:
    layer = FCALayer(8, 4, 16, 0.8)
    with pytest.raises(ValueError, match="resized, not sampled"):
        FFTFoldFCA(layer, 40, 40)  # 40 → 16 interpolates
    model = DFCAN(DFCANConfig(n_groups=1, n_blocks=1, features=8, reduction=4, size_psc=16))
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        assert torch.allclose(with_fft_fold(model, 40, 40)(x), model(x), atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3])
def test_subpixel_conv_equals_conv_after_depth_to_space(scale: int) -> None:
    torch.manual_seed(0)
    model = DFCAN(DFCANConfig(n_groups=1, n_blocks=1, features=16, reduction=8, size_psc=16,
                              scale=scale)).eval()
    fast = with_subpixel_conv(model)
    assert isinstance(fast.out, SubpixelConv) and isinstance(model.out, nn.Conv2d)
    x = torch.rand(1, 1, 24, 20)
    with torch.no_grad():
        assert (fast(x) - model(x)).abs().max() < 1e-6
    with pytest.raises(ValueError, match="3×3"):
        SubpixelConv(nn.Conv2d(4, 1, 5, padding=2), 2)


@needs_golden
def test_cpu_configurations_on_the_golden_case(tmp_path: Path) -> None:
    model = load_model(GOLDEN / "dfcan_sisr_random_seed0.h5")
    x = np.load(GOLDEN / "input_crop128.npy").transpose(0, 3, 1, 2).copy()
    official = np.load(GOLDEN / "output_crop128.npy")[0, :, :, 0]

    def error(backend: TorchBackend | OnnxRuntimeBackend) -> float:
        return float(np.abs(backend.infer(x) - official).max())

    assert error(TorchBackend(model, "cpu", postprocess=False)) < 1e-5
    assert error(OnnxRuntimeBackend(model, cache_dir=tmp_path, postprocess=False)) < 1e-5
    # bf16 in the FCABs' convolutions only: within the issue's 2e-3 (all-bf16 is 5.6e-3)
    assert error(TorchBackend(model, "cpu", "bf16", postprocess=False)) < 2e-3
    # int8, calibrated on other content: reported, not accurate enough for auto
    calibration = [np.ascontiguousarray(x[..., ::-1, :].transpose(0, 1, 3, 2))]
    int8 = OnnxRuntimeBackend(model, "int8", cache_dir=tmp_path, calibration=calibration,
                              postprocess=False)
    assert 2e-3 < error(int8) < 0.05
    graphs = list((tmp_path / "onnx").glob("*-int8-*.onnx"))
    assert len(graphs) == 1
    stamp = graphs[0].stat().st_mtime_ns
    OnnxRuntimeBackend(model, "int8", cache_dir=tmp_path, calibration=calibration).prepare(128,
                                                                                          128)
    assert graphs[0].stat().st_mtime_ns == stamp  # quantized once, then reused


def test_int8_without_calibration_calibrates_on_the_first_set(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DFCAN(DFCANConfig(n_groups=1, n_blocks=1, features=16, reduction=8, size_psc=16))
    backend = OnnxRuntimeBackend(model, "int8", cache_dir=tmp_path)
    backend.prepare(32, 32)
    assert not list((tmp_path / "onnx").glob("*-int8-*.onnx"))
    x = np.random.default_rng(0).random((1, 1, 32, 32), dtype=np.float32)
    out = backend.infer(x)
    assert out.shape == (64, 64) and len(list((tmp_path / "onnx").glob("*-int8-*.onnx"))) == 1
    with torch.no_grad():
        reference = model(torch.from_numpy(x))[0, 0].numpy()
    assert np.abs(out - reference).max() < 0.05


def test_auto_reads_the_recorded_choice_at_the_nearest_size(tmp_path: Path) -> None:
    assert cpu_choice.read_choice(tmp_path, 256) is None
    cpu_choice.record_choice(tmp_path, 128, {"torch-fp32": 5.0, "onnxruntime-fp32": 9.0}, "t")
    cpu_choice.record_choice(tmp_path, 512, {"torch-fp32": 90.0, "onnxruntime-fp32": 60.0}, "t")
    assert cpu_choice.read_choice(tmp_path, 160) == ["torch-fp32", "onnxruntime-fp32"]
    assert cpu_choice.read_choice(tmp_path, 400) == ["onnxruntime-fp32", "torch-fp32"]
    def unused(name: str, precision: str) -> TorchBackend:
        raise AssertionError("a recorded choice is not timed again")

    assert cpu_choice.ordered(unused, 1, (128, 128), tmp_path)[0] == "torch-fp32"


def test_bf16_is_a_candidate_only_where_the_cpu_has_bf16(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setattr(cpu_choice, "cpu_flags", lambda: {"avx512f", "avx512_vnni"})
    assert "torch-bf16" not in cpu_choice.candidates()
    def unused(name: str, precision: str) -> TorchBackend:
        raise AssertionError("nothing to time without a shape")

    assert cpu_choice.ordered(unused, 1, None, tmp_path) == ["torch-fp32", "onnxruntime-fp32"]
    monkeypatch.setattr(cpu_choice, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert "torch-bf16" in cpu_choice.candidates()
    assert cpu_choice.machine_signature() != ""
