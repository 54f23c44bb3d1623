"""The official image metrics and decorrelation analysis on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio

from inference.metrics.decorrelation import decorrelation_resolution
from inference.metrics.quality import ms_ssim, ms_ssim_window, nrmse, psnr, ssim
from inference.predict.processing import prctile_norm


def _smooth_truth(size: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth image in [0.2, 0.8] with one pixel at 0 and one at 1 (prctile_norm keeps it)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    image = gaussian_filter(rng.random((size, size)), 4)
    image = 0.2 + 0.6 * (image - image.min()) / np.ptp(image)
    image[0, 0], image[-1, -1] = 0.0, 1.0
    return image


def test_identical_images_score_perfectly() -> None:
    truth = _smooth_truth()
    assert nrmse(truth, truth) == 0.0
    assert psnr(truth, truth) == math.inf
    assert ssim(truth, truth) == pytest.approx(1.0)
    assert ms_ssim(truth, truth) == pytest.approx(1.0, abs=1e-6)
    # the scale and offset of either image do not matter: both are prctile_normed
    assert nrmse(truth, 3.0 * truth + 7.0) == pytest.approx(0.0, abs=1e-6)


def test_known_noise_gives_the_expected_errors() -> None:
    truth = _smooth_truth()
    sigma = 0.05
    signs = np.random.default_rng(1).choice([-1.0, 1.0], truth.shape)
    signs[0, 0] = signs[-1, -1] = 0.0  # the extremes stay: prctile_norm changes nothing
    noisy = truth + sigma * signs
    mse = sigma**2 * (truth.size - 2) / truth.size
    assert nrmse(truth, noisy) == pytest.approx(math.sqrt(mse / np.mean(truth**2)), rel=1e-6)
    assert psnr(truth, noisy) == pytest.approx(-10 * math.log10(mse), rel=1e-6)
    # the same as scikit-image's metrics on the prctile_normed images (the official calls)
    gt, pr = prctile_norm(truth), prctile_norm(noisy)
    assert nrmse(truth, noisy) == pytest.approx(normalized_root_mse(gt, pr), rel=1e-9)
    assert psnr(truth, noisy) == pytest.approx(peak_signal_noise_ratio(gt, pr, data_range=1))
    # similarity falls as the noise grows
    noisier = truth + 4 * sigma * signs
    assert 1 > ssim(truth, noisy) > ssim(truth, noisier)
    assert 1 > ms_ssim(truth, noisy) > ms_ssim(truth, noisier)


def test_gaussian_noise_nrmse_matches_its_level() -> None:
    truth = _smooth_truth(256)
    noise = np.random.default_rng(2).normal(0, 0.02, truth.shape)
    noise[0, 0] = noise[-1, -1] = 0.0
    noisy = np.clip(truth + noise, 0, 1)
    expected = 0.02 / math.sqrt(np.mean(truth**2))
    assert nrmse(truth, noisy) == pytest.approx(expected, rel=0.03)


def test_ms_ssim_window_fits_small_images_and_refuses_tiny_ones() -> None:
    assert ms_ssim_window((256, 256)) == 11
    assert ms_ssim_window((161, 300)) == 11
    assert ms_ssim_window((128, 128)) == 7
    assert ms_ssim_window((64, 64)) == 3
    small = _smooth_truth(64)
    assert ms_ssim(small, small) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="more than 32 pixels"):
        ms_ssim_window((32, 32))
    with pytest.raises(ValueError, match="shapes differ"):
        nrmse(small, small[:-2])


def test_training_reports_the_same_official_nrmse() -> None:
    from inference.training import metrics

    assert metrics.nrmse is nrmse


def _band_limited(size: int, cutoff_cycles_per_px: float, noise: float, seed: int
                  ) -> np.ndarray:
    """White signal cut off sharply at ``cutoff`` (its resolution: 1 / cutoff), plus weaker
    white noise.
    """
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.fftfreq(size)[None, :]
    spectrum = np.fft.fft2(rng.standard_normal((size, size)))
    spectrum[np.hypot(ky, kx) > cutoff_cycles_per_px] = 0
    signal = np.fft.ifft2(spectrum).real
    return signal / signal.std() + noise * rng.standard_normal((size, size))


@pytest.mark.parametrize(("cutoff", "noise"), [(0.25, 0.2), (0.15, 0.1), (0.35, 0.3)])
def test_decorrelation_finds_a_known_resolution_within_10_percent(cutoff: float,
                                                                   noise: float) -> None:
    image = _band_limited(256, cutoff, noise, seed=3)
    result = decorrelation_resolution(image, pixel_nm=30.0)
    expected_nm = 30.0 / cutoff
    assert result.found
    assert result.resolution_nm == pytest.approx(expected_nm, rel=0.10)


def test_decorrelation_finds_no_resolution_in_white_noise() -> None:
    noise = np.random.default_rng(4).standard_normal((256, 256))
    result = decorrelation_resolution(noise)
    # all frequencies up to Nyquist carry the same "signal": 2 px at best, or no peak at all
    assert not result.found or result.resolution_px <= 2.2


def test_decorrelation_ranks_sim_above_wide_field() -> None:
    """The SIM-limited ground truth of a simulated sample resolves finer than its WF image."""
    from simulators import simulate

    s = simulate("microtubules", photons=600, size=128, seed=5)
    wf_nm = decorrelation_resolution(s.wf, s.params["camera_pixel_nm"]).resolution_nm
    gt_nm = decorrelation_resolution(s.gt, s.params["sr_pixel_nm"]).resolution_nm
    assert gt_nm < 0.75 * wf_nm
    assert 150 < wf_nm < 300  # the wide-field limit of NA 1.49 at 525 nm is ≈ 176–215 nm
