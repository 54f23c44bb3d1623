"""Device roles over both backends: pymmcore-plus directly, and pycromanager's API through a
fake bridge that forwards to the same real core (no Java Micro-Manager can run here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from fake_bridge import FakeBridgeCore, FakeStrVector

from hardware.backend import Backend, DeviceError, PymmcoreBackend
from hardware.microscope import Microscope
from hardware.pycromanager_backend import PycromanagerBackend
from hardware.settings import load_settings
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module", params=["pymmcore-plus", "pycromanager"])
def scope(request: pytest.FixtureRequest) -> Iterator[Microscope]:
    core_backend = PymmcoreBackend.from_config("demo")
    backend: Backend = core_backend
    if request.param == "pycromanager":
        backend = PycromanagerBackend(FakeBridgeCore(core_backend.core), str_vector=FakeStrVector,
                                      config_name="demo.cfg")
    microscope = Microscope(backend)
    yield microscope
    microscope.close()
    core_backend.release()


def test_camera_exposure_roi_binning_and_snap(scope: Microscope) -> None:
    camera = scope.camera
    camera.exposure_ms = 7.5
    assert camera.exposure_ms == pytest.approx(7.5)
    with pytest.raises(ValueError, match="exposure must be in"):
        camera.exposure_ms = 0
    assert camera.centred_roi(64) == (224, 224, 64, 64)
    assert camera.roi == (224, 224, 64, 64) and camera.shape == (64, 64)
    camera.binning = 1
    assert camera.binning == 1
    image = camera.snap()
    assert image.shape == (64, 64) and image.dtype == np.uint16
    camera.clear_roi()
    assert camera.shape == (512, 512)


def test_laser_power_limits_and_emission(scope: Microscope) -> None:
    laser = scope.lasers[488]
    laser.power_mw = 25
    assert laser.power_mw == pytest.approx(25)
    with pytest.raises(ValueError, match=r"Laser488.*250.0 mW is outside 0…200.0 mW"):
        laser.power_mw = 250
    assert laser.power_mw == pytest.approx(25)  # refused before reaching the device
    with pytest.raises(ValueError, match="outside"):
        scope.set_powers({405: 5, 560: 9999})  # one bad power: none is set
    assert scope.lasers[405].power_mw != 5
    laser.on()
    assert laser.is_on and scope.emitting() == ["Laser488"]
    scope.emission_off()
    assert not laser.is_on and scope.emitting() == []


def test_aotf_lines_and_blanking(scope: Microscope) -> None:
    aotf = scope.aotf
    assert aotf is not None and aotf.lines == [405, 488, 560]
    aotf.set_intensity(560, 42)
    assert aotf.intensity(560) == pytest.approx(42)
    with pytest.raises(ValueError, match="0…100 %"):
        aotf.set_intensity(560, 101)
    with pytest.raises(ValueError, match="no 640 nm line"):
        aotf.set_intensity(640, 1)
    aotf.unblank()
    assert not aotf.blanked and scope.emitting() == ["AOTF"]
    scope.emission_off()
    assert aotf.blanked


def test_pattern_states_linear_and_nonlinear(scope: Microscope) -> None:
    pattern = scope.pattern
    assert pattern is not None and pattern.sequenceable
    pattern.set_n_states(9)
    assert pattern.n_states == 9 and pattern.states() == [str(k) for k in range(9)]
    pattern.set_state(8)
    assert pattern.state == "8"
    with pytest.raises(ValueError, match="state 9 outside 0…8"):
        pattern.set_state(9)
    pattern.set_n_states(25)
    pattern.set_state(24)
    assert pattern.n_states == 25 and pattern.state == "24"
    pattern.uniform()
    assert pattern.state == "WF"
    pattern.set_n_states(9)


def test_property_sequences_reach_the_device(scope: Microscope) -> None:
    backend, label = scope.backend, "Pattern"
    assert backend.sequence_max_length(label, "Pattern") >= 25
    backend.load_property_sequence(label, "Pattern", ["0", "4", "8"])
    backend.start_property_sequence(label, "Pattern")
    backend.stop_property_sequence(label, "Pattern")


def test_device_errors_name_the_device(scope: Microscope) -> None:
    with pytest.raises(DeviceError, match=r"device 'Pattern': setting Pattern to 99 failed"):
        scope.backend.set_property("Pattern", "Pattern", "99")


def test_settings_naming_a_missing_device_name_it_and_the_cfg(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("camera:\n  device: Cam\naotf:\n  device: AOTF\n"
                    "  intensity_properties: {488: Intensity-488, 640: Intensity-640}\n")
    settings = load_settings(path)
    backend = PymmcoreBackend.from_config("demo")
    try:
        with pytest.raises(ConfigError) as info:
            Microscope(backend, settings)
    finally:
        backend.release()
    messages = info.value.messages
    assert len(messages) == 2
    assert messages[0].startswith(f"{path}:2:11: camera.device: device 'Cam' is not in ")
    assert "demo.cfg" in messages[0] and "Camera, Laser405" in messages[0]
    assert messages[1].startswith(f"{path}:5:51: aotf.intensity_properties.640: device 'AOTF'")
    assert "no property 'Intensity-640'" in messages[1]


def test_settings_file_errors_are_located_all_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("lasers:\n  - device: L1\n    wavelength_nm: 488\n    max_power_mw: -1\n"
                    "  - device: L2\n    wavelength_nm: 5000\n    max_power_mw: 1\n"
                    "pattern:\n  colour: red\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert f"{path}:4:19: lasers.0.max_power_mw: Input should be greater than 0" in text
    assert f"{path}:6:20: lasers.1.wavelength_nm: Input should be less than 2000" in text
    assert f"{path}:9:11: pattern.colour: Extra inputs are not permitted" in text


def test_settings_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("camera:\n  device: [Camera\n")
    with pytest.raises(ConfigError, match=rf"{path}:3:1: YAML syntax error"):
        load_settings(path)
