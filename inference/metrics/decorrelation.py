"""Image resolution from one image by decorrelation analysis (Descloux et al., 2019).

Descloux, Grußmayer & Radenovic, "Parameter-free image resolution estimation based on
decorrelation analysis", Nat. Methods 16, 918–924, 2019; written from the paper's description.

With ``I(k)`` the image's spectrum and ``Iₙ(k) = I(k) / |I(k)|`` its phase alone, the
decorrelation function of a circular low-pass mask ``M(k; r)`` of radius ``r`` (normalised
frequency, 1 = Nyquist) is

    d(r) = Σ Re{I(k) Iₙ*(k) M(k; r)} / (‖I‖ · ‖Iₙ M(·; r)‖)

It rises while the mask takes in frequencies where the signal dominates and falls once it takes
in noise: its peak ``(r₀, A₀)`` marks where signal gives way to noise. Because a strong
low-frequency content can hide a weaker high-frequency one, the image is also high-pass filtered
by Gaussians of decreasing width σ (``1 − exp(−2π²σ²k²)``), each giving a peak ``(rᵢ, Aᵢ)``.
The cut-off frequency is the highest peak position among those whose amplitude is large enough,
``k_c = max rᵢ``, and the resolution ``2·pixel / k_c``.

Before the Fourier transform the image's mean is removed and its borders are apodised with a
cosine edge so that the wrap-around of the FFT adds no spurious high frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.signal.windows import tukey

__all__ = ["DecorrelationResult", "decorrelation_resolution"]

#: peaks below this amplitude are noise, not a signal–noise transition
MIN_PEAK_AMPLITUDE = 0.05


@dataclass(frozen=True)
class DecorrelationResult:
    """The decorrelation curves and the resolution they give."""

    radii: np.ndarray  # normalised frequency of each mask (1 = Nyquist)
    curve: np.ndarray  # d(r) of the unfiltered image
    peaks: list[tuple[float, float, float]]  # (σ px or 0 unfiltered, r, amplitude)
    cutoff: float  # k_c, normalised frequency (0: no peak found)
    resolution_px: float  # 2 / k_c (inf if no peak)
    resolution_nm: float  # resolution_px · pixel size

    @property
    def found(self) -> bool:
        """Whether a peak, and so a finite resolution, was found."""
        return self.cutoff > 0


def decorrelation_resolution(image: np.ndarray, pixel_nm: float = 1.0, *, n_radii: int = 100,
                             n_filters: int = 20, apodisation_px: int = 20
                             ) -> DecorrelationResult:
    """Resolution of one 2-D image by decorrelation analysis.

    Args:
        pixel_nm: pixel size (the result is also given in pixels).
        n_radii: masks sampled on (0, 1]; the peaks are refined between samples.
        n_filters: Gaussian high-pass filters, σ spaced geometrically from the image size
            down to 0.15 px.
        apodisation_px: width of the cosine edge at each border.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 16:
        raise ValueError(f"decorrelation needs a 2-D image of at least 16×16, got {a.shape}")
    if not pixel_nm > 0:
        raise ValueError(f"pixel_nm must be > 0, got {pixel_nm}")
    h, w = a.shape
    window = _edge_window(h, apodisation_px)[:, None] * _edge_window(w, apodisation_px)[None, :]
    spectrum = sfft.fft2((a - a.mean()) * window)
    # normalised radial frequency of every coefficient, 1 = Nyquist (0.5 cycles/px)
    ky = sfft.fftfreq(h)[:, None]
    kx = sfft.fftfreq(w)[None, :]
    k = (np.hypot(ky, kx) * 2.0).ravel()
    inside = k <= 1.0
    order = np.argsort(k[inside], kind="stable")
    k_sorted = k[inside][order]
    radii = np.linspace(0, 1, n_radii + 1)[1:]
    ends = np.searchsorted(k_sorted, radii, side="right")

    def curve(weights: np.ndarray) -> np.ndarray:
        filtered = (spectrum.ravel() * weights)
        amplitude = np.abs(filtered)
        # Re{I · Iₙ*} = |I|; ‖Iₙ M‖² counts the coefficients inside the mask (|Iₙ| = 1)
        nonzero = amplitude[inside][order] > 0
        cum_amplitude = np.concatenate([[0.0], np.cumsum(amplitude[inside][order])])
        cum_count = np.concatenate([[0], np.cumsum(nonzero)])
        norm = float(np.sqrt(np.sum(amplitude**2)))
        if norm == 0:
            return np.zeros_like(radii)
        count = cum_count[ends]
        return np.divide(cum_amplitude[ends], norm * np.sqrt(count),
                         out=np.zeros_like(radii), where=count > 0)

    base = curve(np.ones_like(k))
    peaks = []
    r0, a0 = _peak(radii, base)
    peaks.append((0.0, r0, a0))
    k_cycles = k / 2.0  # cycles per pixel
    for sigma in np.geomspace(max(h, w) / 4.0, 0.15, n_filters):
        weights = 1.0 - np.exp(-2.0 * np.pi**2 * sigma**2 * k_cycles**2)
        r, amp = _peak(radii, curve(weights))
        peaks.append((float(sigma), r, amp))
    valid = [r for _, r, amp in peaks if r > 0 and amp >= MIN_PEAK_AMPLITUDE]
    cutoff = max(valid, default=0.0)
    resolution_px = 2.0 / cutoff if cutoff > 0 else float("inf")
    return DecorrelationResult(radii, base, peaks, cutoff, resolution_px,
                               resolution_px * pixel_nm)


def _edge_window(n: int, edge_px: int) -> np.ndarray:
    """1 inside, a cosine roll-off over ``edge_px`` pixels at each end."""
    alpha = min(1.0, 2.0 * edge_px / n)
    return tukey(n, alpha)


def _peak(radii: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Return ``(r, amplitude)`` of the highest local maximum of a curve; (0, 0) if none.

    A maximum at the last sample does not count (the curve would still be rising there); the
    peak is refined by a parabola through it and its neighbours.
    """
    if values.size < 3:
        return 0.0, 0.0
    interior = np.nonzero((values[1:-1] >= values[:-2]) & (values[1:-1] > values[2:]))[0] + 1
    if interior.size == 0:
        return 0.0, 0.0
    i = int(interior[np.argmax(values[interior])])
    y0, y1, y2 = values[i - 1], values[i], values[i + 1]
    denominator = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / denominator if denominator < 0 else 0.0
    step = radii[1] - radii[0]
    return float(radii[i] + shift * step), float(y1 - 0.25 * (y0 - y2) * shift)
