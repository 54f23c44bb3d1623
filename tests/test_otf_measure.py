"""The detection OTF measured from a bead image, or its damping fitted to the SIM set itself."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile

from inference.wiener_sim import OTFModel, SIMOptics, estimate_calibration
from inference.wiener_sim.otf_measure import fit_damping, otf_from_psf
from inference.wiener_sim.priors import PatternPrior
from simulators import CameraModel, render_set
from simulators.optics import Optics, apply_otf, bin_pixels, incoherent_otf

if TYPE_CHECKING:
    from pathlib import Path

FINE = 4


def _bead(size: int, curvature: float = 0.3, diameter_nm: float = 0.0, seed: int = 0
          ) -> np.ndarray:
    """A bead imaged by the simulator's optics on a ``size``² camera, with shot noise."""
    optics = Optics(otf_curvature=curvature)
    n = size * FINE
    fine_px = optics.camera_pixel_nm / FINE
    obj = np.zeros((n, n), np.float32)
    if diameter_nm:
        y, x = np.mgrid[:n, :n] - n // 2
        r2 = (y * fine_px) ** 2 + (x * fine_px) ** 2
        radius = diameter_nm / 2
        obj = np.sqrt(np.clip(radius**2 - r2, 0, None)).astype(np.float32)  # projected sphere
    else:
        obj[n // 2 + 1, n // 2 + 2] = 1.0
    otf = incoherent_otf((n, n), fine_px, optics.cutoff_per_nm, "damped", curvature)
    camera = bin_pixels(apply_otf(obj, otf), FINE)
    rng = np.random.default_rng(seed)
    return rng.poisson(np.clip(camera, 0, None) / camera.max() * 5000 + 100).astype(np.float32)


def test_bead_otf_matches_the_optics() -> None:
    optics = SIMOptics()
    measured = otf_from_psf(_bead(128), optics.pixel_um, cutoff_per_um=optics.cutoff_per_um)
    k = np.array([0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    truth = OTFModel(optics)(np.zeros_like(k), k)  # the damped pupil × the pixel's box
    assert np.abs(np.interp(k, measured.k_per_um, measured.values) - truth).max() < 0.03
    assert measured.cutoff_per_um == pytest.approx(optics.cutoff_per_um, abs=0.1)
    model = measured.model(optics)
    assert model(np.zeros(1), np.array([3.0]))[0] == pytest.approx(truth[3], abs=0.03)
    # without the optics' cutoff, the profile ends where it meets the noise
    blind = otf_from_psf(_bead(128), optics.pixel_um)
    assert 3.5 < blind.cutoff_per_um <= optics.cutoff_per_um + 0.1


def test_bead_size_is_divided_out() -> None:
    optics = SIMOptics()
    k = np.array([1.0, 2.0, 3.0])
    truth = OTFModel(optics)(np.zeros_like(k), k)
    bead = _bead(128, diameter_nm=200)
    raw = otf_from_psf(bead, optics.pixel_um, cutoff_per_um=optics.cutoff_per_um)
    corrected = otf_from_psf(bead, optics.pixel_um, bead_diameter_um=0.2,
                             cutoff_per_um=optics.cutoff_per_um)
    error_raw = np.abs(np.interp(k, raw.k_per_um, raw.values) - truth).max()
    error = np.abs(np.interp(k, corrected.k_per_um, corrected.values) - truth).max()
    assert error < 0.04 < error_raw


def test_bead_image_errors() -> None:
    with pytest.raises(ValueError, match="2-D"):
        otf_from_psf(np.zeros(30), 0.06)
    with pytest.raises(ValueError, match="no bead"):
        otf_from_psf(np.full((32, 32), 5.0), 0.06)


@pytest.mark.parametrize("curvature", [0.3, 0.6])
def test_damping_fitted_to_the_band_overlaps(curvature: float) -> None:
    scene = render_set("er", "tirf-sim", size=128, seed=2,
                       optics=Optics(otf_curvature=curvature))
    item = scene.at_photons(40, CameraModel(), seed=1)
    calibration = estimate_calibration(item.raw, SIMOptics(), prior=PatternPrior())
    assert fit_damping(item.raw, calibration, SIMOptics()) == pytest.approx(curvature, abs=0.06)


def test_reconstruct_cli_takes_a_bead_or_fits_the_damping(tmp_path: Path) -> None:
    item = render_set("er", "tirf-sim", size=128, seed=2).at_photons(200, CameraModel(), seed=1)
    tifffile.imwrite(tmp_path / "raw.tif", item.raw)
    tifffile.imwrite(tmp_path / "bead.tif", _bead(128))
    base = [sys.executable, "-m", "acquisition.cli", "reconstruct", "--input",
            str(tmp_path / "raw.tif"), "--order", "orientation-major"]
    bead = subprocess.run([*base, "--output", str(tmp_path / "a.tif"), "--psf",
                           str(tmp_path / "bead.tif")], capture_output=True, text=True,
                          check=False)
    assert bead.returncode == 0, bead.stderr
    assert "OTF measured from bead.tif" in bead.stdout
    fit = subprocess.run([*base, "--output", str(tmp_path / "b.tif"), "--otf", "fit"],
                         capture_output=True, text=True, check=False)
    assert fit.returncode == 0, fit.stderr
    assert "curvature 0.3" in fit.stdout  # the simulator's damping, 0.3
    both = subprocess.run([*base, "--output", str(tmp_path / "c.tif"), "--otf", "fit", "--psf",
                           str(tmp_path / "bead.tif")], capture_output=True, text=True,
                          check=False)
    assert both.returncode != 0 and "exclude each other" in both.stderr
    assert tifffile.imread(tmp_path / "a.tif").shape == (256, 256)
