"""Photobleaching in the simulated microscope: the law, offline and in the Micro-Manager devices.

Measured intensities (camera counts with noise, less the dark level) follow
S(D) = (1−f)·e^(−k₁D) + f·e^(−k₂D) within 2 % for every structure; no dose, no bleaching;
each laser line bleaches only its own fluorophores; runs repeat exactly; a run's ``run.json``
and per-frame metadata carry the bleached fraction.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
from acquisition_support import write_protocol
from faulty_devices import demo_cfg_variant

from simulators.bleaching import Bleaching, dose_for_photons, excitation_dose_mj
from simulators.camera import CameraModel
from simulators.names import STRUCTURES
from simulators.render import render_set, simulate

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore

#: a distinct two-component law per structure, fast enough to see in a few frames
LAWS = {
    "ccp": Bleaching(rate_per_mj=0.8, slow_rate_per_mj=0.05, slow_fraction=0.3),
    "er": Bleaching(rate_per_mj=0.5),
    "microtubules": Bleaching(rate_per_mj=0.3, slow_rate_per_mj=0.02, slow_fraction=0.4),
    "factin": Bleaching(rate_per_mj=1.2, slow_rate_per_mj=0.1, slow_fraction=0.15),
}
FRAME_DOSE_MJ = 0.1  # 10 mW × AOTF 100 % × 10 ms
OFFSET = CameraModel().offset


# ---------------------------------------------------------------- the law


def test_mean_survival_is_the_law_averaged_over_the_exposure() -> None:
    law = LAWS["ccp"]
    assert law.survival(0.0) == 1.0 and Bleaching().survival(1e6) == 1.0
    assert law.survival(10.0) == pytest.approx(0.7 * np.exp(-8.0) + 0.3 * np.exp(-0.5))
    doses = np.linspace(2.0, 3.5, 20001)
    numeric = float(np.mean([law.survival(d) for d in doses]))
    assert law.mean_survival(2.0, 1.5) == pytest.approx(numeric, rel=1e-4)
    assert law.mean_survival(2.0, 0.0) == law.survival(2.0)
    assert excitation_dose_mj(10.0, 1.0, 10.0) == pytest.approx(FRAME_DOSE_MJ)
    assert dose_for_photons(100.0) == pytest.approx(FRAME_DOSE_MJ)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_offline_sets_bleach_by_the_law(structure: str) -> None:
    """Each set of an offline time-lapse dims by the mean survival over its frames."""
    law = LAWS[structure]
    fresh = simulate(structure, "tirf-sim", photons=200, size=64, seed=3)
    signal0 = fresh.raw.mean(dtype=np.float64) - OFFSET
    step = FRAME_DOSE_MJ / 2
    for t in (1, 3, 6):
        before = t * 9 * step
        bleached = simulate(structure, "tirf-sim", photons=200, size=64, seed=3,
                            bleaching=law, dose_mj=before, frame_dose_mj=step)
        measured = (bleached.raw.mean(dtype=np.float64) - OFFSET) / signal0
        expected = law.mean_survival(before, 9 * step)
        assert measured == pytest.approx(expected, rel=0.02), (t, measured, expected)
        record = bleached.params["bleaching"]
        assert record["bleached_fraction_per_frame"][-1] == pytest.approx(
            1 - law.survival(before + 9 * step))
        assert float(bleached.gt.sum() / fresh.gt.sum()) == pytest.approx(expected, rel=1e-5)


def test_offline_bleaching_without_dose_changes_nothing_and_repeats() -> None:
    plain = simulate("er", "tirf-sim", photons=50, size=64, seed=5)
    undosed = simulate("er", "tirf-sim", photons=50, size=64, seed=5, bleaching=LAWS["er"],
                       dose_mj=0.0, frame_dose_mj=0.0)
    np.testing.assert_array_equal(undosed.raw, plain.raw)
    assert undosed.params["bleaching"]["bleached_fraction_per_frame"] == [0.0] * 9
    a, b = (simulate("er", "tirf-sim", photons=50, size=64, seed=5, bleaching=LAWS["er"],
                     dose_mj=2.0) for _ in range(2))
    np.testing.assert_array_equal(a.raw, b.raw)
    assert a.params["bleaching"] == b.params["bleaching"]
    scene = render_set("er", "tirf-sim", size=64, seed=5)
    with pytest.raises(ValueError, match="≥ 0"):
        scene.bleached(LAWS["er"], -1.0, 0.1)


def test_simulate_command_records_the_bleaching(tmp_path: Path) -> None:
    from acquisition.cli.main import main

    out = tmp_path / "sim"
    assert main(["simulate", "--structure", "er", "--size", "64", "--bleach-rate", "0.5",
                 "--bleach-slow-rate", "0.05", "--bleach-slow-fraction", "0.3", "--dose", "2",
                 "--frame-dose", "0.1", "--out", str(out)]) == 0
    record = json.loads((out / "params.json").read_text())["bleaching"]
    law = Bleaching(rate_per_mj=0.5, slow_rate_per_mj=0.05, slow_fraction=0.3)
    assert record["dose_after_mj"] == pytest.approx(2.9)
    assert record["bleached_fraction_per_frame"][-1] == pytest.approx(1 - law.survival(2.9))


# ---------------------------------------------------------------- the Micro-Manager devices


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UniMMCore]:
    """A 64² demo microscope of its own: lasers at 10 mW, 10 ms, a bright sample, exact noise."""
    from hardware.core import create_core, release_core

    cfg = demo_cfg_variant(tmp_path_factory.mktemp("bleach") / "bleach.cfg", "bleach-test",
                           sensor=64)
    mm = create_core(str(cfg))
    mm.setProperty("Camera", "Noise", "exact")
    mm.setProperty("Sample", "Photons", 1000)
    mm.setExposure(10.0)
    for line in (405, 488, 560):
        mm.setProperty(f"Laser{line}", "PowerSetpoint-mW", 10)
    for structure, law in LAWS.items():
        mm.setProperty("Sample", f"BleachRate-{structure}", law.rate_per_mj)
        mm.setProperty("Sample", f"BleachSlowRate-{structure}", law.slow_rate_per_mj)
        mm.setProperty("Sample", f"BleachSlowFraction-{structure}", law.slow_fraction)
    mm.setConfig("SIM", "WF")
    mm.setShutterOpen("AOTF", True)
    yield mm
    release_core(mm)


def _follows(measured: list[float] | np.ndarray, law: list[float] | np.ndarray) -> np.ndarray:
    """Each measurement's relative deviation from the law, at the least-squares brightness."""
    m, s = np.asarray(measured, np.float64), np.asarray(law, np.float64)
    return m / (s * float(m @ s / (s @ s))) - 1


def _snap(core: UniMMCore) -> float:
    core.snapImage()
    return float(core.getImage().mean(dtype=np.float64))


def _dark(core: UniMMCore) -> float:
    """The dark level: a frame with every laser off (it gives no dose)."""
    lasers = {line: core.getShutterOpen(f"Laser{line}") for line in (405, 488, 560)}
    for line in lasers:
        core.setShutterOpen(f"Laser{line}", False)
    dark = float(np.mean([_snap(core) for _ in range(3)]))
    for line, was_open in lasers.items():
        core.setShutterOpen(f"Laser{line}", was_open)
    return dark


def _fresh(core: UniMMCore, lines: tuple[int, ...], on: bool = True) -> None:
    """Bleaching on (or off) from an unbleached sample, only ``lines`` emitting."""
    core.setProperty("Sample", "Bleaching", "On" if on else "Off")
    for line in (405, 488, 560):
        core.setShutterOpen(f"Laser{line}", line in lines)


def _state(core: UniMMCore, line: int) -> tuple[float, float]:
    return (float(core.getProperty("Sample", f"Dose-mJ-{line}")),
            float(core.getProperty("Sample", f"BleachedFraction-{line}")))


@pytest.mark.parametrize("structure", STRUCTURES)
def test_devices_bleach_each_structure_by_its_law(core: UniMMCore, structure: str) -> None:
    core.setProperty("Sample", "Structure-488", structure)
    core.setConfig("Channel", "488")
    _fresh(core, (488,))
    dark = _dark(core)
    law = LAWS[structure]
    signals = [_snap(core) - dark for _ in range(30)]
    expected = [law.mean_survival(i * FRAME_DOSE_MJ, FRAME_DOSE_MJ) for i in range(30)]
    assert np.abs(_follows(signals, expected)).max() < 0.02
    dose, bleached = _state(core, 488)
    assert dose == pytest.approx(30 * FRAME_DOSE_MJ)
    assert bleached == pytest.approx(1 - law.survival(30 * FRAME_DOSE_MJ))
    assert expected[-1] < 0.8  # the law was tested well into the decay


def test_no_dose_no_bleaching(core: UniMMCore) -> None:
    core.setProperty("Sample", "Structure-488", "microtubules")
    core.setConfig("Channel", "488")
    _fresh(core, (488,))
    dark = _dark(core)
    fresh = _snap(core) - dark
    _fresh(core, (488,))  # unbleached again
    blocked = [  # every way the light can be kept off the sample
        ("Laser488", lambda on: core.setShutterOpen("Laser488", on)),
        ("AOTF", lambda on: core.setShutterOpen("AOTF", on)),
        ("Intensity", lambda on: core.setProperty("AOTF", "Intensity-488", 100 if on else 0)),
        ("Power", lambda on: core.setProperty("Laser488", "PowerSetpoint-mW", 10 if on else 0)),
    ]
    for _, light in blocked:
        light(False)
        for _ in range(10):
            _snap(core)
        light(True)
    assert _state(core, 488) == (0.0, 0.0)
    assert _snap(core) - dark == pytest.approx(fresh, rel=0.02)
    # bleaching off: light gives no dose and the sample never dims
    _fresh(core, (488,), on=False)
    signals = [_snap(core) - dark for _ in range(20)]
    assert _state(core, 488) == (0.0, 0.0)
    assert signals[-1] == pytest.approx(signals[0], rel=0.02)


def test_lines_bleach_independently(core: UniMMCore) -> None:
    core.setProperty("Sample", "Structure-488", "microtubules")
    core.setProperty("Sample", "Structure-560", "er")
    _fresh(core, (488, 560))
    dark = _dark(core)
    core.setConfig("Channel", "560")
    fresh_560 = _snap(core) - dark
    _fresh(core, (488, 560))
    core.setConfig("Channel", "488")  # the AOTF passes 488 only: 560 is on but gives no dose
    for _ in range(20):
        _snap(core)
    assert _state(core, 488)[0] == pytest.approx(20 * FRAME_DOSE_MJ)
    assert _state(core, 560) == (0.0, 0.0)
    core.setConfig("Channel", "560")
    assert _snap(core) - dark == pytest.approx(fresh_560, rel=0.02)
    dose_488 = _state(core, 488)
    for _ in range(5):
        _snap(core)
    assert _state(core, 488) == dose_488  # and 560 light leaves the 488 fluorophores alone
    assert _state(core, 560)[0] == pytest.approx(6 * FRAME_DOSE_MJ)


def test_device_bleaching_repeats_exactly(core: UniMMCore) -> None:
    core.setProperty("Sample", "Structure-488", "ccp")
    core.setConfig("Channel", "488")
    runs = []
    for _ in range(2):
        _fresh(core, (488,))
        core.setProperty("Camera", "Seed", 7)
        frames = []
        for _ in range(5):
            core.snapImage()
            frames.append(core.getImage().copy())
        runs.append(np.stack(frames))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0][-1].mean() < runs[0][0].mean()


# ---------------------------------------------------------------- through a run


def test_a_run_dims_by_the_law_and_records_the_bleached_fraction(tmp_path: Path) -> None:
    """A WF time-lapse at 20 mW, 5 ms on a bleaching sample: each set's frame dims by the law;
    run.json and the per-frame metadata carry the fraction bleached.
    """
    import tifffile

    import acquisition
    from acquisition.storage.streams import read_metadata_log

    law = Bleaching(rate_per_mj=0.2, slow_rate_per_mj=0.01, slow_fraction=0.25)
    cfg = demo_cfg_variant(tmp_path / "bleach.cfg", "bleach-run", sensor=32)
    cfg.write_text(cfg.read_text() + "\n".join([
        "#py Property,Sample,Bleaching,On",
        "#py Property,Sample,Photons,1000",
        f"#py Property,Sample,BleachRate-microtubules,{law.rate_per_mj}",
        f"#py Property,Sample,BleachSlowRate-microtubules,{law.slow_rate_per_mj}",
        f"#py Property,Sample,BleachSlowFraction-microtubules,{law.slow_fraction}", ""]))
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: wf
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 5}}
        timelapse: {{count: 40}}
        save: {{wf: false, sr: none}}
        output: run
        """)
    result = acquisition.run(path, progress=False)
    assert result.completed and result.frames_written == 40
    step = excitation_dose_mj(20.0, 1.0, 5.0)
    reported = result.bleaching["488"]
    assert reported["t"] == list(range(40)) and reported["p"] == [0] * 40
    np.testing.assert_allclose(reported["bleached_fraction"],
                               [1 - law.survival((t + 1) * step) for t in range(40)], rtol=1e-4)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]
    assert summary["bleaching"]["488"] == reported
    log = read_metadata_log(tmp_path / "run" / "raw" / "raw_p000.jsonl")
    assert [float(e["camera"]["LiveSR-BleachedFraction-488"]) for e in log.frames] == \
        reported["bleached_fraction"]
    frames = tifffile.imread(tmp_path / "run" / "raw" / "raw_p000.ome.tif")
    signal = frames.reshape(40, -1).mean(axis=1, dtype=np.float64) - OFFSET
    expected = np.array([law.mean_survival(t * step, step) for t in range(40)])
    assert np.abs(_follows(signal, expected)).max() < 0.02
    assert expected[-1] < 0.8


def test_a_run_on_a_sample_that_does_not_bleach_records_nothing(tmp_path: Path) -> None:
    import acquisition

    cfg = demo_cfg_variant(tmp_path / "plain.cfg", "bleach-plain", sensor=32)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: wf
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 2}}
        timelapse: {{count: 3}}
        save: {{wf: false, sr: none}}
        output: run
        """)
    result = acquisition.run(path, progress=False)
    assert result.completed and result.bleaching == {}
    summary = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]
    assert summary["bleaching"] == {}
