"""Pre- and post-processing of the official predict (``utils/utils.py``), in NumPy.

Pre: ``prctile_norm`` of the input (a raw SIM stack jointly).
Post: ``rm_outliers(prctile_norm(out))``, then ``uint16(out · 65535)`` (truncating).
"""

from __future__ import annotations

import numpy as np

__all__ = ["diffxy", "postprocess", "prctile_norm", "remove_hot_pixels", "rm_outliers",
           "to_uint16"]


def prctile_norm(x: np.ndarray, min_prc: float = 0, max_prc: float = 100) -> np.ndarray:
    """Map the ``min_prc`` and ``max_prc`` percentiles to 0 and 1, clipping outside (new array)."""
    low = np.percentile(x, min_prc)
    y = (x - low) / (np.percentile(x, max_prc) - low + 1e-7)
    y[y > 1] = 1
    y[y < 0] = 0
    return y


def diffxy(img: np.ndarray, order: int = 3) -> np.ndarray:
    """``order`` times: normalise, then keep the positive excess over the 4-neighbour mean."""
    for _ in range(order):
        img = prctile_norm(img)
        d = np.zeros_like(img)
        dx = (img[1:-1, 0:-2] + img[1:-1, 2:]) / 2
        dy = (img[0:-2, 1:-1] + img[2:, 1:-1]) / 2
        d[1:-1, 1:-1] = img[1:-1, 1:-1] - (dx + dy) / 2
        d[d < 0] = 0
        img = d
    return img


def remove_hot_pixels(img: np.ndarray, order: int = 3, thresh: float = 0.2) -> np.ndarray:
    """Replace isolated hot pixels (``diffxy > thresh``) by the mean of their 4 neighbours.

    Neighbours wrap around at the border (as ``np.roll``). The intensities are not rescaled (the
    detection is: it is the same for ``img`` and any ``a·img + b``, ``a > 0``). ``img`` is left
    unchanged.
    """
    mask = diffxy(img, order) > thresh
    img_mean = np.zeros_like(img)
    for shift in (-1, 1):
        for axis in (0, 1):
            img_mean = img_mean + np.roll(img, shift, axis=axis)
    img_mean = img_mean / 4
    cleaned = img.copy()
    cleaned[mask] = img_mean[mask]
    return cleaned


def rm_outliers(img: np.ndarray, order: int = 3, thresh: float = 0.2) -> np.ndarray:
    """Apply the official ``rm_outliers``: :func:`remove_hot_pixels`, then ``prctile_norm``.

    ``img`` is left unchanged.
    """
    return prctile_norm(remove_hot_pixels(img, order, thresh))


def to_uint16(img: np.ndarray) -> np.ndarray:
    """``uint16(img · 65535)`` for ``img`` in [0, 1], truncating like the official ``np.uint16``."""
    return (np.clip(img, 0, 1) * 65535).astype(np.uint16)


def postprocess(raw: np.ndarray) -> np.ndarray:
    """Apply the official post-processing (before the uint16 cast).

    ``rm_outliers(prctile_norm(raw))``, on ``raw`` squeezed.
    """
    return rm_outliers(prctile_norm(np.squeeze(raw)))
