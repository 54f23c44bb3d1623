"""Errors against a ground truth, invariant to the unknown intensity scale and offset."""

from __future__ import annotations

import numpy as np

__all__ = ["nrmse_affine"]


def nrmse_affine(image: np.ndarray, truth: np.ndarray) -> float:
    """Return the RMS error of ``image`` against ``truth`` after a least-squares affine fit.

    The fit is ``a·image + b`` to the truth; the error is divided by the truth's standard
    deviation (0: perfect, 1: no better than a flat image).
    """
    x = np.asarray(image, dtype=np.float64).ravel()
    y = np.asarray(truth, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"nrmse_affine: shapes differ, {np.shape(image)} and {np.shape(truth)}")
    design = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    spread = float(y.std())
    if spread == 0:
        raise ValueError("nrmse_affine: the truth is constant")
    return float(np.sqrt(np.mean(residual**2)) / spread)
