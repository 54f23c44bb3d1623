"""Fourier ring correlation (FRC) of two independent images of one scene, and its resolution.

The resolution is where the FRC falls below a threshold (1/7 by default; Nieuwenhuizen et al.,
Nat. Methods 2013).

    FRC(q) = Σ_ring F₁·F₂* / √(Σ_ring |F₁|² · Σ_ring |F₂|²)

Rings are one frequency step (1 / the image's larger side) wide. Both images are multiplied by
a Tukey window first, so that their borders do not correlate through the FFT's wrap-around.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.signal.windows import tukey

__all__ = ["FRCResult", "frc", "frc_resolution"]

FRC_THRESHOLD = 1.0 / 7.0


@dataclass(frozen=True)
class FRCResult:
    """An FRC curve and the resolution it gives."""

    frequency_per_nm: np.ndarray  # ring centres (cycles/nm)
    correlation: np.ndarray  # FRC per ring
    threshold: float
    resolution_nm: float  # 1 / the first crossing below ``threshold`` (interpolated)
    crossed: bool  # False: the curve stays above the threshold up to Nyquist


def frc(image1: np.ndarray, image2: np.ndarray, pixel_nm: float, *,
        threshold: float = FRC_THRESHOLD, window_alpha: float = 0.1) -> FRCResult:
    """Compute the FRC of two images of equal shape, with ``pixel_nm`` their pixel size."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (image1, image2))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"FRC needs two 2-D images of one shape, got {a.shape} and {b.shape}")
    if not pixel_nm > 0:
        raise ValueError(f"pixel_nm must be > 0, got {pixel_nm}")
    h, w = a.shape
    window = tukey(h, window_alpha)[:, None] * tukey(w, window_alpha)[None, :]
    fa = sfft.fft2((a - a.mean()) * window)
    fb = sfft.fft2((b - b.mean()) * window)
    ky = sfft.fftfreq(h, d=pixel_nm)[:, None]
    kx = sfft.fftfreq(w, d=pixel_nm)[None, :]
    step = 1.0 / (max(h, w) * pixel_nm)
    ring = np.rint(np.hypot(ky, kx) / step).astype(int).ravel()
    n_rings = round(0.5 / pixel_nm / step)  # up to Nyquist
    keep = ring <= n_rings
    ring = ring[keep]

    def ring_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(ring, values.ravel()[keep], minlength=n_rings + 1)

    cross = ring_sum((fa * np.conj(fb)).real)
    power = np.sqrt(ring_sum(np.abs(fa) ** 2) * ring_sum(np.abs(fb) ** 2))
    correlation = np.divide(cross, power, out=np.zeros_like(cross), where=power > 0)
    frequency = np.arange(n_rings + 1) * step
    resolution, crossed = _crossing(frequency, correlation, threshold)
    return FRCResult(frequency, correlation, threshold, resolution, crossed)


def frc_resolution(image1: np.ndarray, image2: np.ndarray, pixel_nm: float,
                   threshold: float = FRC_THRESHOLD) -> float:
    """Resolution (nm) by FRC at ``threshold``."""
    return frc(image1, image2, pixel_nm, threshold=threshold).resolution_nm


def _crossing(frequency: np.ndarray, correlation: np.ndarray,
              threshold: float) -> tuple[float, bool]:
    # skip the first rings (the DC ring and its neighbours hold few pixels)
    below = np.nonzero(correlation[3:] < threshold)[0]
    if below.size == 0:
        return float(1.0 / frequency[-1]), False
    i = int(below[0]) + 3
    f0, f1 = frequency[i - 1], frequency[i]
    c0, c1 = correlation[i - 1], correlation[i]
    f = f0 + (f1 - f0) * (c0 - threshold) / (c0 - c1) if c0 != c1 else f1
    return float(1.0 / f), True
