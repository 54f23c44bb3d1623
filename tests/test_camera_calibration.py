"""Camera calibration: photon transfer on the simulated sCMOS, the settings section, its use."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile

from hardware.settings import CameraCalibration, load_settings
from inference.evaluation.dose_advisor import DEFAULTS_NOTE, DoseAdvisor
from inference.metrics.photon_transfer import photon_transfer
from inference.metrics.photons import average_photon_count
from simulators import CameraModel, render_set
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

#: a camera unlike the simulator's default (offset 100, gain 2, QE 0.8, read noise 1.5 e⁻)
OTHER = CameraModel(offset=400.0, gain=1.3, qe=0.7, read_noise_e=2.2, fixed_pattern_seed=7)
FLAT_PHOTONS = (60, 250, 900, 3000)


def _series(camera: CameraModel, photons: float, n: int, seed: int) -> np.ndarray:
    maps = camera.pixel_maps((64, 64))
    rng = np.random.default_rng(seed)
    return np.stack([maps.expose(np.full((64, 64), photons, np.float32), rng)
                     for _ in range(n)])


@pytest.fixture(scope="module")
def stacks() -> tuple[np.ndarray, list[np.ndarray]]:
    dark = _series(OTHER, 0.0, 60, 1)
    return dark, [_series(OTHER, p, 40, 2 + i) for i, p in enumerate(FLAT_PHOTONS)]


def test_photon_transfer_recovers_the_simulated_camera(stacks) -> None:
    dark, flats = stacks
    fit = photon_transfer(dark, flats, qe=OTHER.qe)
    assert fit.offset_adu == pytest.approx(OTHER.offset, rel=0.03)
    assert fit.gain_adu_per_e == pytest.approx(OTHER.gain, rel=0.03)
    assert fit.read_noise_e == pytest.approx(OTHER.read_noise_e, rel=0.03)
    with pytest.raises(ValueError, match="at least 2 frames"):
        photon_transfer(dark[:1], flats, qe=0.7)
    with pytest.raises(ValueError, match="no signal above the dark level"):
        photon_transfer(dark, [dark], qe=0.7)


def test_the_photon_count_is_right_only_with_the_cameras_calibration() -> None:
    scene = render_set("microtubules", "tirf-sim", size=128, seed=3)
    item = scene.at_photons(100, OTHER, seed=4)
    calibration = CameraCalibration(offset_adu=OTHER.offset, gain_adu_per_e=OTHER.gain,
                                    qe=OTHER.qe, read_noise_e=OTHER.read_noise_e)
    right = average_photon_count(item.raw, calibration)
    default = average_photon_count(item.raw)
    assert right == pytest.approx(100, rel=0.05)
    assert abs(default / 100 - 1) > 0.05  # the simulated camera's defaults would be wrong
    advisor = DoseAdvisor(camera=calibration)
    assert advisor.photons(item.raw) == pytest.approx(right)
    assert advisor.advise(item.raw).photon_basis == "the camera calibration"
    unknown = DoseAdvisor().advise(item.raw)
    assert unknown.photon_basis == DEFAULTS_NOTE and DEFAULTS_NOTE in unknown.message


def test_calibrate_camera_writes_a_settings_section_that_loads(stacks, tmp_path: Path) -> None:
    dark, flats = stacks
    tifffile.imwrite(tmp_path / "dark.tif", dark)
    names = []
    for i, flat in enumerate(flats):
        tifffile.imwrite(tmp_path / f"flat{i}.tif", flat)
        names.append(str(tmp_path / f"flat{i}.tif"))
    section = tmp_path / "camera.yaml"
    proc = subprocess.run([sys.executable, "-m", "acquisition.cli", "calibrate-camera",
                           "--dark", str(tmp_path / "dark.tif"), "--flat", *names, "--qe", "0.7",
                           "--out", str(section)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    settings = load_settings(section)
    calibration = settings.camera.calibration
    assert calibration is not None
    assert calibration.gain_adu_per_e == pytest.approx(OTHER.gain, rel=0.03)
    assert calibration.qe == 0.7
    bad = tmp_path / "bad.yaml"
    bad.write_text(section.read_text().replace(f"qe: {calibration.qe}", "qe: 1.7"))
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: camera\.calibration\.qe: "):
        load_settings(bad)
