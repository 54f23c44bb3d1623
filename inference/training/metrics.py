"""The official image metrics (``utils.img_comp``) that training and held-out evaluation report.

Both images are ``prctile_norm``ed first (:mod:`inference.metrics.quality`).
"""

from __future__ import annotations

import numpy as np

from inference.metrics.quality import nrmse

__all__ = ["nrmse", "upsample_wf"]


def upsample_wf(wf: np.ndarray, scale: int) -> np.ndarray:
    """Upsample the wide-field image to the SR grid: bicubic, pixel areas aligned (the baseline)."""
    from skimage.transform import resize

    h, w = wf.shape
    return resize(wf.astype(np.float64), (h * scale, w * scale), order=3, mode="reflect",
                  anti_aliasing=False).astype(np.float32)
