"""The detection OTF from measurements: a bead image, or the damping fitted to the SIM set itself.

- :func:`otf_from_psf`: the radial OTF of a bead image (a sub-resolution bead, in focus, with
  its pixel size), for :class:`~inference.wiener_sim.otf.OTFModel`'s ``measured`` profile.
  The bead's own size can be divided out (a uniform sphere of that diameter).
- :func:`fit_damping`: the ``curvature`` of the damped model (ideal · curvature**(k/k_c)) that the
  raw set shows. Band 1, shifted into place, and band 0 hold the same sample frequencies through
  OTF(f + k) and OTF(f): their ratio ``a·OTF(f + k)/OTF(f)`` does not depend on the sample, so
  with the ideal part divided out it is ``a·curvature**(ρ(f + k) − ρ(f))``. Binned by that
  exponent, each bin's noise-debiased ratio gives a point of a line whose slope is
  ``log curvature``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
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
from inference.wiener_sim.otf import OTFModel, SIMOptics

if TYPE_CHECKING:
    from inference.wiener_sim.calibration import SIMCalibration

__all__ = ["MeasuredOTF", "fit_damping", "otf_from_psf"]

DAMPING_BINS = 8
DAMPING_RANGE = (0.02, 1.0)


@dataclass(frozen=True)
class MeasuredOTF:
    """A radial OTF profile measured from a bead image."""

    k_per_um: np.ndarray  # increasing radial frequencies, from 0
    values: np.ndarray  # OTF there, 1 at k = 0, 0 at the last frequency (the cutoff found)
    pixel_um: float
    noise_floor: float  # the profile's level where no light passes (relative to k = 0)

    @property
    def cutoff_per_um(self) -> float:
        """Where the profile meets the noise floor."""
        return float(self.k_per_um[-1])

    def model(self, optics: SIMOptics) -> OTFModel:
        """Return an :class:`OTFModel` of this profile (the camera pixel is in it already)."""
        return OTFModel(optics.model_copy(update={"pixel_integration": False}),
                        measured=(self.k_per_um, self.values))


def otf_from_psf(psf: np.ndarray, pixel_um: float, bead_diameter_um: float = 0.0,
                 cutoff_per_um: float | None = None) -> MeasuredOTF:
    """Measure the radial OTF of a bead image ``psf`` (2-D, or a z-stack: its brightest plane).

    The background (the median of the border) is removed, the bead centred and the edges
    tapered; the radial mean of |FFT| is normalised at k = 0. The noise floor (the profile's
    median beyond ``cutoff_per_um``, else over its last third) is subtracted and the profile
    ends at ``cutoff_per_um`` (the optics' 2·NA/λ), else where it first falls to three times
    the floor. A ``bead_diameter_um`` > 0 divides out the bead's own spectrum (a uniform
    sphere) where that spectrum is above 0.3. Use a large window around the bead: a real
    objective's halo reaches microns, and what the window cuts is lost from the low
    frequencies.
    """
    image = np.asarray(psf, dtype=np.float64)
    if image.ndim == 3:
        image = image[int(np.argmax(image.reshape(len(image), -1).max(axis=1)))]
    if image.ndim != 2 or min(image.shape) < 16:
        raise ValueError(f"a bead image must be 2-D (or a z-stack) of at least 16 pixels, "
                         f"got shape {np.shape(psf)}")
    if not pixel_um > 0:
        raise ValueError(f"the bead image's pixel size must be positive, got {pixel_um}")
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    image = image - float(np.median(border))
    peak = np.unravel_index(int(np.argmax(image)), image.shape)
    if image[peak] <= 0:
        raise ValueError("the bead image holds no bead above its background")
    image = np.roll(image, (image.shape[0] // 2 - peak[0], image.shape[1] // 2 - peak[1]),
                    axis=(0, 1))
    image = image * edge_window(image.shape, max(2, min(image.shape) // 16))
    spectrum = np.abs(sfft.fft2(image))
    ky, kx = frequency_grid(image.shape, pixel_um)
    radius = np.hypot(ky, kx)
    step = 1.0 / (max(image.shape) * pixel_um)
    bins = np.rint(radius / step).astype(int)
    counts = np.bincount(bins.ravel())
    profile = np.bincount(bins.ravel(), spectrum.ravel()) / np.maximum(counts, 1)
    nyquist_bin = int(0.5 / (pixel_um * step))
    profile = profile[:nyquist_bin + 1] / profile[0]
    k = np.arange(profile.size) * step
    if bead_diameter_um > 0:
        x = np.pi * k * bead_diameter_um
        sphere = np.ones_like(x)
        nz = x > 1e-9
        sphere[nz] = 3 * (np.sin(x[nz]) - x[nz] * np.cos(x[nz])) / x[nz] ** 3
        profile = profile / np.where(sphere > 0.3, sphere, 1.0)
    if cutoff_per_um is not None and cutoff_per_um < k[-1] - 2 * step:
        floor = float(np.median(profile[k > cutoff_per_um + step]))
        end = int(np.searchsorted(k, cutoff_per_um))
    else:  # the floor where the profile has stopped falling (its last third)
        floor = float(np.median(profile[2 * profile.size // 3:]))
        below = np.nonzero(profile < 3 * floor)[0]
        end = int(below[0]) if below.size and below[0] > 2 else profile.size - 1
    values = np.clip(profile[:end + 1] - floor, 0.0, None)
    values = values / values[0]
    values[-1] = 0.0
    return MeasuredOTF(k[:end + 1], values, pixel_um, floor)


def fit_damping(frames: np.ndarray, calibration: SIMCalibration, optics: SIMOptics,
                taper_px: int = 8) -> float:
    """Fit the damped OTF's ``curvature`` to a raw set whose pattern ``calibration`` holds.

    Uses every orientation's first-harmonic overlap (one curvature, one band amplitude per
    orientation). Returns a value in ``DAMPING_RANGE``; raises ValueError when the overlaps
    hold too little signal to fit.
    """
    stack = np.asarray(frames, dtype=np.float64)
    geo = calibration.geometry
    shape = calibration.shape
    if stack.shape != (geo.n_frames, *shape):
        raise ValueError(f"the set is {stack.shape}, the calibration's {geo.n_frames} × {shape}")
    ideal = OTFModel(optics.model_copy(update={"otf_form": "ideal"}))
    cutoff = optics.cutoff_per_um
    ky, kx = frequency_grid(shape, calibration.pixel_um)
    spectra = sfft.fft2((stack - calibration.background) * edge_window(shape, taper_px),
                        workers=-1)
    beyond = ideal(ky, kx) <= 0
    y = np.arange(shape[0]) * calibration.pixel_um
    x = np.arange(shape[1]) * calibration.pixel_um
    rows: list[tuple[int, float, float, float]] = []  # orientation, exponent, log|r|, weight
    n_p = geo.n_phases
    for o, k in enumerate(calibration.k_per_um):
        separate = separation_matrix(calibration.phases_rad[o], geo.harmonics)[:2]
        band0, band1 = np.einsum("mp,phw->mhw", separate, spectra[o * n_p:(o + 1) * n_p])
        ramp = np.exp(-2j * np.pi * (k[0] * y[:, None] + k[1] * x[None, :]))
        upper = sfft.fft2(sfft.ifft2(band1, workers=-1) * ramp, workers=-1)
        o_lower, o_upper = ideal(ky, kx), ideal(ky + k[0], kx + k[1])
        rho_l = np.hypot(ky, kx) / cutoff
        rho_u = np.hypot(ky + k[0], kx + k[1]) / cutoff
        overlap = (rho_l > 0.05) & (o_lower > 0.02) & (o_upper > 0.02)
        lower_w = (band0 * o_upper)[overlap]
        upper_w = (upper * o_lower)[overlap]
        exponent = (rho_u - rho_l)[overlap]
        noise0 = noise_power(band0, beyond)
        edges = np.quantile(exponent, np.linspace(0, 1, DAMPING_BINS + 1))
        for lo, hi in itertools.pairwise(edges):
            sel = (exponent >= lo) & (exponent <= hi)
            power = float(np.sum(np.abs(lower_w[sel]) ** 2))
            ratio, signal = debiased_ratio(lower_w[sel], upper_w[sel], noise0,
                                           o_upper[overlap][sel])
            if signal <= 0.1 * power or abs(ratio) == 0:
                continue  # the bin holds mostly noise
            rows.append((o, float(np.mean(exponent[sel])), float(np.log(abs(ratio))), signal))
    if len({r[0] for r in rows}) < 1 or len(rows) < 4:
        raise ValueError("the set's band overlaps hold too little signal to fit the OTF damping")
    n_o = geo.n_orientations
    design = np.zeros((len(rows), n_o + 1))
    target = np.zeros(len(rows))
    weights = np.zeros(len(rows))
    for i, (o, exponent_mean, log_ratio, signal) in enumerate(rows):
        design[i, o] = 1.0
        design[i, n_o] = exponent_mean
        target[i] = log_ratio
        weights[i] = np.sqrt(signal)
    used = design[:, :n_o].any(axis=0)
    design = design[:, np.append(used, True)]
    solution, *_ = np.linalg.lstsq(design * weights[:, None], target * weights, rcond=None)
    return float(np.clip(np.exp(solution[-1]), *DAMPING_RANGE))
