"""Wiener-SIM against napari-sim-processor's ConvSimProcessor on the same simulated set."""

from __future__ import annotations

import numpy as np
import pytest

from inference.metrics import frc
from inference.sim import OTFModel, ReconstructionPlan, SIMOptics, estimate_calibration
from simulators import CameraModel, render_set

try:
    from inference.sim.reference import load_conv_sim_processor

    processors = load_conv_sim_processor()
except ImportError as exc:
    pytest.skip(f"napari-sim-processor unavailable: {exc}", allow_module_level=True)


def napari_processor(optics: SIMOptics, shape: tuple[int, int]):
    """Their conventional 3 × 3 processor with our optics (their k unit: NA/λ)."""
    p = processors.ConvSimProcessor(angleSteps=3, phaseSteps=3)
    p.debug = False
    p.pixelsize, p.magnification = optics.pixel_um, 1.0
    p.NA, p.n, p.wavelength = optics.na, 1.518, optics.emission_um
    p.eta = 0.8  # carrier search from 1.52 NA/λ (our carriers sit at 1.8 NA/λ)
    p.Ny, p.Nx = shape
    return p


@pytest.fixture(scope="module")
def both() -> tuple[list[np.ndarray], list[np.ndarray], float]:
    scene = render_set("microtubules", "tirf-sim", size=256, seed=0)
    sets = [scene.at_photons(1000, CameraModel(fixed_pattern_seed=i), seed=i) for i in (1, 2)]
    optics = SIMOptics()
    ours, theirs, their_k = [], [], None
    for s in sets:
        raw = s.raw.astype(np.float32)
        cal = estimate_calibration(raw, optics)
        ours.append(ReconstructionPlan(cal, OTFModel(optics)).reconstruct(raw))
        p = napari_processor(optics, raw.shape[1:])
        p.calibrate(raw - cal.background)
        theirs.append(p.reconstruct_rfftw(raw - cal.background))
        their_k = np.stack([p.ky.ravel(), p.kx.ravel()], axis=1) * optics.na / optics.emission_um
        for o in range(3):  # carriers agree within 0.5 % (up to sign and order)
            k = cal.k_per_um[o]
            distance = min(np.hypot(*(k - q)) for q in [*their_k, *(-their_k)])
            assert distance < 0.005 * np.hypot(*k), (k, their_k)
    return ours, theirs, sets[0].params["sr_pixel_nm"]


def test_carriers_agree_with_napari_sim_processor(both) -> None:
    assert len(both[0]) == 2  # the carrier checks run inside the fixture, per set


@pytest.mark.xfail(strict=True, reason="not met: by FRC ours ≈ 99 nm, theirs ≈ 92 nm")
def test_resolution_no_worse_than_napari_sim_processor(both) -> None:
    ours, theirs, pixel = both
    our_res = frc(ours[0], ours[1], pixel, window_alpha=0).resolution_nm
    their_res = frc(theirs[0], theirs[1], pixel, window_alpha=0).resolution_nm
    assert our_res <= their_res * 1.0, (our_res, their_res)
