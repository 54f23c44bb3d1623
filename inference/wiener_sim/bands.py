"""Shared pieces of estimation and reconstruction.

Frequency grids, edge taper, band separation and spectrum padding (the last written for NumPy and
PyTorch arrays alike).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["debiased_ratio", "edge_window", "frequency_grid", "noise_power", "pad_spectrum",
           "separation_matrix"]


def frequency_grid(shape: tuple[int, int], pixel_um: float) -> tuple[np.ndarray, np.ndarray]:
    """(k_y[:, None], k_x[None, :]) in cycles/µm on the unshifted FFT grid of ``shape``."""
    ky = np.fft.fftfreq(shape[0], d=pixel_um)
    kx = np.fft.fftfreq(shape[1], d=pixel_um)
    return ky[:, None], kx[None, :]


def edge_window(shape: tuple[int, int], taper_px: int) -> np.ndarray:
    """Return a window of 1 inside, a cosine fall to 0 over ``taper_px`` pixels at every edge.

    Against the FFT's wrap-around of real, non-periodic images. ``taper_px`` 0: all ones.
    """
    rows = []
    for n in shape:
        w = np.ones(n)
        t = min(int(taper_px), n // 4)
        if t > 0:
            ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(t) + 0.5) / t)
            w[:t], w[n - t:] = ramp, ramp[::-1]
        rows.append(w)
    return (rows[0][:, None] * rows[1][None, :]).astype(np.float32)


def separation_matrix(phases_rad: np.ndarray, harmonics: int) -> np.ndarray:
    """Return rows m = 0…harmonics of the pseudo-inverse of ``A[p, m] = e^{i m φ_p}`` (m = −M…M).

    Applied to one orientation's frame spectra it returns its bands m ≥ 0.
    """
    orders = np.arange(-harmonics, harmonics + 1)
    mixing = np.exp(1j * np.outer(np.asarray(phases_rad, dtype=np.float64), orders))
    inverse = np.linalg.pinv(mixing)
    return inverse[harmonics:]  # rows for m = 0 … M


def pad_spectrum(spectrum: Any, out: Any) -> Any:
    """Copy unshifted spectra (…, h, w) into the centre frequencies of ``out`` (…, H, W).

    ``out`` is a zeroed array (NumPy or PyTorch), returned. The Nyquist row/column goes to the
    negative side.
    """
    h, w = spectrum.shape[-2:]
    hh, wh = h // 2, w // 2
    out[..., :hh, :wh] = spectrum[..., :hh, :wh]
    out[..., :hh, -(w - wh):] = spectrum[..., :hh, wh:]
    out[..., -(h - hh):, :wh] = spectrum[..., hh:, :wh]
    out[..., -(h - hh):, -(w - wh):] = spectrum[..., hh:, wh:]
    return out


def noise_power(band: np.ndarray, beyond: np.ndarray) -> float:
    """Mean |band|² per frequency where the optics pass nothing (``beyond``: the mask there).

    Shot and read noise are white, so this is the band's noise power at every frequency; 0 when
    the mask is empty (no frequency of the grid lies beyond the cutoff).
    """
    return float(np.mean(np.abs(band[beyond]) ** 2)) if np.any(beyond) else 0.0


def debiased_ratio(lower: np.ndarray, upper: np.ndarray, noise: float,
                   lower_weight: np.ndarray) -> tuple[complex, float]:
    """Least-squares ratio ``upper / lower`` over paired samples, without the noise's bias.

    ``lower`` holds noise of power ``noise`` per frequency times ``lower_weight``: it adds to
    Σ|lower|² but not to the cross term, which pulls the ratio toward 0 at low light (a
    modulation of 0.9 read as 0.55 at 15 photons). It is subtracted, keeping at least a tenth of
    the sum. Returns the ratio (0 when there is nothing) and the denominator used.
    """
    power = float(np.vdot(lower, lower).real)
    denominator = max(power - noise * float(np.sum(np.abs(lower_weight) ** 2)), 0.1 * power)
    if denominator <= 0:
        return 0j, 0.0
    return complex(np.vdot(lower, upper)) / denominator, denominator
