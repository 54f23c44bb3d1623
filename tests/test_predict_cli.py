"""``livesr predict`` through the dispatcher (``acquisition.cli.main``) and once as a process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile
import torch

from acquisition.cli import main
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.weights import load_model, save_weights
from inference.predict.image_io import read_image
from inference.predict.official import predict

GOLDEN = Path(__file__).parent / "data" / "golden"
GOLDEN_H5 = GOLDEN / "dfcan_sisr_random_seed0.h5"
SIM9 = DFCANConfig(in_channels=9, scale=2, n_groups=1, n_blocks=1, size_psc=32)


@pytest.fixture(scope="module")
def sim_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_weights(DFCAN(SIM9), tmp_path_factory.mktemp("w") / "sim9.safetensors")


@pytest.fixture(scope="module")
def sisr_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    cfg = DFCANConfig(in_channels=1, scale=3, n_groups=1, n_blocks=1, size_psc=32)
    return save_weights(DFCAN(cfg), tmp_path_factory.mktemp("w") / "sisr.safetensors")


def stack(n: int = 9, size: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(100, 4000, size=(n, size, size)).astype(np.uint16)


def cli(*args: str | Path) -> int:
    return main(["predict", *(str(a) for a in args)])


def test_golden_raw_and_postprocessed_outputs(tmp_path: Path) -> None:
    image = tmp_path / "wf.npy"
    np.save(image, np.load(GOLDEN / "input_crop128.npy")[0, :, :, 0])
    raw = tmp_path / "raw.npy"
    assert cli("--weights", GOLDEN_H5, "--input", image, "--output", raw, "--raw-output") == 0
    expected_raw = np.load(GOLDEN / "output_crop128.npy")[0, :, :, 0]
    out = np.load(raw)
    assert out.dtype == np.float32 and out.shape == (256, 256)
    assert np.abs(out - expected_raw).max() <= 1e-5
    tif = tmp_path / "sr.tif"
    assert cli("--weights", GOLDEN_H5, "--input", image, "--output", tif) == 0
    sr = tifffile.imread(tif)
    expected = np.uint16(np.load(GOLDEN / "output_crop128_postproc.npy") * 65535)
    assert sr.dtype == np.uint16 and sr.shape == (256, 256)
    assert np.abs(sr.astype(np.int32) - expected).max() <= 1


def test_nhwc_npy_as_dl_sr_saves_it_is_one_image(tmp_path: Path) -> None:
    """The golden input as stored, (1, 128, 128, 1) NHWC, reads as one 128² WF image."""
    raw = tmp_path / "raw.npy"
    assert cli("--weights", GOLDEN_H5, "--input", GOLDEN / "input_crop128.npy", "--output", raw,
               "--raw-output") == 0
    expected_raw = np.load(GOLDEN / "output_crop128.npy")[0, :, :, 0]
    assert np.abs(np.load(raw) - expected_raw).max() <= 1e-5


def test_channel_mismatch_names_the_input_shape(sim_weights: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "five.npy"
    np.save(image, stack(n=5))
    assert cli("--weights", sim_weights, "--input", image, "--output", tmp_path / "o.npy") == 2
    assert "takes 9 channels, the input has 5 (input shape (5, 24, 24))" in capsys.readouterr().err


def test_sim_stack_tif_to_npy(tmp_path: Path, sim_weights: Path) -> None:
    raw_stack = stack()
    tifffile.imwrite(tmp_path / "raw.tif", raw_stack)
    assert cli("--weights", sim_weights, "--input", tmp_path / "raw.tif",
               "--output", tmp_path / "sr.npy", "--mode", "sim") == 0  # fmt: skip
    sr = np.load(tmp_path / "sr.npy")
    assert sr.dtype == np.uint16 and sr.shape == (48, 48)
    model = load_model(sim_weights)
    assert isinstance(model, DFCAN)
    _, expected = predict(model, raw_stack, "sim")
    np.testing.assert_array_equal(sr, expected)


def test_sim_stack_is_normalised_jointly(sim_weights: Path) -> None:
    model = load_model(sim_weights)
    assert isinstance(model, DFCAN)
    raw_stack = stack().astype(np.float64)
    brighter = raw_stack.copy()
    brighter[0] *= 2  # joint normalisation: one brighter frame changes all the others' scale
    out_a, _ = predict(model, raw_stack)
    out_b, _ = predict(model, raw_stack * 7 + 3)  # affine changes of the whole stack: none
    out_c, _ = predict(model, brighter)
    np.testing.assert_allclose(out_a, out_b, atol=1e-6)
    assert np.abs(out_a - out_c).max() > 1e-4


def test_sisr_mode_averages_a_raw_stack_from_mrc(tmp_path: Path, sisr_weights: Path) -> None:
    raw_stack = stack(seed=3)
    with mrcfile.new(tmp_path / "raw.mrc") as mrc:
        mrc.set_data(raw_stack)
    assert cli("--weights", sisr_weights, "--input", tmp_path / "raw.mrc",
               "--output", tmp_path / "sr.npy", "--raw-output") == 0  # fmt: skip
    model = load_model(sisr_weights)
    assert isinstance(model, DFCAN)
    raw, _ = predict(model, raw_stack.astype(np.float64).mean(axis=0), "sisr")
    assert raw.shape == (72, 72)
    np.testing.assert_allclose(np.load(tmp_path / "sr.npy"), raw, atol=1e-6)


def test_reads_the_real_mt_mrc_if_present() -> None:
    path = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dlsr" / "MT.mrc"
    if not path.is_file():
        pytest.skip("shared/reference/dlsr/MT.mrc not here")
    data = read_image(path)
    assert data.shape == (9, 256, 256) and data.dtype == np.uint16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--input missing.npy --output o.tif", "input not found"),
        ("--input img.png --output o.tif", "unknown image format"),
        ("--input wf.npy --output o.png", "output must be"),
        ("--input wf.npy --output o.tif --raw-output", "--raw-output writes .npy"),
        ("--input wf.npy --output o.tif", "sim mode needs a raw stack"),
        ("--input s4.npy --output o.tif", "the model takes 9 channels, the input has 4"),
        ("--input s9.npy --output o.tif --mode sisr", "sisr mode needs a 1-channel model"),
        ("--input bad4d.npy --output o.tif", "expected a 2-D image or an"),
        ("--input nan.npy --output o.tif --mode sim", "NaN"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args: str,
    message: str,
    tmp_path: Path,
    sim_weights: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    np.save(tmp_path / "wf.npy", np.ones((16, 16)))
    np.save(tmp_path / "s4.npy", stack(4, 16))
    np.save(tmp_path / "s9.npy", stack(9, 16))
    np.save(tmp_path / "bad4d.npy", np.zeros((2, 9, 16, 16)))
    nan = stack(9, 16).astype(np.float32)
    nan[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "img.png").write_bytes(b"png")
    files = [str(tmp_path / a) if "." in a and not a.startswith("-") else a for a in args.split()]
    assert cli("--weights", sim_weights, *files) == 2
    err = capsys.readouterr().err
    assert err.startswith("livesr predict: error: ")
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "o.tif").exists()


def test_bad_weights_and_wrong_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "wf.npy", np.ones((16, 16)))
    (tmp_path / "w.safetensors").write_bytes(b"junk")
    assert cli("--weights", tmp_path / "w.safetensors", "--input", tmp_path / "wf.npy",
               "--output", tmp_path / "o.tif") == 2  # fmt: skip
    assert "not a readable safetensors file" in capsys.readouterr().err
    assert cli("--weights", GOLDEN_H5, "--input", tmp_path / "wf.npy",
               "--output", tmp_path / "o.tif", "--mode", "sim") == 2  # fmt: skip
    assert "sim mode needs a model trained on raw SIM stacks" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "wf.npy", np.ones((16, 16)))
    assert cli("--weights", GOLDEN_H5, "--input", tmp_path / "wf.npy",
               "--output", tmp_path / "o.tif", "--device", "cuda") == 2  # fmt: skip
    assert "CUDA is not available" in capsys.readouterr().err


def test_livesr_process_reports_errors_without_traceback(tmp_path: Path) -> None:
    exe = shutil.which("livesr", path=str(Path(sys.executable).parent)) or shutil.which("livesr")
    command = [exe] if exe else [sys.executable, "-m", "acquisition.cli"]
    env = {k: v for k, v in os.environ.items() if k != "LIVESR_DEBUG"}
    proc = subprocess.run(
        [*command, "predict", "--weights", str(GOLDEN_H5), "--input",
         str(tmp_path / "missing.tif"), "--output", str(tmp_path / "o.tif")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"livesr predict: error: input not found: {tmp_path}/missing.tif"


def test_predict_cli_import_is_light() -> None:
    code = "import sys, inference.cli.predict; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
