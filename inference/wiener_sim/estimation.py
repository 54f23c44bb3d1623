"""Pattern parameters from the raw set itself: carriers, phases, modulation, with confidences.

Per orientation: the bands are separated with equal phase steps, the carrier is the peak of the
cross-correlation of band 1 with band 0 in their overlap (coarse on the FFT grid, then sub-pixel
by maximising the whitened correlation's magnitude at continuous k), the phases are those of the
modulated part of each frame correlated with the wide-field at the carrier, and each harmonic's
modulation is the least-squares ratio of neighbouring bands, shifted into place, in their
overlap. Bands are re-separated with the phases found and the carrier refined once more.

With a :class:`~inference.wiener_sim.priors.PatternPrior` the coarse carriers are fitted
jointly (one |k|, orientations 180°/n apart, or a window around expected carriers), each
orientation's confidence is its peak against rivals on that |k| ring, a refined carrier that
strays from the joint fit is replaced by it, and the phases step by the known 2π/n_phases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from inference.wiener_sim.bands import (
    debiased_ratio,
    edge_window,
    frequency_grid,
    noise_power,
    pad_spectrum,
    separation_matrix,
)
from inference.wiener_sim.calibration import EstimationError, SIMCalibration, SIMGeometry
from inference.wiener_sim.otf import OTFModel, SIMOptics
from inference.wiener_sim.priors import (
    CarrierMaps,
    JointFit,
    PatternPrior,
    joint_carriers,
    ring_confidence,
)

__all__ = ["estimate_calibration", "joint_pattern_fit"]

# carriers: both bands whitened (divided by the OTF) within this band-pass, fractions of the
# cutoff (no DC, where the sample's own low frequencies swamp the correlation; no OTF edge)
CARRIER_BAND = (0.15, 0.8)
MIN_CARRIER_CONFIDENCE = 0.5
RIVAL_DISTANCE = 6  # FFT-grid steps around the carrier peak that belong to it
RIVAL_MARGIN = 0.4  # confidence 1 when the peak stands this much above every rival
MIN_MODULATION = 0.05
MIN_MODULATION_WITH_PRIOR = 0.02  # the carrier known, a significant modulation is enough
MAX_PHASE_UNCERTAINTY = 0.5  # rad, 1-σ


def estimate_calibration(
    frames: np.ndarray,
    optics: SIMOptics | None = None,
    *,
    otf: OTFModel | None = None,
    background: float | None = None,
    taper_px: int = 8,
    search_range: tuple[float, float] = (0.3, 1.6),
    strict: bool = True,
    prior: PatternPrior | None = None,
) -> SIMCalibration:
    """Estimate a :class:`SIMCalibration` from one raw set ``(n, H, W)`` (9 or 25 frames).

    ``search_range``: the carrier is looked for between these fractions of the detection
    cutoff. ``background``: subtracted from every frame (default: the 1st percentile of the
    wide-field). With ``strict``, a set that cannot support an estimate (no carrier peak above
    the noise, modulation too low) raises :class:`EstimationError`; otherwise the problems are
    listed in ``notes``. ``prior``: what the microscope guarantees about its pattern (see
    :mod:`inference.wiener_sim.priors`); ``None`` estimates each orientation on its own.
    """
    optics = optics or SIMOptics()
    set_ = _PreparedSet.of(frames, optics, otf or OTFModel(optics), background, taper_px,
                           search_range)
    geometry, shape, spectra, est = set_.geometry, set_.shape, set_.spectra, set_.estimator

    n_o, n_p, harm = geometry.n_orientations, geometry.n_phases, geometry.harmonics
    k_all = np.zeros((n_o, 2))
    phases = np.zeros((n_o, n_p))
    amps = np.zeros((n_o, harm), complex)
    contrast, confidence = np.zeros(n_o), np.zeros(n_o)
    phase_sigma = np.zeros((n_o, n_p))
    mod_sigma = np.zeros((n_o, harm))
    notes: list[str] = []
    first_bands = set_.equal_step_bands()
    for o, bands in enumerate(first_bands):
        if np.sum(np.abs(bands[1]) ** 2) < 1e-12 * np.sum(np.abs(bands[0]) ** 2):
            raise EstimationError(f"orientation {o}: the frames do not change with the phase: no "
                                  "modulation to support a SIM reconstruction")
    coarse = np.zeros((n_o, 2))
    joint_confidence: float | None = None
    if prior is None:
        for o in range(n_o):
            coarse[o], contrast[o], confidence[o] = est.coarse_carrier(*first_bands[o][:2])
    else:
        maps = est.carrier_maps([b[:2] for b in first_bands])
        fit = _joint_fit(maps, prior, est)
        coarse, joint_confidence = fit.carriers, fit.confidence
        normalised = maps.normalised()
        for o in range(n_o):
            rows, cols = maps.index(coarse[o])
            contrast[o] = float(normalised[o, rows, cols])
            confidence[o] = ring_confidence(normalised[o], maps, coarse[o], RIVAL_DISTANCE,
                                            RIVAL_MARGIN)
    fixed = prior is not None and prior.expected_k_per_um is not None and prior.window == 0
    for o in range(n_o):
        spec = spectra[o * n_p:(o + 1) * n_p]
        bands = first_bands[o]
        k = coarse[o] if fixed else est.refine_carrier(bands[0], bands[1], coarse[o])
        phi, _ = est.phases(spec, k, prior)
        bands = np.einsum("mp,phw->mhw", separation_matrix(phi, harm), spec)
        if not fixed:
            k = est.refine_carrier(bands[0], bands[1], k)
        if prior is not None and not fixed and _strays(k, coarse[o], prior, est.grid_step):
            notes.append(f"orientation {o}: the refined carrier strayed from the joint fit; "
                         "the joint fit's carrier is used")
            k = coarse[o]
        phi, phase_sigma[o] = est.phases(spec, k, prior)
        bands = np.einsum("mp,phw->mhw", separation_matrix(phi, harm), spec)
        amps[o], mod_sigma[o] = est.amplitudes(bands, k)
        k_all[o], phases[o] = k, np.mod(phi, 2 * np.pi)
        problem = _problem(o, contrast[o], confidence[o], 2 * abs(amps[o, 0]), mod_sigma[o, 0],
                           float(phase_sigma[o].max()), prior, joint_confidence)
        if problem:
            if strict:
                raise EstimationError(problem)
            notes.append(problem)
    return SIMCalibration(geometry, shape, optics.pixel_um, set_.background, k_all, phases,
                          amps, contrast, confidence, phase_sigma, mod_sigma, notes,
                          joint_confidence)


def joint_pattern_fit(frames: np.ndarray, optics: SIMOptics | None = None, *,
                      otf: OTFModel | None = None, prior: PatternPrior | None = None,
                      taper_px: int = 8) -> JointFit:
    """Fit one set's carriers jointly under ``prior`` (default: equal spacing), unrefined.

    Its ``score`` says how strongly the frames, grouped orientation-major, show one SIM
    pattern; :mod:`inference.wiener_sim.frame_order` compares it across frame orders.
    """
    optics = optics or SIMOptics()
    set_ = _PreparedSet.of(frames, optics, otf or OTFModel(optics), None, taper_px, (0.3, 1.6))
    bands = [b[:2] for b in set_.equal_step_bands()]
    return _joint_fit(set_.estimator.carrier_maps(bands), prior or PatternPrior(), set_.estimator)


def _joint_fit(maps: CarrierMaps, prior: PatternPrior, est: _Estimator) -> JointFit:
    """Fit the carriers jointly within the prior's |k| range (fractions of the cutoff)."""
    k_range = (prior.k_fraction[0] * est.cutoff, prior.k_fraction[1] * est.cutoff)
    return joint_carriers(maps, prior, k_range, RIVAL_MARGIN)


@dataclass
class _PreparedSet:
    """A raw set checked, background removed, edge-tapered and Fourier transformed."""

    geometry: SIMGeometry
    shape: tuple[int, int]
    background: float
    spectra: np.ndarray  # (n, H, W) complex
    estimator: _Estimator

    @classmethod
    def of(cls, frames: np.ndarray, optics: SIMOptics, otf: OTFModel, background: float | None,
           taper_px: int, search_range: tuple[float, float]) -> _PreparedSet:
        """Check and prepare ``frames`` (background: the WF's 1st percentile by default)."""
        stack = np.asarray(frames, dtype=np.float64)
        if stack.ndim != 3:
            raise ValueError(f"expected a raw SIM set (n, H, W), got shape {stack.shape}")
        geometry = SIMGeometry.for_frames(stack.shape[0])
        shape = (int(stack.shape[1]), int(stack.shape[2]))
        if min(shape) < 32 or shape[0] % 2 or shape[1] % 2:
            raise ValueError(f"frames must be even-sized and at least 32 pixels, got {shape}")
        if background is None:
            background = float(np.percentile(stack.mean(axis=0), 1.0))
        prepared = (stack - background) * edge_window(shape, taper_px)
        if not np.any(prepared):
            raise EstimationError("the frames hold no signal above the background")
        return cls(geometry, shape, float(background), sfft.fft2(prepared, workers=-1),
                   _Estimator(shape, optics.pixel_um, otf, geometry.harmonics, search_range))

    def equal_step_bands(self) -> list[np.ndarray]:
        """Per orientation, the bands separated as if the phases stepped by exactly 2π/n."""
        n_p, harmonics = self.geometry.n_phases, self.geometry.harmonics
        separate = separation_matrix(2 * np.pi * np.arange(n_p) / n_p, harmonics)
        return [np.einsum("mp,phw->mhw", separate, self.spectra[o * n_p:(o + 1) * n_p])
                for o in range(self.geometry.n_orientations)]


def _strays(k: np.ndarray, joint: np.ndarray, prior: PatternPrior, grid_step: float) -> bool:
    """Whether a refined carrier left the joint fit by more than the prior's tolerances.

    The joint fit sits on the FFT grid, so half a grid step (``grid_step``, cycles/µm) is
    allowed on top of each tolerance.
    """
    radius = float(np.hypot(*joint))
    turn = np.degrees(abs(np.angle(complex(k[1], k[0]) / complex(joint[1], joint[0]))))
    slack_deg = np.degrees(np.arctan2(0.5 * grid_step, radius))
    return bool(abs(float(np.hypot(*k)) - radius) > prior.k_tolerance * radius + 0.5 * grid_step
                or turn > prior.angle_tolerance_deg + slack_deg)


def _vertex(values: np.ndarray) -> float:
    """Offset (−0.5…0.5 steps) of the vertex of a parabola through three equally spaced values."""
    curvature = values[0] - 2 * values[1] + values[2]
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (values[0] - values[2]) / curvature, -0.5, 0.5))


def _problem(o: int, contrast: float, confidence: float, modulation: float,
             sigma: float, phase_sigma: float, prior: PatternPrior | None = None,
             joint_confidence: float | None = None) -> str | None:
    """Say why orientation ``o`` cannot support a reconstruction (``None``: it can).

    Under a prior the carrier rests on the joint fit (or the expected carriers), not on this
    orientation's own peak; a known phase step leaves the offset to the band amplitude's angle,
    so only the modulation is checked, against its 1-σ and a lower floor.
    """
    if prior is not None:
        if joint_confidence is not None and joint_confidence < MIN_CARRIER_CONFIDENCE:
            return (f"orientation {o}: the joint pattern fit is not above the noise (confidence "
                    f"{joint_confidence:.2f}): too little signal or modulation to support a SIM "
                    "reconstruction")
        floor = MIN_MODULATION_WITH_PRIOR
        if modulation < floor or modulation < 2 * sigma:
            return (f"orientation {o}: modulation {modulation:.3f} ± {sigma:.3f} is too low to "
                    "support a SIM reconstruction")
        if not prior.known_phase_step and phase_sigma > MAX_PHASE_UNCERTAINTY:
            return (f"orientation {o}: phases uncertain by ±{phase_sigma:.2f} rad: too little "
                    "signal or modulation to support a SIM reconstruction")
        return None
    if confidence < MIN_CARRIER_CONFIDENCE:
        return (f"orientation {o}: no illumination pattern found above the noise (carrier peak "
                f"contrast {contrast:.1f}, confidence {confidence:.2f}): too little signal or "
                "modulation to support a SIM reconstruction")
    if modulation < MIN_MODULATION or modulation < 2 * sigma:
        return (f"orientation {o}: modulation {modulation:.3f} ± {sigma:.3f} is too low to "
                "support a SIM reconstruction")
    if phase_sigma > MAX_PHASE_UNCERTAINTY:
        return (f"orientation {o}: phases uncertain by ±{phase_sigma:.2f} rad: too little signal "
                "or modulation to support a SIM reconstruction")
    return None


def _stepped_phases(z: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Fit phases ``φ0 + s·p·2π/n`` (s = ±1) to per-frame correlations ``z``; with their 1-σ.

    The frames' correlations, counter-rotated by the known step, add coherently; the direction
    is the one that adds up to more. Noise ``sigma`` per frame averages down by √n.
    """
    n = z.size
    steps = 2 * np.pi * np.arange(n) / n
    sums = {s: complex(np.sum(z * np.exp(-1j * s * steps))) for s in (1.0, -1.0)}
    direction = max(sums, key=lambda s: abs(sums[s]))
    total = sums[direction]
    phases = np.angle(total) + direction * steps
    spread = sigma * np.sqrt(n) / (np.sqrt(2.0) * max(abs(total), 1e-300))
    return phases, np.full(n, spread)


class _Estimator:
    """Estimation on one image size: grids, OTF weights and the 2× grid used for products."""

    def __init__(self, shape: tuple[int, int], pixel_um: float, otf: OTFModel, harmonics: int,
                 search_range: tuple[float, float]) -> None:
        self.shape, self.pixel_um, self.otf, self.harmonics = shape, pixel_um, otf, harmonics
        self.cutoff = otf.cutoff_per_um
        ky, kx = frequency_grid(shape, pixel_um)
        kr = np.hypot(ky, kx)
        self.otf_grid = otf(ky, kx)
        band = (kr > CARRIER_BAND[0] * self.cutoff) & (kr < CARRIER_BAND[1] * self.cutoff)
        self.carrier_weight = band / np.where(band, np.maximum(self.otf_grid, 1e-6), 1.0)
        self.support = (kr < self.cutoff).astype(float)
        self.grid_step = 1.0 / (min(shape) * pixel_um)  # the coarser FFT-grid spacing
        self.big = (2 * shape[0], 2 * shape[1])
        self.big_pixel = pixel_um / 2
        self.y = np.arange(self.big[0]) * self.big_pixel  # positions from pixel (0, 0)'s centre
        self.x = np.arange(self.big[1]) * self.big_pixel
        self.kyb, self.kxb = frequency_grid(self.big, self.big_pixel)
        self.krb = np.hypot(self.kyb, self.kxb)
        self.search = ((self.krb > search_range[0] * self.cutoff)
                       & (self.krb < search_range[1] * self.cutoff))

    def to_big(self, spectrum: np.ndarray) -> np.ndarray:
        """Return the real-space image of a camera-grid spectrum, on the 2× grid."""
        out = np.zeros((*spectrum.shape[:-2], *self.big), complex)
        return sfft.ifft2(pad_spectrum(spectrum, out), workers=-1)

    def dft_at(self, images: np.ndarray, ks: np.ndarray) -> np.ndarray:
        """Compute Σ_r image(r)·e^{−i2π k·r} over the 2× grid at the frequencies ``ks``.

        Images (…, Y, X) and k (Q, 2) in cycles/µm give (…, Q).
        """
        ks = np.atleast_2d(ks)
        ey = np.exp(-2j * np.pi * ks[:, :1] * self.y).astype(np.complex64)
        ex = np.exp(-2j * np.pi * ks[:, 1:] * self.x).astype(np.complex64)
        rows = np.einsum("qy,...yx->...qx", ey, images.astype(np.complex64, copy=False))
        return np.einsum("...qx,qx->...q", rows, ex)

    def _correlation_image(self, band0: np.ndarray, band1: np.ndarray) -> np.ndarray:
        c0 = self.to_big(band0 * self.carrier_weight)
        c1 = self.to_big(band1 * self.carrier_weight)
        return np.conj(c0) * c1

    def carrier_maps(self, bands: list[np.ndarray]) -> CarrierMaps:
        """Return |cross-correlation| of band 1 with band 0 over k, per orientation."""
        maps = np.stack([np.abs(sfft.fft2(self._correlation_image(b[0], b[1]), workers=-1))
                         for b in bands])
        return CarrierMaps(maps, self.kyb[:, 0], self.kxb[0, :], self.search)

    def coarse_carrier(self, band0: np.ndarray, band1: np.ndarray
                       ) -> tuple[np.ndarray, float, float]:
        """Carrier at the correlation peak on the FFT grid, its contrast and confidence."""
        corr = np.abs(sfft.fft2(self._correlation_image(band0, band1), workers=-1))
        values = corr[self.search]
        i = int(np.argmax(values))
        iy, ix = (int(a[i]) for a in np.nonzero(self.search))
        contrast = float(values[i] / np.median(values))
        # confidence from the runner-up: the highest value farther than RIVAL_DISTANCE grid
        # steps; a pattern's peak stands alone, noise and sample structure have rivals of
        # similar height
        k = np.array([self.kyb[iy, 0], self.kxb[0, ix]])
        step = 1.0 / (self.shape[0] * self.pixel_um)
        rows, cols = np.nonzero(self.search)
        distance = np.hypot(self.kyb[rows, 0] - k[0], self.kxb[0, cols] - k[1])
        rivals = values[distance > RIVAL_DISTANCE * step]
        ratio = float(values[i] / rivals.max()) if rivals.size else np.inf
        return k, contrast, float(np.clip((ratio - 1.0) / RIVAL_MARGIN, 0.0, 1.0))

    def refine_carrier(self, band0: np.ndarray, band1: np.ndarray, k0: np.ndarray) -> np.ndarray:
        """Refine the carrier to sub-pixel: the maximum of |cross-correlation| at continuous k.

        Found by a zooming grid search (7 × 7 points, each round a third of the span) and a
        parabola at the end.
        """
        image = self._correlation_image(band0, band1).astype(np.complex64)
        span = 1.0 / (self.shape[0] * self.pixel_um)  # ± one FFT-grid step
        k = np.asarray(k0, dtype=np.float64)
        for _ in range(5):
            offsets = np.linspace(-span, span, 7)
            ey = np.exp(-2j * np.pi * (k[0] + offsets)[:, None] * self.y).astype(np.complex64)
            ex = np.exp(-2j * np.pi * (k[1] + offsets)[:, None] * self.x).astype(np.complex64)
            grid = np.abs(ey @ image @ ex.T)
            peak_y, peak_x = np.unravel_index(int(np.argmax(grid)), grid.shape)
            iy, ix = min(max(int(peak_y), 1), 5), min(max(int(peak_x), 1), 5)
            step = offsets[1] - offsets[0]
            k = k + np.array([offsets[iy] + step * _vertex(grid[iy - 1:iy + 2, ix]),
                              offsets[ix] + step * _vertex(grid[iy, ix - 1:ix + 2])])
            span /= 3
        return k

    def phases(self, spectra: np.ndarray, k: np.ndarray, prior: PatternPrior | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Estimate each frame's phase and its 1-σ.

        The phase: the frame's modulated part (frame − mean) correlated with the wide-field at
        the carrier, OTF-weighted; the 1-σ from the same sum at carrier-free k. With a prior's
        ``known_phase_step``, one offset is fitted and the phases step by ±2π/n from it.
        """
        weight = self.otf_grid * self.support
        wf = spectra.mean(axis=0)
        wf_big = self.to_big(wf * weight).real
        modulated = self.to_big((spectra - wf) * weight).real
        products = wf_big * modulated
        z = self.dft_at(products, k)[:, 0]
        off = []
        for angle, factor in zip(np.radians([50, 90, 130, 70, 110]), (0.85, 1.15, 0.85, 1.15, 1),
                                 strict=True):
            c, s = np.cos(angle), np.sin(angle)
            off.append(factor * np.array([c * k[0] + s * k[1], -s * k[0] + c * k[1]]))
        sigma = float(np.sqrt(np.mean(np.abs(self.dft_at(products, np.array(off))) ** 2)))
        if prior is not None and prior.known_phase_step:
            return _stepped_phases(z, sigma)
        return np.angle(z), sigma / (np.sqrt(2.0) * np.maximum(np.abs(z), 1e-300))

    def amplitudes(self, bands: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimate the band amplitudes a_h (complex) and their 1-σ.

        Least-squares ratio of band h to band h−1, both shifted to the sample's frequencies,
        weighted by the other's OTF.
        """
        real_space = self.to_big(bands)
        not_dc = self.krb > 0.05 * self.cutoff
        amps, sigmas = np.zeros(self.harmonics, complex), np.zeros(self.harmonics)
        previous = 1.0 + 0j
        lower = self._shifted(real_space[0], np.zeros(2))
        for h in range(1, self.harmonics + 1):
            upper = self._shifted(real_space[h], h * k)
            noise = noise_power(bands[h - 1], self.otf_grid <= 0)
            ratio = self._ratio(lower, upper, (h - 1) * k, h * k, not_dc, noise)
            # the same estimate with the band shifted by a carrier where there is none
            wrong_k = (h - 1) * k + np.array([-k[1], k[0]])
            wrong = self._ratio(lower, self._shifted(real_space[h], wrong_k), (h - 1) * k,
                                wrong_k, not_dc, noise)
            amps[h - 1] = previous * ratio
            sigmas[h - 1] = 2 * abs(previous) * abs(wrong)
            previous, lower = amps[h - 1], upper
        return amps, sigmas

    def _shifted(self, image: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Return the FFT of ``image``·e^{−i2π k·r}: frequency f of the result is f + k of it."""
        ramp = np.exp(-2j * np.pi * (k[0] * self.y[:, None] + k[1] * self.x[None, :]))
        return sfft.fft2(image * ramp, workers=-1)

    def _ratio(self, lower: np.ndarray, upper: np.ndarray, k_lower: np.ndarray,
               k_upper: np.ndarray, mask: np.ndarray, noise: float = 0.0) -> complex:
        """Least-squares ratio upper / lower in the bands' overlap, without the noise's bias.

        ``noise``: the power of ``lower``'s noise per frequency (:func:`noise_power`).
        """
        o_lower = self.otf(self.kyb + k_lower[0], self.kxb + k_lower[1])
        o_upper = self.otf(self.kyb + k_upper[0], self.kxb + k_upper[1])
        overlap = mask & (o_lower > 1e-3) & (o_upper > 1e-3)
        ratio, _ = debiased_ratio((o_upper * lower)[overlap], (o_lower * upper)[overlap], noise,
                                  o_upper[overlap])
        return ratio
