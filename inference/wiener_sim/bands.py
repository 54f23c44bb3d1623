"""Shared pieces of estimation and reconstruction.

Frequency grids, edge taper, band separation and spectrum padding (the last written for NumPy and
PyTorch arrays alike).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["edge_window", "frequency_grid", "pad_spectrum", "separation_matrix"]


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
