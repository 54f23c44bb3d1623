"""Per-set phase tracking: the pattern's drift since its calibration, cheap enough for every set.

A time-lapse reuses one calibration (carriers, phase steps, modulation), but the phases drift:
stage and sample drift, a warming SLM or grating, focus. Re-estimating the whole pattern per set
costs ~20× the reconstruction at 512². With the carriers and phase steps known, a common phase
drift δ of one orientation only turns its side band: separated with the calibration's phases,
band 1 of the new set is ``a·e^{iδ}`` times the sample where band 0 is ``1`` times it. So δ is
the angle of the least-squares ratio of band 1 (shifted by the carrier) to band 0 in their
overlap, on the camera grid (there is no aliasing there: band 1 beyond the cutoff is empty),
measured against the same ratio on the calibration's own set. Its 1-σ comes from the noise power
beyond the cutoff (shot and read noise are white).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft as sfft

from inference.wiener_sim.bands import (
    debiased_ratio,
    edge_window,
    frequency_grid,
    noise_power,
    separation_matrix,
)

if TYPE_CHECKING:
    from inference.wiener_sim.calibration import SIMCalibration
    from inference.wiener_sim.otf import OTFModel

__all__ = ["MAX_DRIFT_SIGMA_RAD", "PhaseDrift", "PhaseTracker"]

#: a set whose drift is more uncertain than this (1-σ) is not trusted: the last good drift is kept
MAX_DRIFT_SIGMA_RAD = 0.3
#: below this many σ the side band is not significant in the set (no modulation seen)
MIN_BAND_SIGMAS = 3.0


@dataclass(frozen=True)
class PhaseDrift:
    """One set's pattern drift since the calibration, per orientation.

    ``problem`` says why the set cannot be trusted (``None``: it can).
    """

    drift_rad: np.ndarray  # (n_orientations,) first-harmonic phase change, in (−π, π]
    sigma_rad: np.ndarray  # (n_orientations,) its 1-σ
    modulation: np.ndarray  # (n_orientations,) the first harmonic's depth seen in this set
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every orientation's drift is trusted."""
        return self.problem is None

    def corrections(self, harmonics: int) -> np.ndarray:
        """Return the factors ``e^{−i·h·δ}`` that turn each band h ≥ 1 back.

        Shape ``(n_orientations, harmonics)``.
        """
        h = np.arange(1, harmonics + 1)
        return np.exp(-1j * np.outer(self.drift_rad, h))


@dataclass
class _Overlap:
    """One orientation's overlap of band 0 with band 1 shifted by the carrier."""

    ramp: np.ndarray  # e^{−i2π k·r} on the camera grid
    mask: np.ndarray  # the overlap, both OTFs above 1e-3, not DC
    weight_lower: np.ndarray  # OTF of band 1 at the sample frequency, in the overlap
    weight_upper: np.ndarray  # OTF of band 0 there
    reference: complex = field(default=0j)


class PhaseTracker:
    """Measure each set's phase drift against a calibration (numpy, on the camera grid).

    Parameters
    ----------
    calibration
        The pattern in use: carriers, phases (for the band separation), background.
    otf
        The detection OTF the calibration was made with.
    reference
        The raw set the calibration was estimated from: drift is measured against it.
    taper_px
        Edge taper of the frames, as in the reconstruction.
    """

    def __init__(self, calibration: SIMCalibration, otf: OTFModel, reference: np.ndarray,
                 taper_px: int = 8) -> None:
        geo = calibration.geometry
        self.calibration = calibration
        self.n_orientations, self.n_phases = geo.n_orientations, geo.n_phases
        h, w = calibration.shape
        p = calibration.pixel_um
        self._window = edge_window((h, w), taper_px)
        ky, kx = frequency_grid((h, w), p)
        otf_grid = otf(ky, kx)
        self._beyond = otf_grid <= 0
        cutoff = otf.cutoff_per_um
        not_dc = np.hypot(ky, kx) > 0.05 * cutoff
        y = np.arange(h) * p
        x = np.arange(w) * p
        self._separation = [separation_matrix(calibration.phases_rad[o], geo.harmonics)[:2]
                            for o in range(geo.n_orientations)]
        self._overlaps = []
        for k in calibration.k_per_um:
            upper = otf(ky + k[0], kx + k[1])
            mask = not_dc & (otf_grid > 1e-3) & (upper > 1e-3)
            ramp = np.exp(-2j * np.pi * (k[0] * y[:, None] + k[1] * x[None, :]))
            self._overlaps.append(_Overlap(ramp.astype(np.complex64), mask,
                                           otf_grid[mask], upper[mask]))
        ratios, _, _ = self._ratios(reference)
        for overlap, ratio in zip(self._overlaps, ratios, strict=True):
            overlap.reference = ratio

    def measure(self, frames: np.ndarray) -> PhaseDrift:
        """Return the drift of ``frames`` (a raw set of the calibration's shape)."""
        ratios, sigmas, noise_only = self._ratios(frames)
        drift = np.array([np.angle(r * np.conj(o.reference))
                          for r, o in zip(ratios, self._overlaps, strict=True)])
        magnitude = np.abs(ratios)
        sigma = sigmas / (np.sqrt(2.0) * np.maximum(magnitude, 1e-12))
        problem = None
        for o in range(self.n_orientations):
            if noise_only[o]:
                problem = f"orientation {o}: the set holds no signal above the background"
            elif magnitude[o] < MIN_BAND_SIGMAS * sigmas[o]:
                problem = (f"orientation {o}: no modulation seen (side band {magnitude[o]:.3f} "
                           f"± {sigmas[o]:.3f})")
            elif sigma[o] > MAX_DRIFT_SIGMA_RAD:
                problem = (f"orientation {o}: phase drift uncertain by ±{sigma[o]:.2f} rad "
                           f"(more than {MAX_DRIFT_SIGMA_RAD} rad)")
            if problem:
                break
        return PhaseDrift(drift, sigma, 2 * magnitude, problem)

    def _ratios(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Band-1/band-0 ratio per orientation, its complex 1-σ, and whether it saw no signal."""
        stack = np.asarray(frames, dtype=np.float32)
        if stack.shape[1:] != self.calibration.shape:
            raise ValueError(f"phase tracking: the set is {stack.shape[1:]}, the calibration "
                             f"{self.calibration.shape}")
        spectra = sfft.fft2((stack - np.float32(self.calibration.background)) * self._window,
                            workers=-1)
        n_p = self.n_phases
        ratios = np.zeros(self.n_orientations, complex)
        sigmas = np.zeros(self.n_orientations)
        empty = np.zeros(self.n_orientations, bool)
        for o, overlap in enumerate(self._overlaps):
            band0, band1 = np.einsum("mp,phw->mhw", self._separation[o],
                                     spectra[o * n_p:(o + 1) * n_p])
            upper = sfft.fft2(sfft.ifft2(band1, workers=-1) * overlap.ramp, workers=-1)
            a = overlap.weight_upper * band0[overlap.mask]
            b = overlap.weight_lower * upper[overlap.mask]
            ratios[o], denominator = debiased_ratio(
                a, b, noise_power(band0, self._beyond), overlap.weight_upper)
            if denominator <= 0:
                empty[o] = True
                sigmas[o] = np.inf
                continue
            noise1 = noise_power(band1, self._beyond)
            spread = noise1 * float(np.sum(np.abs(a) ** 2 * overlap.weight_lower ** 2))
            sigmas[o] = np.sqrt(spread) / denominator
        return ratios, sigmas, empty
