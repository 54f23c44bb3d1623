"""BioSR's "average photon count": the mean photons per foreground pixel of one raw frame.

Computed from a raw set as in BioSR: average the frames, remove the camera offset and convert
to photons, segment the foreground, and take the mean inside it. The conversion needs the
camera's calibration (offset, gain, quantum efficiency); :data:`DEMO_CAMERA` is that of the
simulated demo camera, the default where none is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.filters import threshold_otsu

__all__ = ["DEMO_CAMERA", "CameraCalibration", "PhotonConverter", "average_photon_count",
           "foreground_mask"]


class PhotonConverter(Protocol):
    """Anything that turns camera counts into photons (a calibration, a camera model)."""

    def photons_from_adu(self, adu: np.ndarray) -> np.ndarray:
        """Photons per pixel from camera counts."""
        ...


@dataclass(frozen=True)
class CameraCalibration:
    """A camera's mean offset (ADU), gain (ADU per photo-electron) and quantum efficiency."""

    offset: float = 100.0
    gain: float = 2.0
    qe: float = 0.8

    def photons_from_adu(self, adu: np.ndarray) -> np.ndarray:
        """Photons per pixel from camera counts (BioSR's convention)."""
        return (np.asarray(adu, dtype=np.float32) - self.offset) / (self.gain * self.qe)


#: the simulated demo camera (``simulators.camera.CameraModel``'s defaults)
DEMO_CAMERA = CameraCalibration()


def foreground_mask(image: np.ndarray, smooth_px: float = 2.0) -> np.ndarray:
    """Foreground of an image: Otsu's threshold on a Gaussian-smoothed copy."""
    smooth = gaussian_filter(np.asarray(image, dtype=np.float32), smooth_px)
    if np.ptp(smooth) == 0:
        return np.ones(image.shape, dtype=bool)
    return np.asarray(smooth > threshold_otsu(smooth))


def average_photon_count(raw: np.ndarray, camera: PhotonConverter | None = None) -> float:
    """Average photon count of a raw set (N, H, W) or a single frame (H, W) in camera ADU."""
    frames = np.asarray(raw, dtype=np.float32)
    wf = frames.mean(axis=0) if frames.ndim == 3 else frames
    photons = (camera or DEMO_CAMERA).photons_from_adu(wf)
    return float(photons[foreground_mask(photons)].mean())
