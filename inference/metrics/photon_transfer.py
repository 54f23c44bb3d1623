"""A camera's offset, gain and read noise by the photon-transfer method.

From a series of dark frames and series of flat frames at a few intensities (each a stack of
the same scene, so that every pixel's temporal mean and variance can be taken):

- the offset is the dark frames' mean, the read noise their temporal σ (median over pixels);
- a flat's temporal variance, less the read variance, is shot noise: in camera counts it
  grows as ``gain · (mean − offset)`` (ADU per photo-electron), so the gain is the slope of
  variance against mean over the flats, fitted through the read-noise point.

The quantum efficiency cannot be told from counts alone (it needs a known photon flux); it is
taken from the camera's data sheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PhotonTransfer", "photon_transfer"]


@dataclass(frozen=True)
class PhotonTransfer:
    """A camera calibration and the points it was fitted to (mean, variance in ADU)."""

    offset_adu: float
    gain_adu_per_e: float
    read_noise_e: float
    qe: float
    #: per flat series: (mean − offset, temporal variance − read variance), ADU and ADU²
    points: tuple[tuple[float, float], ...]

    def as_settings(self) -> dict[str, float]:
        """Return the ``camera.calibration`` section of a microscope settings file."""
        return {"offset_adu": round(self.offset_adu, 3),
                "gain_adu_per_e": round(self.gain_adu_per_e, 5), "qe": self.qe,
                "read_noise_e": round(self.read_noise_e, 4)}


def _temporal(stack: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(stack, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise ValueError(f"{name}: needs a stack of at least 2 frames (n, H, W), got shape "
                         f"{frames.shape}")
    return frames.mean(axis=0), frames.var(axis=0, ddof=1)


def photon_transfer(dark: np.ndarray, flats: Sequence[np.ndarray], qe: float) -> PhotonTransfer:
    """Fit offset, gain (ADU/e⁻) and read noise (e⁻) from a dark stack and flat stacks."""
    if not 0 < qe <= 1:
        raise ValueError(f"qe must be in (0, 1], got {qe}")
    if not flats:
        raise ValueError("needs at least one flat series")
    dark_mean, dark_var = _temporal(dark, "dark")
    offset = float(np.median(dark_mean))
    read_var = float(np.median(dark_var))
    points = []
    for i, flat in enumerate(flats):
        mean, var = _temporal(flat, f"flat {i}")
        signal = float(np.median(mean - dark_mean))
        if signal <= 0:
            raise ValueError(f"flat {i}: no signal above the dark level")
        points.append((signal, float(np.median(var - dark_var))))
    signal, shot = np.array(points).T
    gain = float(np.sum(signal * shot) / np.sum(signal * signal))  # slope through the origin
    if gain <= 0:
        raise ValueError("the flats' variance does not grow with their signal: no shot noise")
    return PhotonTransfer(offset, gain, float(np.sqrt(read_var)) / gain, qe,
                          tuple((float(a), float(b)) for a, b in points))
