"""From a sample to a raw SIM set, its wide-field image and the ground truth.

The sample lives on a fine grid (``fine_factor``× the camera's). Each raw frame is the sample
times the illumination, blurred by the detection OTF and integrated into camera pixels. The
ground truth is the sample seen through the SIM-limited PSF (cutoff k_c + h·k_p for a pattern
of h harmonics), noiseless, on the SR grid. Intensities are scaled so that the raw frames' mean
photon count in the foreground is the requested level (BioSR's definition).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from inference.metrics.photons import average_photon_count, foreground_mask

from .bleaching import Bleaching, dose_for_photons
from .camera import CameraModel, PixelMaps
from .illumination import Mode, PatternSettings, default_patterns, k_vectors, pattern, phase_offsets
from .optics import Optics, apply_otf, bin_pixels, incoherent_otf
from .samples import generate_sample

# out-of-focus haze: the sample blurred with this Gaussian (nm)
BACKGROUND_BLUR_NM = 1000.0


@dataclass
class SimulatedSet:
    """One simulated acquisition: noisy raw frames, their WF, and the ground truth."""

    raw: np.ndarray  # (n, H, W) uint16 ADU, orientation-major
    wf: np.ndarray  # (H, W) float32: the mean of ``raw``
    gt: np.ndarray  # (H·s, W·s) float32, noiseless, photons per camera-pixel area
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class NoiselessSet:
    """A rendered scene at an average photon count of 1; noise is applied per photon level."""

    raw_photons: np.ndarray  # (n, H, W) float32 expected photons per pixel, level 1
    gt: np.ndarray  # (H·s, W·s) float32 on the same scale
    params: dict[str, Any]

    @cached_property
    def wf_photons(self) -> np.ndarray:
        """The uniform-illumination (WF) frame: the mean of the raw set."""
        return self.raw_photons.mean(axis=0)

    def at_photons(self, photons: float, camera: CameraModel | None = None,
                   seed: int | np.random.Generator | None = None) -> SimulatedSet:
        """Record the set at an average photon count of ``photons`` with camera noise."""
        if not photons > 0:
            raise ValueError(f"photons must be > 0, got {photons}")
        camera = camera or CameraModel()
        rng = np.random.default_rng(seed)
        maps = camera.pixel_maps(self.raw_photons.shape[1:])
        raw = np.stack([maps.expose(f * photons, rng) for f in self.raw_photons])
        params = {**self.params, "photons": float(photons), "camera": camera.model_dump(),
                  "measured_photons": average_photon_count(raw, camera)}
        return SimulatedSet(raw, raw.mean(axis=0, dtype=np.float64).astype(np.float32),
                            (self.gt * photons).astype(np.float32), params)

    def bleached(self, law: Bleaching, dose_mj: float, frame_dose_mj: float) -> NoiselessSet:
        """Return the set recorded after ``dose_mj`` received, each frame adding ``frame_dose_mj``.

        Frame ``i`` shows the mean survival during its exposure (:mod:`.bleaching`); the ground
        truth shows the mean over the whole set.
        """
        if dose_mj < 0 or frame_dose_mj < 0:
            raise ValueError(f"doses must be ≥ 0, got {dose_mj} and {frame_dose_mj} mJ")
        n = len(self.raw_photons)
        starts = dose_mj + frame_dose_mj * np.arange(n)
        shown = np.array([law.mean_survival(d, frame_dose_mj) for d in starts], np.float32)
        record = {
            "law": law.model_dump(), "dose_unit": "mJ = mW × AOTF fraction × s",
            "dose_before_mj": float(dose_mj), "frame_dose_mj": float(frame_dose_mj),
            "dose_after_mj": float(dose_mj + n * frame_dose_mj),
            "survival_per_frame": shown.tolist(),
            "bleached_fraction_per_frame": [1.0 - law.survival(d + frame_dose_mj)
                                            for d in starts],
        }
        gt = self.gt * np.float32(law.mean_survival(dose_mj, n * frame_dose_mj))
        return NoiselessSet(self.raw_photons * shown[:, None, None], gt,
                            {**self.params, "bleaching": record})


def render_set(
    structure: str,
    mode: Mode = "tirf-sim",
    size: int = 256,
    seed: int = 0,
    optics: Optics | None = None,
    patterns: PatternSettings | None = None,
    fine_factor: int | None = None,
    cell_seed: int | None = None,
    gt_frequency_fraction: float | None = None,
    phases_rad: np.ndarray | None = None,
) -> NoiselessSet:
    """Render ``structure`` as a ``size``×``size`` camera image set in ``mode`` (noiseless).

    ``cell_seed`` draws the cell outline separately from the structure (the default: from
    ``seed``), so that several structures, one per laser line, can share one cell.
    ``gt_frequency_fraction`` fixes the ground truth's cutoff at ``k_c·(1 + h·fraction)``
    whatever the pattern (default: the pattern's own frequency), so that cells recorded with
    different patterns share one target resolution. ``phases_rad`` ``(n_orientations,
    n_phases)`` sets the pattern's phases (default: equal steps from a random offset per
    orientation, drawn from ``seed``), e.g. to let the pattern drift between sets of one sample.
    """
    optics = optics or Optics()
    patterns = patterns or default_patterns(mode)
    check_size(size)
    fine_factor = fine_factor or (6 if patterns.sr_factor == 3 else 4)
    if fine_factor < 4 or fine_factor % patterns.sr_factor:
        raise ValueError(f"fine_factor {fine_factor} must be ≥ 4 and a multiple of the SR factor "
                         f"{patterns.sr_factor}")
    kvecs = k_vectors(patterns, optics.cutoff_per_nm)
    nyquist = 0.5 / optics.camera_pixel_nm
    if patterns.modulation and float(np.hypot(*kvecs[0])) >= nyquist:
        raise ValueError(f"the pattern frequency {np.hypot(*kvecs[0]) * 1e3:.2f}/µm is beyond the "
                         f"camera's Nyquist frequency {nyquist * 1e3:.2f}/µm: use smaller pixels "
                         f"than {optics.camera_pixel_nm} nm")
    sample_rng, phase_rng = (np.random.default_rng(s)
                             for s in np.random.SeedSequence(seed).spawn(2))
    fine_px = optics.camera_pixel_nm / fine_factor
    fine_shape = (size * fine_factor, size * fine_factor)
    sample = generate_sample(structure, fine_shape, fine_px, sample_rng,
                             cell_seed=seed if cell_seed is None else cell_seed)

    phases = phase_offsets(patterns, phase_rng)
    if phases_rad is not None:
        if np.shape(phases_rad) != phases.shape:
            raise ValueError(f"phases_rad: expected shape {phases.shape} (orientations × phases), "
                             f"got {np.shape(phases_rad)}")
        phases = np.asarray(phases_rad, dtype=np.float64)
    raw = illuminate_and_detect(sample, fine_px, fine_factor, optics, patterns, kvecs, phases)

    gt_fraction = (patterns.frequency_fraction if gt_frequency_fraction is None
                   else gt_frequency_fraction)
    gt_cutoff = optics.cutoff_per_nm * (1 + patterns.harmonics() * gt_fraction)
    gt_fine = apply_otf(sample, incoherent_otf(fine_shape, fine_px, gt_cutoff, "ideal"))
    gt = bin_pixels(gt_fine, fine_factor // patterns.sr_factor) * patterns.sr_factor**2

    wf = raw.mean(axis=0)
    scale = 1.0 / float(wf[foreground_mask(wf)].mean())
    params = describe(structure, mode, size, seed, optics, patterns, fine_factor, kvecs, phases,
                      gt_cutoff)
    return NoiselessSet((raw * scale).astype(np.float32), (gt * scale).astype(np.float32), params)


def illuminate_and_detect(sample: np.ndarray, fine_px: float, fine_factor: int, optics: Optics,
                          patterns: PatternSettings, kvecs: np.ndarray,
                          phases: np.ndarray) -> np.ndarray:
    """Raw frames (n, H, W), float32, orientation-major: blur(sample · pattern), binned."""
    h, w = sample.shape
    otf = incoherent_otf(sample.shape, fine_px, optics.cutoff_per_nm, optics.otf_form,
                         optics.otf_curvature)
    # coordinates from the centre of camera pixel (0, 0)
    y = (np.arange(h) + 0.5) * fine_px - 0.5 * optics.camera_pixel_nm
    x = (np.arange(w) + 0.5) * fine_px - 0.5 * optics.camera_pixel_nm
    frames = []
    for o in range(patterns.n_orientations):
        for p in range(patterns.n_phases):
            illum = pattern(y, x, kvecs[o], phases[o, p], patterns.modulation,
                            patterns.second_harmonic)
            frames.append(bin_pixels(apply_otf(sample * illum, otf), fine_factor))
    raw = np.clip(np.stack(frames), 0, None)
    if patterns.background_fraction:
        haze = gaussian_filter(bin_pixels(sample, fine_factor),
                               BACKGROUND_BLUR_NM / optics.camera_pixel_nm)
        haze *= patterns.background_fraction * raw.mean() / max(float(haze.mean()), 1e-12)
        raw += haze[None]
    return raw.astype(np.float32)


MIN_SIZE, MAX_SIZE = 32, 2048  # camera pixels per side; the fine grid is 4–6× that


def check_size(size: int) -> int:
    """Camera images must be even-sized (the SR grids and FFT conventions rely on it)."""
    if not isinstance(size, int | np.integer) or not MIN_SIZE <= size <= MAX_SIZE or size % 2:
        raise ValueError(f"size must be an even number of camera pixels in "
                         f"{MIN_SIZE}…{MAX_SIZE}, got {size}")
    return int(size)


def describe(structure: str, mode: str, size: int, seed: int, optics: Optics,
             patterns: PatternSettings, fine_factor: int, kvecs: np.ndarray, phases: np.ndarray,
             gt_cutoff: float) -> dict[str, Any]:
    """Everything needed to interpret (or reconstruct) a simulated set, JSON-ready."""
    k = float(np.hypot(*kvecs[0])) if patterns.modulation else 0.0
    s = patterns.sr_factor
    return {
        "structure": structure, "mode": mode, "seed": seed, "size_px": size,
        "frame_order": "orientation-major (frame = orientation * n_phases + phase)",
        "camera_pixel_nm": optics.camera_pixel_nm,
        "fine_pixel_nm": optics.camera_pixel_nm / fine_factor,
        "sr_factor": patterns.sr_factor,
        "sr_pixel_nm": optics.camera_pixel_nm / s,
        "sr_grid_origin": f"SR pixel (0, 0) covers the top-left {s}×{s} of camera pixel (0, 0): "
                          f"its centre lies {(s - 1) / (2 * s):.4f} camera pixels up and left of "
                          "camera pixel (0, 0)'s centre (as depth_to_space places it)",
        "na": optics.na, "excitation_nm": optics.excitation_nm,
        "emission_nm": optics.emission_nm, "otf_form": optics.otf_form,
        "otf_curvature": optics.otf_curvature,
        "detection_cutoff_per_um": optics.cutoff_per_nm * 1e3,
        "gt_cutoff_per_um": gt_cutoff * 1e3,
        "pattern": {
            "n_orientations": patterns.n_orientations, "n_phases": patterns.n_phases,
            "uniform": not patterns.modulation,
            "frequency_per_um": k * 1e3 if k else None, "period_nm": 1.0 / k if k else None,
            "angles_rad": patterns.angles_rad.tolist() if k else [],
            "k_vectors_per_um": (kvecs * 1e3).tolist() if k else [],
            "k_vectors_note": "(k_y, k_x); pattern 1 + m1 cos(2π k·r + φ) + m2 cos(2(2π k·r + φ)),"
                              " r in nm from the centre of camera pixel (0, 0)",
            "phases_rad": phases.tolist(),
            "modulation": patterns.modulation, "second_harmonic": patterns.second_harmonic,
            "background_fraction": patterns.background_fraction,
        },
    }


def simulate(structure: str, mode: Mode = "tirf-sim", photons: float = 100.0, size: int = 256,
             seed: int = 0, optics: Optics | None = None, patterns: PatternSettings | None = None,
             camera: CameraModel | None = None, bleaching: Bleaching | None = None,
             dose_mj: float = 0.0, frame_dose_mj: float | None = None) -> SimulatedSet:
    """Render and record one set: the one-call entry point of the simulator.

    With ``bleaching``, the set is recorded after ``dose_mj`` of excitation, each raw frame
    adding ``frame_dose_mj`` (default: the dose giving ``photons`` on the demo sample,
    :func:`~simulators.bleaching.dose_for_photons`); ``photons`` is then the unbleached level.
    A time-lapse is one call per set with the dose received so far.
    """
    scene = render_set(structure, mode, size, seed, optics, patterns)
    if bleaching is not None:
        step = dose_for_photons(photons) if frame_dose_mj is None else frame_dose_mj
        scene = scene.bleached(bleaching, dose_mj, step)
    noise_seed = np.random.SeedSequence(seed).spawn(3)[2]
    return scene.at_photons(photons, camera, np.random.default_rng(noise_seed))


__all__ = ["NoiselessSet", "PixelMaps", "SimulatedSet", "render_set", "simulate"]
