"""Faults mid-run (devices that raise or stall, injected as Python devices in a copy of the demo
``.cfg``): the run stops with an error naming the device, emission is off, and the sets
delivered before the fault are complete. Also nonlinear SIM on the same small-sensor copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faulty_devices
import numpy as np
import pytest
import useq
from faulty_devices import FaultyCamera, FaultyPattern, demo_cfg_variant

from hardware.backend import DeviceError
from hardware.microscope import Microscope
from hardware.sim_engine import SIMAcquisition, SIMSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hardware.frameset import FrameSet

INTERVAL_S = 0.001  # time points with their own start times


@pytest.fixture(scope="module")
def scope(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Microscope]:
    from simulators.optical_bench import get_bench

    cfg = demo_cfg_variant(tmp_path_factory.mktemp("cfg") / "faulty.cfg", bench="faulty",
                           classes={"Camera": "faulty_devices.FaultyCamera",
                                    "Pattern": "faulty_devices.FaultyPattern"})
    faulty_devices.reset()
    microscope = Microscope.open(cfg)
    bench = get_bench("faulty")
    assert bench is not None
    bench.wait_until_rendered()
    yield microscope
    FaultyCamera.release.set()
    microscope.close()
    faulty_devices.reset()


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    faulty_devices.reset()
    yield
    FaultyCamera.release.set()  # a stalled camera thread may finish
    faulty_devices.reset()


def _start(scope: Microscope, sim: SIMSettings, timepoints: int = 5, interval_s: float = 0.0
           ) -> tuple[list[FrameSet], SIMAcquisition, useq.MDASequence]:
    """A 488 time-lapse: at interval 0 one camera sequence, else one per time point."""
    acquisition = SIMAcquisition(scope, sim)
    sets: list[FrameSet] = []
    acquisition.set_ready.connect(sets.append)
    sequence = useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=interval_s, loops=timepoints),
        channels=[useq.Channel(config="488", exposure=2)])
    return sets, acquisition, sequence


def _assert_intact(sets: list[FrameSet], n: int) -> None:
    assert [s.t for s in sets] == list(range(n))
    for frame_set in sets:
        assert frame_set.frames.shape == (9, 128, 128)
        assert frame_set.patterns == tuple(str(k) for k in range(9))
        if frame_set.hardware_sequenced:  # what the camera saw, not only what was asked
            assert [m["LiveSR-Pattern"] for m in frame_set.camera_metadata] == \
                list(frame_set.patterns)
        assert frame_set.frames.min() > 0  # every frame really exposed, none left empty


def _checks_for(scope: Microscope, sim: SIMSettings, timepoints: int,
                interval_s: float = 0.0) -> int:
    """How many pattern values a clean run of ``timepoints`` checks (sets and loads)."""
    _, acquisition, sequence = _start(scope, sim, timepoints, interval_s)
    FaultyPattern.checked = 0
    acquisition.run(sequence, {488: 20})
    return FaultyPattern.checked


def test_a_pattern_generator_that_raises_stops_the_run(scope: Microscope) -> None:
    # time points with their own start times: one sequence (and one pattern load) each
    two_sets = _checks_for(scope, SIMSettings(), 2, INTERVAL_S)
    sets, acquisition, sequence = _start(scope, SIMSettings(), interval_s=INTERVAL_S)
    FaultyPattern.checked, FaultyPattern.fail_after = 0, two_sets  # the third set's load fails
    with pytest.raises(DeviceError, match="device 'Pattern': loading a Pattern sequence of 9 "
                                          "failed: pattern generator lost its trigger input"):
        acquisition.run(sequence, {488: 20})
    assert scope.emitting() == []
    _assert_intact(sets, 2)
    assert acquisition.summary.error is not None


def test_a_pattern_generator_that_raises_in_software_steps(scope: Microscope) -> None:
    one_set = _checks_for(scope, SIMSettings(hardware_sequencing=False), 1)
    sets, acquisition, sequence = _start(scope, SIMSettings(hardware_sequencing=False))
    FaultyPattern.checked = 0
    FaultyPattern.fail_after = one_set + 4  # the first set, then four frames of the second
    with pytest.raises(DeviceError, match="device 'Pattern': setting Pattern to 4 failed"):
        acquisition.run(sequence, {488: 20})
    assert scope.emitting() == []
    _assert_intact(sets, 1)


def test_a_camera_that_raises_mid_sequence(scope: Microscope) -> None:
    sets, acquisition, sequence = _start(scope, SIMSettings())  # 5 sets, one sequence
    FaultyCamera.fault_after = 9 * 3 + 5
    with pytest.raises(DeviceError, match=r"device 'Camera': delivered 32 of 45 frames of a "
                                          r"sequence: .*sensor link lost"):
        acquisition.run(sequence, {488: 20})
    assert scope.emitting() == []
    _assert_intact(sets, 3)


def test_a_camera_that_stalls(scope: Microscope) -> None:
    sets, acquisition, sequence = _start(
        scope, SIMSettings(frame_timeout_s=0.5, first_frame_timeout_s=0.5))
    FaultyCamera.fault, FaultyCamera.fault_after = "stall", 9 + 2
    with pytest.raises(DeviceError, match="device 'Camera': stalled after 11 of 45 frames"):
        acquisition.run(sequence, {488: 20})
    assert scope.emitting() == []
    _assert_intact(sets, 1)


def test_nonlinear_sim_sets_have_25_frames(scope: Microscope) -> None:
    from simulators.optical_bench import get_bench

    assert scope.pattern is not None
    scope.pattern.set_n_states(25)
    bench = get_bench("faulty")
    assert bench is not None
    bench.scene(488)  # the nonlinear sample renders once, on a finer grid
    sets, acquisition, sequence = _start(scope, SIMSettings(n_patterns=25), timepoints=1)
    acquisition.run(sequence, {488: 20})
    assert len(sets) == 1 and sets[0].frames.shape == (25, 128, 128)
    assert sets[0].hardware_sequenced
    assert [m["LiveSR-Pattern"] for m in sets[0].camera_metadata] == [str(k) for k in range(25)]
    # 5 orientations x 5 phases: the frames of one orientation differ (the pattern moves)
    assert np.abs(np.diff(sets[0].frames[:5].astype(float), axis=0)).mean() > 1
    scope.pattern.set_n_states(9)
