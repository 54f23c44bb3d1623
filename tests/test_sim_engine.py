"""The SIM engine on the demo microscope through the real core: complete sets, in order, with
the right pattern and laser line in the images; hardware-sequenced or software-stepped; WF.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

from hardware.microscope import Microscope
from hardware.sim_engine import SIMAcquisition, SIMSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hardware.frameset import FrameSet

LINES = {"405": 405, "488": 488, "560": 560}
ROI = 128


@pytest.fixture(scope="module")
def scope() -> Iterator[Microscope]:
    from simulators.optical_bench import get_bench

    microscope = Microscope.open("demo")
    bench = get_bench("demo")
    assert bench is not None
    bench.wait_until_rendered()  # the sample renders once; frames then come at camera speed
    microscope.camera.centred_roi(ROI)
    yield microscope
    microscope.close()


def _scene_residuals(scope: Microscope) -> dict[int, np.ndarray]:
    """Per line, the simulator's noiseless pattern frames in the ROI, minus their mean."""
    from simulators.optical_bench import get_bench

    bench = get_bench("demo")
    assert bench is not None
    x, y, w, h = scope.camera.roi
    out = {}
    for line in LINES.values():
        frames = bench.scene(line).raw_photons[:, y:y + h, x:x + w].astype(np.float64)
        out[line] = frames - frames.mean(axis=0)
    return out


def _identify(frame_set: FrameSet, residuals: dict[int, np.ndarray]) -> list[tuple[int, int]]:
    """For each frame, the (line, pattern) whose simulated modulation it matches best."""
    data = frame_set.frames.astype(np.float64)
    data -= data.mean(axis=0)
    found = []
    for frame in data:
        scores = {(line, k): float(np.vdot(frame, ref[k]) / (np.linalg.norm(ref[k]) + 1e-12))
                  for line, ref in residuals.items() for k in range(len(ref))}
        found.append(max(scores, key=lambda key: scores[key]))
    return found


def _run(scope: Microscope, sim: SIMSettings, channels: tuple[str, ...], timepoints: int,
         powers: dict[int, float] | None = None) -> tuple[list[FrameSet], SIMAcquisition]:
    acquisition = SIMAcquisition(scope, sim)
    sets: list[FrameSet] = []
    acquisition.set_ready.connect(sets.append)
    sequence = useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=0, loops=timepoints),
        channels=tuple(useq.Channel(config=c, exposure=5) for c in channels))
    acquisition.run(sequence, powers or {405: 20, 488: 20, 560: 20})
    return sets, acquisition


def test_three_channel_sim_timelapse_is_hardware_sequenced(scope: Microscope) -> None:
    sets, acquisition = _run(scope, SIMSettings(), ("405", "488", "560"), 5)
    assert len(sets) == 15
    assert [(s.t, s.channel) for s in sets] == [(t, c) for t in range(5) for c in LINES]
    residuals = _scene_residuals(scope)
    for frame_set in sets:
        line = LINES[frame_set.channel]
        assert frame_set.frames.shape == (9, ROI, ROI) and frame_set.line_nm == line
        assert frame_set.hardware_sequenced
        assert frame_set.patterns == tuple(str(k) for k in range(9))
        assert [m["LiveSR-Pattern"] for m in frame_set.camera_metadata] == list(frame_set.patterns)
        assert {m["LiveSR-Lines"] for m in frame_set.camera_metadata} == {str(line)}
        assert _identify(frame_set, residuals) == [(line, k) for k in range(9)]
        assert np.all(np.diff(frame_set.timestamps_ms) > 0)
        assert frame_set.laser_powers_mw == {405: 20.0, 488: 20.0, 560: 20.0}
        assert frame_set.exposure_ms == 5
    summary = acquisition.summary
    assert (summary.sets, summary.frames, summary.hardware_sequenced_sets) == (15, 135, 15)
    assert scope.emitting() == []


@pytest.mark.parametrize(("interval_s", "sequences"), [(0.0, 1), (0.01, 4)])
def test_timelapse_at_interval_zero_is_one_camera_sequence(scope: Microscope, interval_s: float,
                                                           sequences: int) -> None:
    """Back-to-back SIM sets stream as one sequence (the pattern sequence repeating); time
    points with their own start times are one sequence each, the AOTF dark between them.
    """
    core = scope.backend.core  # type: ignore[attr-defined]
    started: list[str] = []

    def on_started(camera: str, *_: object) -> None:
        started.append(camera)

    # connected and disconnected by name: a core created after a QApplication has Qt signals
    core.events.sequenceAcquisitionStarted.connect(on_started)
    acquisition = SIMAcquisition(scope, SIMSettings())
    sets: list[FrameSet] = []
    acquisition.set_ready.connect(sets.append)
    acquisition.run(useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=interval_s, loops=4),
        channels=(useq.Channel(config="488", exposure=5),)), {488: 20})
    core.events.sequenceAcquisitionStarted.disconnect(on_started)
    assert len(started) == sequences
    assert [s.t for s in sets] == list(range(4))
    residuals = _scene_residuals(scope)
    for frame_set in sets:
        assert frame_set.hardware_sequenced
        assert _identify(frame_set, residuals) == [(488, k) for k in range(9)]
    assert scope.emitting() == []


def test_a_long_timelapse_starts_without_expanding_it_all(
        scope: Microscope, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events are expanded as the camera consumes them: the first set arrives after at most one
    sequence's worth (the pattern generator holds 1,024 states), not the whole time-lapse.
    """
    from hardware.sim_engine import SIMEngine

    expanded: list[int] = []
    original = SIMEngine.pattern_events

    def counting(engine: SIMEngine, event: useq.MDAEvent) -> list[useq.MDAEvent]:
        expanded.append(event.index.get("t", 0))
        return original(engine, event)

    monkeypatch.setattr(SIMEngine, "pattern_events", counting)
    acquisition = SIMAcquisition(scope, SIMSettings())
    at_first_set: list[int] = []

    def first(frame_set: FrameSet) -> None:
        if not at_first_set:
            at_first_set.append(len(expanded))
            acquisition.cancel()

    acquisition.set_ready.connect(first)
    acquisition.run(useq.MDASequence(time_plan=useq.TIntervalLoops(interval=0, loops=5000),
                                     channels=(useq.Channel(config="488", exposure=1),)),
                    {488: 20})
    assert at_first_set and at_first_set[0] <= 1024 // 9 + 2, at_first_set
    assert acquisition.summary.canceled and max(expanded) < 1000
    assert scope.emitting() == []


def test_sets_do_not_depend_on_the_runners_frame_signal(
        scope: Microscope, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames reach the sets straight from the engine, during the run: with a Qt core under
    PySide6 the runner's frameReady is queued to the GUI thread and arrives after it. Here the
    runner's frameReady emits nothing at all (psygnal or Qt signals alike).
    """
    runner = scope.backend.core.mda  # type: ignore[attr-defined]
    signals = runner._signals

    class WithoutFrames:
        frameReady = SimpleNamespace(emit=lambda *args: None)

        def __getattr__(self, name: str) -> Any:
            return getattr(signals, name)

    monkeypatch.setattr(runner, "_signals", WithoutFrames())
    sets, acquisition = _run(scope, SIMSettings(), ("488",), 3)
    assert [s.t for s in sets] == [0, 1, 2] and acquisition.summary.sets == 3


def test_software_stepped_sets_match_the_patterns(scope: Microscope) -> None:
    sets, _ = _run(scope, SIMSettings(hardware_sequencing=False), ("488", "560"), 2)
    assert [(s.t, s.channel) for s in sets] == [(0, "488"), (0, "560"), (1, "488"), (1, "560")]
    residuals = _scene_residuals(scope)
    for frame_set in sets:
        assert not frame_set.hardware_sequenced
        assert _identify(frame_set, residuals) == [(frame_set.line_nm, k) for k in range(9)]
    assert scope.emitting() == []


def test_widefield_mode_gives_one_frame_per_timepoint(scope: Microscope) -> None:
    sets, _ = _run(scope, SIMSettings(mode="wf"), ("488",), 12)
    assert [s.t for s in sets] == list(range(12))
    assert all(s.frames.shape == (1, ROI, ROI) and s.patterns == ("WF",) for s in sets)
    assert all(s.camera_metadata[0]["LiveSR-Pattern"] == "WF" for s in sets)
    # uniform light: no pattern modulation, so the frame is the set's own WF
    assert sets[0].widefield().shape == (ROI, ROI)


def test_powers_above_the_limit_are_refused_before_any_light(scope: Microscope) -> None:
    acquisition = SIMAcquisition(scope)
    before = scope.lasers[488].power_mw
    sequence = useq.MDASequence(channels=[useq.Channel(config="488")])
    with pytest.raises(ValueError, match=r"Laser488.*outside 0…200\.0 mW"):
        acquisition.run(sequence, {488: 500})
    assert scope.lasers[488].power_mw == before and scope.emitting() == []
    with pytest.raises(ValueError, match="channel '640' is not in the settings"):
        acquisition.run(useq.MDASequence(channels=[useq.Channel(config="640")]))
