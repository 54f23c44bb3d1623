"""The simulated microscope inside the real Micro-Manager core (UniMMCore + demo.cfg)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pytest
import useq

from hardware.core import create_core, resolve_config
from hardware.sim_events import expand_sim_events
from simulators.optical_bench import LINES, Bench, attach, detach

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore

ROI = (192, 192, 128, 128)  # x, y, w, h inside the 512² sensor


@pytest.fixture
def core(demo_core: UniMMCore) -> UniMMCore:
    demo_core.setROI(*ROI)
    demo_core.setProperty("Camera", "Noise", "fast")
    for line in LINES:
        demo_core.setProperty(f"Laser{line}", "PowerSetpoint-mW", 10)
        demo_core.setShutterOpen(f"Laser{line}", False)
    demo_core.setShutterOpen("AOTF", True)
    demo_core.setConfig("SIM", "WF")
    return demo_core


def _bench(core: UniMMCore) -> Bench:
    """The bench the demo devices share (white-box: to compute what frames should show)."""
    bench: Bench = core._pydevices["Camera"].bench  # type: ignore[attr-defined]
    return bench


def _expected(core: UniMMCore, line: int) -> np.ndarray:
    x, y, w, h = ROI
    return _bench(core).scene(line).raw_photons[:, y:y + h, x:x + w]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_demo_cfg_loads_every_role(core: UniMMCore) -> None:
    assert set(core.getLoadedDevices()) >= {"Camera", "Laser405", "Laser488", "Laser560",
                                            "AOTF", "Pattern", "Sample"}
    assert core.getCameraDevice() == "Camera" and core.getShutterDevice() == "AOTF"
    assert core.getPixelSizeUm() == pytest.approx(0.0626)
    assert set(core.getAvailableConfigs("Channel")) == {"405", "488", "560"}
    assert core.isPropertySequenceable("Pattern", "Pattern")
    assert all(core.isPropertySequenceable("AOTF", f"Intensity-{line}") for line in LINES)
    assert resolve_config("demo").name == "demo.cfg"


def test_hardware_sequenced_sim_time_lapse_follows_laser_and_pattern(core: UniMMCore) -> None:
    """2 time points × 3 channels × 9 patterns in one hardware sequence; the 560 line's laser
    stays off, so its frames hold only offset and noise.
    """
    for line in (405, 488):
        core.setShutterOpen(f"Laser{line}", True)
    sequence = useq.MDASequence(
        time_plan={"interval": 0, "loops": 2},
        channels=[{"config": c, "exposure": 2.0} for c in ("405", "488", "560")])
    frames: list[tuple[np.ndarray, dict, dict]] = []
    def keep(img: np.ndarray, event: useq.MDAEvent, meta: dict) -> None:
        frames.append((img.copy(), dict(event.index), meta))

    core.mda.events.frameReady.connect(keep)
    try:
        core.mda.run(expand_sim_events(sequence, 9))
    finally:
        core.mda.events.frameReady.disconnect(keep)
    assert len(frames) == 2 * 3 * 9
    assert all(meta["hardware_triggered"] for _, _, meta in frames)
    assert [(i["t"], i["c"], i["sim"]) for _, i, _ in frames] == [
        (t, c, k) for t in range(2) for c in range(3) for k in range(9)]

    lines = (405, 488, 560)
    expected = {line: _expected(core, line) for line in lines}
    for start in range(0, len(frames), 9):
        raw = np.stack([f[0] for f in frames[start:start + 9]]).astype(np.float64)
        line = lines[frames[start][1]["c"]]
        if line == 560:  # laser off: dark frames, offset ≈ 100 ADU and read noise only
            assert abs(raw.mean() - 100) < 1.5 and raw.std() < 6
            continue
        wf = raw.mean(axis=0)
        # the set shows this line's sample, not another line's
        scores = {other: _corr(wf, expected[other].mean(axis=0)) for other in (405, 488)}
        assert max(scores, key=scores.__getitem__) == line and scores[line] > 0.9, scores
        # each frame carries the pattern of its sequence position (modulated parts compared)
        model = expected[line] - expected[line].mean(axis=0)
        for k in range(9):
            fits = [_corr(raw[k] - wf, model[j]) for j in range(9)]
            assert int(np.argmax(fits)) == k, (line, k, np.round(fits, 2))


def test_laser_emission_gates_the_light(core: UniMMCore) -> None:
    core.setConfig("Channel", "488")
    core.setShutterOpen("Laser488", False)
    core.snapImage()
    dark = core.getImage().astype(np.float64)
    core.setShutterOpen("Laser488", True)
    core.snapImage()
    lit = core.getImage().astype(np.float64)
    core.setProperty("Laser488", "PowerSetpoint-mW", 20)
    core.snapImage()
    brighter = core.getImage().astype(np.float64)
    assert abs(dark.mean() - 100) < 1.5
    assert _corr(lit, _expected(core, 488).mean(axis=0)) > 0.9
    assert (brighter.mean() - 100) == pytest.approx(2 * (lit.mean() - 100), rel=0.05)
    core.setShutterOpen("AOTF", False)  # blanking also stops the light
    core.snapImage()
    assert abs(core.getImage().mean() - 100) < 1.5


def test_sample_photons_scale_the_signal(core: UniMMCore) -> None:
    core.setConfig("Channel", "488")
    core.setShutterOpen("Laser488", True)
    signal = []
    for photons in (50, 150):
        core.setProperty("Sample", "Photons", photons)
        core.snapImage()
        signal.append(core.getImage().astype(np.float64).mean() - 100)
    core.setProperty("Sample", "Photons", 100)
    assert signal[1] == pytest.approx(3 * signal[0], rel=0.05)


def test_changes_that_would_corrupt_a_running_sequence_are_refused(core: UniMMCore) -> None:
    core.setConfig("Channel", "488")
    core.setShutterOpen("Laser488", True)
    core.loadPropertySequence("Pattern", "Pattern", [str(k) for k in range(9)])
    core.startPropertySequence("Pattern", "Pattern")
    core.startContinuousSequenceAcquisition(0)
    try:
        while not core.getRemainingImageCount():
            pass  # the camera thread is producing: the sequence is under way
        with pytest.raises(Exception, match="busy acquiring"):
            core.setROI(0, 0, 64, 64)
        with pytest.raises(Exception, match="busy acquiring"):
            core.snapImage()
        with pytest.raises(Exception, match="stop the pattern sequence"):
            core.setProperty("Pattern", "Mode", "5x5")
    finally:
        core.stopSequenceAcquisition()
        core.stopPropertySequence("Pattern", "Pattern")
    assert core.getROI() == [*ROI]
    core.snapImage()  # fine again once stopped


def test_pattern_states_follow_the_mode(core: UniMMCore) -> None:
    with pytest.raises(Exception, match="does not exist in 3x3 mode"):
        core.setProperty("Pattern", "Pattern", "17")


def test_power_above_the_laser_maximum_is_refused(core: UniMMCore) -> None:
    with pytest.raises(Exception, match="100"):
        core.setProperty("Laser405", "PowerSetpoint-mW", 150)  # its maximum is 100 mW


def test_exact_noise_is_reproducible_from_the_seed(core: UniMMCore) -> None:
    core.setConfig("Channel", "488")
    core.setShutterOpen("Laser488", True)
    core.setProperty("Camera", "Noise", "exact")
    snaps = []
    for _ in range(2):
        core.setProperty("Camera", "Seed", 11)
        core.snapImage()
        snaps.append(core.getImage().copy())
    core.snapImage()
    np.testing.assert_array_equal(snaps[0], snaps[1])
    assert not np.array_equal(snaps[0], core.getImage())


def test_a_frames_noise_key_and_photons_come_from_one_scene() -> None:
    """The camera caches noise moments by a frame's key: the key and the expected photons are
    taken from the same scene even when the sample changes in between.
    """
    bench = attach(f"one-scene-{id(object())}")
    try:
        bench.sensor_size = 64
        bench.emission_on[488], bench.power_mw[488], bench.aotf_open = True, 10.0, True
        bench.aotf_percent[488].value = "100"
        roi = (0, 0, 64, 64)
        light = bench.frame_light(10.0, None)
        bench.structures[488] = "er"  # the sample changes after the frame's light was taken
        photons = bench.expected_photons(light, "0", roi)
        key = bench.frame_key(light, "0", roi)
        assert photons is not None and light[0].scene_key[2] == "microtubules"
        np.testing.assert_array_equal(photons, light[0].scene.raw_photons[0] * light[0].scale)
        now = bench.frame_light(10.0, None)
        assert now[0].scene_key[2] == "er" and bench.frame_key(now, "0", roi) != key
        assert not np.array_equal(bench.expected_photons(now, "0", roi), photons)
        assert bench.frame_key((), "0", roi) == bench.frame_key((), "WF", roi)  # one dark
    finally:
        detach(bench)


def test_exposure_time_is_honoured(core: UniMMCore) -> None:
    core.setExposure(20.0)
    start = time.perf_counter()
    core.startSequenceAcquisition(10, 0, True)
    got = 0
    while got < 10:
        if core.getRemainingImageCount():
            core.popNextImage()
            got += 1
        elif not core.isSequenceRunning() and not core.getRemainingImageCount():
            break
    elapsed = time.perf_counter() - start
    core.setExposure(10.0)
    assert got == 10
    assert elapsed >= 10 * 0.020 * 0.95


def test_cfg_naming_a_missing_device_is_a_clear_error(tmp_path: Path) -> None:
    text = resolve_config("demo").read_text()
    bad_class = tmp_path / "bad_class.cfg"
    bad_class.write_text(text.replace("simulators.mmdevices,SimAOTF",
                                      "simulators.mmdevices,SimAOTFX"))
    with pytest.raises(Exception, match=r"line \d+.*SimAOTFX"):
        create_core(bad_class)
    bad_label = tmp_path / "bad_label.cfg"
    bad_label.write_text(text + "#py Property,Laser640,PowerSetpoint-mW,10\n")
    with pytest.raises(Exception, match="Laser640"):
        create_core(bad_label)
    with pytest.raises(FileNotFoundError, match=r"no_such\.cfg"):
        create_core(tmp_path / "no_such.cfg")
