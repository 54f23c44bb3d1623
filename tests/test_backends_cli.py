"""``livesr predict --backend``, ``livesr compile`` and ``livesr bench`` on the CPU."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from acquisition.cli import main
from inference.cli.compile import parse_shape
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.weights import save_weights
from inference.predict.official import predict

if TYPE_CHECKING:
    from pathlib import Path

SIM9 = DFCANConfig(in_channels=9, n_groups=1, n_blocks=1, features=16, reduction=8, size_psc=16)


@pytest.fixture(scope="module")
def sim_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_weights(DFCAN(SIM9), tmp_path_factory.mktemp("w") / "sim9.safetensors")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIVESR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _stack(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 4000, (9, 32, 32)).astype(np.uint16)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch", "auto"])
def test_predict_on_a_backend_equals_the_reference(
    backend: str, sim_weights: Path, tmp_path: Path, cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if backend == "auto" and torch.cuda.is_available():
        pytest.skip("auto picks a half-precision GPU backend here (see the GPU tests)")
    np.save(tmp_path / "raw.npy", _stack())
    out = tmp_path / "sr.npy"
    device = ["--device", "cpu"] if backend == "torch" else []
    code = main(["predict", "--weights", str(sim_weights), "--input",
                 str(tmp_path / "raw.npy"), "--output", str(out), "--backend", backend,
                 *device])
    assert code == 0
    printed = capsys.readouterr().out
    assert " on " in printed and "fp32" in printed
    from inference.models.weights import load_model

    model = load_model(sim_weights)
    assert isinstance(model, DFCAN)
    _, expected = predict(model, _stack(), "sim")
    got = np.load(out)
    assert got.dtype == np.uint16 and got.shape == (64, 64)
    assert np.abs(got.astype(np.int64) - expected).max() <= 2  # uint16 rounding of ≤ 1e-5


def test_predict_backend_errors_are_one_line(
    sim_weights: Path, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "wf.npy", _stack()[0])
    code = main(["predict", "--weights", str(sim_weights), "--input", str(tmp_path / "wf.npy"),
                 "--output", str(tmp_path / "o.npy"), "--backend", "onnxruntime"])
    assert code == 2
    assert "sim mode needs a raw stack" in capsys.readouterr().err
    code = main(["predict", "--weights", str(sim_weights), "--input", str(tmp_path / "wf.npy"),
                 "--output", str(tmp_path / "o.npy"), "--precision", "fp16"])
    assert code == 2 and "--precision needs --backend" in capsys.readouterr().err
    if not torch.cuda.is_available():
        np.save(tmp_path / "raw.npy", _stack())
        code = main(["predict", "--weights", str(sim_weights), "--input",
                     str(tmp_path / "raw.npy"), "--output", str(tmp_path / "o.npy"),
                     "--backend", "tensorrt"])
        assert code == 2 and "CUDA is not available" in capsys.readouterr().err


def test_compile_exports_once_into_the_cache(
    sim_weights: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compile", "--weights", str(sim_weights), "--shape", "32x48",
            "--backend", "onnxruntime"]
    assert main(args) == 0
    assert "prepared 32x48 on onnxruntime fp32" in capsys.readouterr().out
    graphs = list((cache / "onnx").glob("*-9x32x48-fp32*.onnx"))
    assert len(graphs) == 1
    stamp = graphs[0].stat().st_mtime_ns
    assert main(args) == 0
    assert graphs[0].stat().st_mtime_ns == stamp


def test_shapes_parse_or_say_what_is_expected() -> None:
    assert parse_shape("512x256") == (512, 256) and parse_shape("300") == (300, 300)
    with pytest.raises(ValueError, match="HxW"):
        parse_shape("512 by 512")
    with pytest.raises(ValueError, match="1 … 16384"):
        parse_shape("0x4")


def test_bench_writes_json_and_a_chart(sim_weights: Path, tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "bench.json"
    configs = ["torch-fp32", "torch-bf16", "onnxruntime-fp32", "onnxruntime-int8"]
    assert main(["bench", "--weights", str(sim_weights), "--sizes", "16", "--repeats", "2",
                 "--warmup", "0", "--device", "cpu", "--output", str(out),
                 "--configs", *configs]) == 0
    result = json.loads(out.read_text())
    rows = {r["config"]: r for r in result["results"]}
    assert set(rows) == {"torch-eager-fp32", *configs}
    assert rows["torch-eager-fp32"]["ratio_to_eager_fp32"] == 1.0
    # the output error against the reference network, per configuration
    assert rows["torch-fp32"]["max_abs_error"] < 1e-5
    assert rows["onnxruntime-fp32"]["max_abs_error"] < 1e-5
    assert 0 < rows["torch-bf16"]["max_abs_error"] < 2e-3
    assert rows["onnxruntime-int8"]["max_abs_error"] > 0
    # the fastest accurate one is what auto now runs on this machine
    accurate = {c: rows[c]["p50_ms"] for c in ("torch-fp32", "onnxruntime-fp32", "torch-bf16")}
    assert result["auto_cpu_choice"] == {"16": min(accurate, key=accurate.get)}
    assert (cache / "cpu_choice.json").is_file()
    for row in rows.values():
        assert row["p99_ms"] >= row["p50_ms"] > 0 and row["gflop_per_frame"] > 0
        assert row["share_of_matmul_rate"] > 0
    assert result["matmul_flops_per_s"]["float32"] > 0 and result["machine"]["cpu"]
    assert out.with_suffix(".png").stat().st_size > 1000
