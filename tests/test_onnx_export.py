"""ONNX export with the matmul DFT: equal to PyTorch under ONNX Runtime, within TensorRT's ops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from inference.backends.export_onnx import (
    INPUT_NAME,
    export_onnx,
    onnx_op_types,
    tensorrt_onnx_ops,
    unsupported_by_tensorrt,
)
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.dft import MatmulDFTFCA, plan_spectrum, with_matmul_dft
from inference.models.fca import FCALayer
from inference.models.weights import load_model

GOLDEN_H5 = Path(__file__).parent / "data" / "golden" / "dfcan_sisr_random_seed0.h5"
TOL = 1e-5


def _run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: x.numpy()})[0]


@pytest.mark.parametrize(
    ("height", "width", "size_psc"),
    [(64, 64, 32), (96, 64, 32), (80, 48, 32), (40, 24, None), (33, 35, None), (32, 32, 32),
     (128, 96, 32), (40, 48, 16)],
)
def test_matmul_dft_fca_equals_the_fft_layer(height: int, width: int, size_psc: int | None) -> None:
    torch.manual_seed(0)
    layer = FCALayer(16, 8, size_psc, 0.8)
    x = torch.randn(2, 16, height, width)
    fast = MatmulDFTFCA(layer, height, width)
    with torch.no_grad():
        assert torch.allclose(fast(x), layer(x), atol=2e-6, rtol=0)


def test_only_sampled_frequencies_and_half_the_columns_are_computed() -> None:
    plan = plan_spectrum(512, 512, 128)  # integer ratio 4: every 4th frequency
    assert len(plan.row_freqs) == 128 and (plan.row_freqs % 4 == 0).all()
    assert len(plan.col_freqs) == 65 and plan.col_freqs.max() == 256  # 0 … W/2 only
    assert plan.resize is None  # sampling, folded into the frequencies
    # every 4th frequency of 512 samples = the DFT of the input folded to 128 samples
    assert (plan.fold_rows, plan.fold_cols, plan.dft_height, plan.dft_width) == (4, 4, 128, 128)
    assert plan.macs_per_channel == plan_spectrum(128, 128, None).macs_per_channel
    full = plan_spectrum(128, 128, None)
    assert len(full.col_freqs) == 65 and len(full.row_freqs) == 128


def test_half_precision_spectrum_does_not_overflow() -> None:
    # unscaled, |F| of a 256² map of values ~2 reaches 1.3e5 > 65504 (float16's maximum)
    torch.manual_seed(0)
    layer = FCALayer(4, 2, 128, 0.8)
    fast = MatmulDFTFCA(layer, 256, 256)
    x = torch.rand(1, 4, 256, 256) * 2
    with torch.no_grad():
        ref = fast.spectrum(x)
        half = with_matmul_dft(torch.nn.Sequential(layer), 256, 256).half()[0].spectrum(x.half())
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    rel = ((half - ref).abs().max() / ref.abs().max()).item()
    assert rel < 1e-2, rel


def test_matmul_dft_leaves_the_original_model_unchanged() -> None:
    torch.manual_seed(0)
    model = DFCAN(DFCANConfig(n_groups=1, n_blocks=1, features=16, reduction=8, size_psc=16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with_matmul_dft(model, 32, 32)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert isinstance(model.groups[0].blocks[0].fca, FCALayer)


def test_golden_dfcan_exports_and_matches_the_official_output(tmp_path: Path) -> None:
    model = load_model(GOLDEN_H5)
    assert isinstance(model, DFCAN)
    path = export_onnx(model, tmp_path / "golden.onnx", 128, 128)
    x = torch.from_numpy(np.load(GOLDEN_H5.parent / "input_crop128.npy").transpose(0, 3, 1, 2))
    # the official model's output, which PyTorch reproduces to 3.9e-7 (test_dfcan_golden)
    expected = np.load(GOLDEN_H5.parent / "output_crop128.npy").transpose(0, 3, 1, 2)
    got = _run_onnx(path, x)
    assert got.shape == (1, 1, 256, 256)
    err = float(np.abs(got - expected).max())
    assert err <= TOL, err
    assert unsupported_by_tensorrt(path) == []
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["livesr.input_shape"]) == [1, 1, 128, 128]
    assert json.loads(meta["livesr.config"])["size_psc"] == 128


@pytest.mark.parametrize("shape", [(64, 48), (80, 48)])  # sampled and interpolated spectrum
def test_sim_dfcan_exports_and_matches_pytorch(tmp_path: Path, shape: tuple[int, int]) -> None:
    torch.manual_seed(1)
    cfg = DFCANConfig(in_channels=9, scale=2, n_groups=1, n_blocks=2, features=16, reduction=8,
                      size_psc=32)
    model = DFCAN(cfg).eval()
    path = export_onnx(model, tmp_path / "sim.onnx", *shape)
    x = torch.rand(1, 9, *shape)
    with torch.no_grad():
        expected = model(x).numpy()
    assert float(np.abs(_run_onnx(path, x) - expected).max()) <= TOL


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_every_exported_op_is_in_tensorrts_support_list(tmp_path: Path, precision: str) -> None:
    torch.manual_seed(0)
    cfg = DFCANConfig(n_groups=1, n_blocks=1, features=16, reduction=8, size_psc=16)
    path = export_onnx(DFCAN(cfg), tmp_path / f"m-{precision}.onnx", 40, 24, precision)
    ops = onnx_op_types(path)
    assert {"Conv", "MatMul", "Erf"} <= ops and "DFT" not in ops
    assert unsupported_by_tensorrt(path) == []
    if precision != "fp32":
        casts = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Cast"]
        assert casts, "a half-precision graph casts its float32 input"


def test_the_op_check_names_an_unsupported_op(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    node = helper.make_node("DFT", ["x"], ["y"], onesided=1)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.save(model, tmp_path / "dft.onnx")
    assert unsupported_by_tensorrt(tmp_path / "dft.onnx") == ["DFT", "opset 20 > 17"]


def test_the_support_list_says_where_it_comes_from() -> None:
    table = tensorrt_onnx_ops()
    assert table["source"].startswith("https://github.com/onnx/onnx-tensorrt/")
    assert table["tensorrt_version"] and table["max_opset"] == 17
    assert "DFT" in table["not_supported"] and "MatMul" in table["supported"]


def test_export_refuses_an_unknown_precision(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        export_onnx(DFCAN(DFCANConfig(n_groups=1, n_blocks=1)), tmp_path / "x.onnx", 8, 8, "int4")
