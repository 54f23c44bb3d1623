"""Image quality against a ground truth, as the official DL-SR evaluation scores it.

The official ``utils.img_comp`` ``prctile_norm``s both images (min–max, percentiles 0 and 100)
and then calls scikit-image's metrics; every function here does the same:

- :func:`nrmse`: ``‖gt − x‖ / ‖gt‖`` (scikit-image's Euclidean NRMSE; lower is better).
- :func:`psnr`: peak signal-to-noise ratio with a data range of 1 (dB).
- :func:`ssim`: scikit-image's SSIM with the settings the official call used: a 7×7 uniform
  window, K1 0.01, K2 0.03, and a data range of 2 (scikit-image ≤ 0.16 took the range of the
  float dtype, −1…1, when none was given; the official code gives none).
- :func:`ms_ssim`: multi-scale SSIM (Wang et al. 2003) by ``pytorch-msssim``: five scales with
  the standard weights, 11×11 Gaussian window σ 1.5, data range 1. Four halvings must leave
  the window room (a side above 160 pixels); a smaller image gets the largest odd window that
  fits, its σ scaled with it (e.g. 7×7, σ 0.95 at 128²), and images of 32 pixels or fewer
  per side are refused.
"""

from __future__ import annotations

import numpy as np

from inference.predict.processing import prctile_norm

__all__ = ["ms_ssim", "ms_ssim_window", "nrmse", "psnr", "ssim"]

_MS_SSIM_WINDOW, _MS_SSIM_SIGMA, _MS_SSIM_HALVINGS = 11, 1.5, 4
#: the data range scikit-image ≤ 0.16 used for float images (dtype range −1…1)
_OFFICIAL_SSIM_RANGE = 2.0


def _normalised_pair(truth: np.ndarray, image: np.ndarray, name: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    gt = prctile_norm(np.squeeze(np.asarray(truth)).astype(np.float64))
    x = prctile_norm(np.squeeze(np.asarray(image)).astype(np.float64))
    if gt.shape != x.shape:
        raise ValueError(f"{name}: shapes differ, {gt.shape} (truth) and {x.shape}")
    if gt.ndim != 2:
        raise ValueError(f"{name}: expected 2-D images, got shape {gt.shape}")
    return gt, x


def nrmse(truth: np.ndarray, image: np.ndarray) -> float:
    """``‖gt − x‖ / ‖gt‖`` after ``prctile_norm`` of each (0: identical)."""
    gt, x = _normalised_pair(truth, image, "nrmse")
    denominator = float(np.sqrt(np.mean(gt * gt)))
    if denominator == 0:
        raise ValueError("nrmse: the truth is constant")
    return float(np.sqrt(np.mean((gt - x) ** 2)) / denominator)


def psnr(truth: np.ndarray, image: np.ndarray) -> float:
    """PSNR in dB with a data range of 1, after ``prctile_norm`` of each (inf: identical)."""
    gt, x = _normalised_pair(truth, image, "psnr")
    mse = float(np.mean((gt - x) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def ssim(truth: np.ndarray, image: np.ndarray) -> float:
    """SSIM as the official evaluation computes it (1: identical)."""
    from skimage.metrics import structural_similarity

    gt, x = _normalised_pair(truth, image, "ssim")
    if min(gt.shape) < 7:
        raise ValueError(f"ssim: images need at least 7×7 pixels, got {gt.shape}")
    return float(structural_similarity(gt, x, win_size=7, data_range=_OFFICIAL_SSIM_RANGE))


def ms_ssim_window(shape: tuple[int, ...]) -> int:
    """Return the MS-SSIM window for an image of ``shape``.

    The window is 11, or the largest odd size that four halvings leave room for
    (``pytorch-msssim`` needs the smaller side > (window − 1) · 16).
    """
    side = min(shape)
    window = min(_MS_SSIM_WINDOW, (side - 1) // 2**_MS_SSIM_HALVINGS + 1)
    window -= 1 - window % 2
    if window < 3:
        raise ValueError(f"ms_ssim: images need more than {2 * 2**_MS_SSIM_HALVINGS} pixels per "
                         f"side for five scales, got {tuple(shape)}")
    return window


def ms_ssim(truth: np.ndarray, image: np.ndarray) -> float:
    """Multi-scale SSIM after ``prctile_norm`` of each (1: identical)."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    gt, x = _normalised_pair(truth, image, "ms_ssim")
    window = ms_ssim_window(gt.shape)
    a, b = (torch.from_numpy(v)[None, None] for v in (gt, x))
    value = _ms_ssim(a, b, data_range=1.0, win_size=window,
                     win_sigma=_MS_SSIM_SIGMA * window / _MS_SSIM_WINDOW)
    return float(value)
