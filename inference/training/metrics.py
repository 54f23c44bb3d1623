"""The official image metrics (``utils.img_comp``): both images ``prctile_norm``ed first."""

from __future__ import annotations

import numpy as np

from inference.processing import prctile_norm

__all__ = ["nrmse", "upsample_wf"]


def nrmse(target: np.ndarray, prediction: np.ndarray) -> float:
    """``‖gt − pr‖ / ‖gt‖`` after ``prctile_norm`` of each (skimage's Euclidean NRMSE)."""
    gt = prctile_norm(np.squeeze(target).astype(np.float64))
    pr = prctile_norm(np.squeeze(prediction).astype(np.float64))
    if gt.shape != pr.shape:
        raise ValueError(f"nrmse: shapes differ, {gt.shape} and {pr.shape}")
    denominator = float(np.sqrt(np.mean(gt * gt)))
    if denominator == 0:
        raise ValueError("nrmse: the target is constant")
    return float(np.sqrt(np.mean((gt - pr) ** 2)) / denominator)


def upsample_wf(wf: np.ndarray, scale: int) -> np.ndarray:
    """The wide-field image on the SR grid: bicubic, pixel areas aligned (the baseline)."""
    from skimage.transform import resize

    h, w = wf.shape
    return resize(wf.astype(np.float64), (h * scale, w * scale), order=3, mode="reflect",
                  anti_aliasing=False).astype(np.float32)
