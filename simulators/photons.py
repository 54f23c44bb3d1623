"""BioSR's "average photon count": the mean photons per foreground pixel of one raw frame.

Computed from a raw set as in BioSR: average the frames, remove the camera offset and convert
to photons, segment the foreground, and take the mean inside it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.filters import threshold_otsu

from .camera import CameraModel


def foreground_mask(image: np.ndarray, smooth_px: float = 2.0) -> np.ndarray:
    """Foreground of an image: Otsu's threshold on a Gaussian-smoothed copy."""
    smooth = gaussian_filter(np.asarray(image, dtype=np.float32), smooth_px)
    if np.ptp(smooth) == 0:
        return np.ones(image.shape, dtype=bool)
    return smooth > threshold_otsu(smooth)


def average_photon_count(raw: np.ndarray, camera: CameraModel | None = None) -> float:
    """Average photon count of a raw set (N, H, W) or a single frame (H, W) in camera ADU."""
    camera = camera or CameraModel()
    frames = np.asarray(raw, dtype=np.float32)
    wf = frames.mean(axis=0) if frames.ndim == 3 else frames
    photons = camera.photons_from_adu(wf)
    return float(photons[foreground_mask(photons)].mean())
