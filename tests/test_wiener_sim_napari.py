"""Wiener-SIM against napari-sim-processor's ConvSimProcessor on the same simulated sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from inference.metrics import frc
from inference.wiener_sim import OTFModel, ReconstructionPlan, SIMOptics, estimate_calibration
from simulators import CameraModel, PatternSettings, render_set

try:
    from inference.wiener_sim.reference import load_conv_sim_processor

    processors = load_conv_sim_processor()
except ImportError as exc:
    pytest.skip(f"napari-sim-processor unavailable: {exc}", allow_module_level=True)


@dataclass
class Comparison:
    our_k: list[np.ndarray]  # per set: (3, 2) (k_y, k_x) cycles/µm
    their_k: list[np.ndarray]
    ours: list[np.ndarray]  # reconstructions of two noise realisations
    theirs: list[np.ndarray]
    sr_pixel_nm: float


def napari_processor(optics: SIMOptics):
    """Their conventional 3 × 3 processor with our optics."""
    p = processors.ConvSimProcessor(angleSteps=3, phaseSteps=3)
    p.debug = False
    p.pixelsize, p.magnification = optics.pixel_um, 1.0
    p.NA, p.n, p.wavelength = optics.na, 1.518, optics.emission_um
    p.eta = 0.8  # carrier search from 1.52 NA/λ (the carriers sit at 1.8 NA/λ)
    return p


def compare(patterns: PatternSettings | None, photons: float, eta: float) -> Comparison:
    """Both processors on two noise realisations of one microtubule scene."""
    scene = render_set("microtubules", "tirf-sim", size=256, seed=0, patterns=patterns)
    sets = [scene.at_photons(photons, CameraModel(fixed_pattern_seed=i), seed=i) for i in (1, 2)]
    optics = SIMOptics()
    result = Comparison([], [], [], [], sets[0].params["sr_pixel_nm"])
    for s in sets:
        raw = s.raw.astype(np.float32)
        cal = estimate_calibration(raw, optics)
        result.our_k.append(cal.k_per_um)
        result.ours.append(ReconstructionPlan(cal, OTFModel(optics)).reconstruct(raw))
        p = napari_processor(optics)
        p.eta = eta
        p.calibrate(raw - cal.background)
        result.theirs.append(p.reconstruct_rfftw(raw - cal.background))
        # their carriers are in units of NA/λ, as (kx, ky)
        their = np.stack([p.ky.ravel(), p.kx.ravel()], axis=1) * optics.na / optics.emission_um
        result.their_k.append(their)
    return result


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    """The simulator's default TIRF pattern (0.9 × the cutoff), 1,000 photons."""
    return compare(None, 1000, eta=0.8)  # carrier search from 1.52 NA/λ (carriers at 1.8)


@pytest.fixture(scope="module")
def cutoff_comparison() -> Comparison:
    """The pattern at 0.99 × the cutoff, a ground-truth dose (as the resolution target)."""
    return compare(PatternSettings(frequency_fraction=0.99), 3000, eta=0.85)


@pytest.mark.parametrize("name", ["comparison", "cutoff_comparison"])
def test_carriers_agree_with_napari_sim_processor(name: str,
                                                  request: pytest.FixtureRequest) -> None:
    comparison: Comparison = request.getfixturevalue(name)
    for ours, theirs in zip(comparison.our_k, comparison.their_k, strict=True):
        for k in ours:  # within 0.5 %, up to sign and order
            distance = min(np.hypot(*(k - q)) for q in [*theirs, *(-theirs)])
            assert distance < 0.005 * np.hypot(*k), (k, theirs)


@pytest.mark.xfail(strict=True, reason=(
    "not met at 1,000 photons: by the first 1/7 crossing ours ≈ 99 nm, theirs ≈ 92 nm; "
    "theirs crosses only after a correlated peak at the support edge (FRC ≈ 0.8 at 95 nm, "
    "like ours before its shifted bands were edge-tapered), at 99–103 nm their curve is "
    "≈ 0.46 against our 0.13–0.38"))
def test_resolution_no_worse_than_napari_sim_processor(comparison: Comparison) -> None:
    pixel = comparison.sr_pixel_nm
    ours = frc(*comparison.ours, pixel, window_alpha=0).resolution_nm
    theirs = frc(*comparison.theirs, pixel, window_alpha=0).resolution_nm
    assert ours <= theirs, (ours, theirs)


def test_resolution_no_worse_than_napari_sim_processor_at_the_target(
        cutoff_comparison: Comparison) -> None:
    """Both reach the support (≈ 88 nm); ours is no worse, to within one FRC ring."""
    pixel = cutoff_comparison.sr_pixel_nm
    ours = frc(*cutoff_comparison.ours, pixel, window_alpha=0)
    theirs = frc(*cutoff_comparison.theirs, pixel, window_alpha=0)
    ring = float(np.diff(theirs.frequency_per_nm[:2])[0])  # cycles/nm
    assert 1 / ours.resolution_nm >= 1 / theirs.resolution_nm - ring, (
        ours.resolution_nm, theirs.resolution_nm)
    assert ours.resolution_nm <= 92.0
