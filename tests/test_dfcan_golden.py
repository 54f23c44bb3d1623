"""Equivalence with the official TF/Keras DFCAN: random weights saved from the official model
definition, its input and its outputs (tests/data/golden, see its README).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import inference.models.fca
from inference.models.dfcan import DFCAN
from inference.models.weights import load_model
from inference.predict.official import predict
from inference.predict.processing import postprocess, prctile_norm

GOLDEN = Path(__file__).parent / "data" / "golden"
WEIGHTS = GOLDEN / "dfcan_sisr_random_seed0.h5"
MT_MRC = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dlsr" / "MT.mrc"
TOL = 1e-5


@pytest.fixture(scope="module")
def model() -> DFCAN:
    m = load_model(WEIGHTS)
    assert isinstance(m, DFCAN)
    return m


@pytest.fixture(scope="module")
def info() -> dict[str, dict[str, float]]:
    return json.loads((GOLDEN / "golden_info.json").read_text())


def _nhwc_to_nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


@pytest.fixture(scope="module")
def raw_crop128(model: DFCAN) -> np.ndarray:
    x = _nhwc_to_nchw(np.load(GOLDEN / "input_crop128.npy"))
    with torch.inference_mode():
        return model(x).numpy()


def test_inferred_config_is_the_official_dfcan(model: DFCAN) -> None:
    cfg = model.config
    assert (cfg.in_channels, cfg.scale, cfg.n_groups, cfg.n_blocks) == (1, 2, 4, 4)
    assert (cfg.gamma, cfg.size_psc, cfg.features, cfg.reduction) == (0.8, 128, 64, 16)


def test_raw_output_matches_official(raw_crop128: np.ndarray) -> None:
    expected = np.load(GOLDEN / "output_crop128.npy")  # NHWC (1, 256, 256, 1)
    assert raw_crop128.shape == (1, 1, 256, 256)
    err = np.abs(raw_crop128[:, 0] - expected[..., 0]).max()
    assert err <= TOL, f"raw output max abs error {err:.3g}"


def test_postprocessed_matches_official(raw_crop128: np.ndarray) -> None:
    expected = np.load(GOLDEN / "output_crop128_postproc.npy")
    ours = postprocess(raw_crop128)
    assert ours.shape == expected.shape == (256, 256)
    err = np.abs(ours - expected).max()
    assert err <= TOL, f"post-processed max abs error {err:.3g}"


def test_predict_pipeline_matches_official(model: DFCAN) -> None:
    image = np.load(GOLDEN / "input_crop128.npy")[0, :, :, 0]
    raw, result = predict(model, image, "sisr", "cpu")
    np.testing.assert_allclose(raw, np.load(GOLDEN / "output_crop128.npy")[0, :, :, 0], atol=TOL)
    expected = np.uint16(np.load(GOLDEN / "output_crop128_postproc.npy") * 65535)
    assert result.dtype == np.uint16
    assert np.abs(result.astype(np.int32) - expected).max() <= 1


def _full256_stats(model: DFCAN) -> tuple[float, float, float]:
    x = _nhwc_to_nchw(np.load(GOLDEN / "input_full256.npy"))
    with torch.inference_mode():
        out = model(x).numpy()
    assert out.shape == (1, 1, 512, 512)
    return float(out.min()), float(out.max()), float(out.mean())


@pytest.mark.parametrize(
    ("case", "size_psc"),
    [("full256", 128), pytest.param("full256_psc256", 256, marks=pytest.mark.slow)],
)
def test_full256_summary_matches_official(
    case: str, size_psc: int, info: dict[str, dict[str, float]]
) -> None:
    """At 256×256 with size_psc 128 the spectrum resize is active (only stats are known)."""
    model = load_model(WEIGHTS, size_psc=size_psc)
    got = _full256_stats(model)
    want = (info[case]["out_min"], info[case]["out_max"], info[case]["out_mean"])
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_full256_summary_detects_a_half_pixel_resize(
    model: DFCAN, info: dict[str, dict[str, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: torch's half-pixel bilinear misses the official stats."""

    def half_pixel(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    monkeypatch.setattr(inference.models.fca, "resize_bilinear_tf1_legacy", half_pixel)
    got = _full256_stats(model)
    want = (info["full256"]["out_min"], info["full256"]["out_max"], info["full256"]["out_mean"])
    assert np.abs(np.subtract(got, want)).max() > 10 * TOL


def test_full256_input_is_the_golden_image() -> None:
    """input_full256 (derived) re-normalised at its centre is the official crop input."""
    full = np.load(GOLDEN / "input_full256.npy")[0, :, :, 0].astype(np.float64)
    crop = np.load(GOLDEN / "input_crop128.npy")[0, :, :, 0]
    np.testing.assert_allclose(prctile_norm(full[64:192, 64:192]), crop, atol=1e-6)
    if not MT_MRC.is_file():
        pytest.skip("shared/reference/dlsr/MT.mrc not here: derivation not re-checked")
    import mrcfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.open(MT_MRC, permissive=True) as mrc:
            wf = np.asarray(mrc.data, dtype=np.float64).mean(axis=0)
    np.testing.assert_array_equal(prctile_norm(wf).astype(np.float32), full)
