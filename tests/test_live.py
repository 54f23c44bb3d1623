"""Live acquisition without any GUI (``acquisition.live``) on a small demo microscope: Snap runs
chunk after chunk to its count with each set's SR in the display slot, Live runs until stopped
from another thread, lasers end off; the SR display shared with protocol runs counts failures.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import pytest
import useq
from acquisition_support import small_cfg, tiny_dfcan

from acquisition.display import DisplayFrame, DisplaySlot, SRDisplay
from acquisition.live import LiveAcquisition, chunk_sequence, default_chunk
from acquisition.protocol import ChannelSpec, InferenceSpec, Protocol, Reconstruction, TimeLapse
from acquisition.set_info import SetInfo
from hardware.microscope import Microscope
from inference.streaming import StreamResult

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hardware.frameset import FrameSet

SENSOR = 32


@pytest.fixture
def scope(tmp_path: Path) -> Iterator[Microscope]:
    microscope = Microscope.open(str(small_cfg(tmp_path, SENSOR)))
    yield microscope
    microscope.close()


def _protocol(mode: str, reconstruction: Reconstruction | None = None) -> Protocol:
    """A one-channel protocol as the GUI's controls make it."""
    channel = ChannelSpec(preset="488", power_mw=5, exposure_ms=1,
                          reconstruction=reconstruction or Reconstruction())
    return Protocol.model_validate({"mode": mode, "channels": [channel],
                                    "inference": InferenceSpec(backend="torch", device="cpu")})


def test_chunk_sequence_is_the_sequence_live_built_before() -> None:
    protocol = _protocol("tirf-sim").model_copy(
        update={"timelapse": TimeLapse(count=50, interval_s=2.0)})
    # what gui/sessions.py built inline for each engine run
    before = useq.MDASequence(time_plan=useq.TIntervalLoops(interval=0, loops=7),
                              channels=(useq.Channel(config="488", exposure=3.5),))
    chunk = chunk_sequence(protocol, 7, 3.5)
    assert chunk == before and list(chunk) == list(before)
    assert protocol.channels[0].exposure_ms == 1  # the protocol itself is unchanged
    assert (default_chunk("wf"), default_chunk("tirf-sim")) == (200, 20)


def test_snap_runs_chunks_to_its_count_with_sr_in_the_display_slot(
        scope: Microscope, tmp_path: Path) -> None:
    weights = tiny_dfcan(tmp_path / "tiny_sim.safetensors", in_channels=9)
    protocol = _protocol("tirf-sim", Reconstruction(method="dfcan", weights=weights))
    display = DisplaySlot()
    live = LiveAcquisition(scope, protocol, count=5, chunk=2, display=display)
    sets: list[FrameSet] = []
    shown: list[DisplayFrame] = []
    live.set_ready.connect(sets.append)
    live.sr_shown.connect(shown.append)
    live.run()
    assert live.sets_acquired == 5 and live.display is display
    # three engine runs (2 + 2 + 1 sets): each restarts the engine's t; Live counts on
    assert [s.t for s in sets] == [0, 1, 0, 1, 0]
    assert all(s.n_frames == 9 and s.exposure_ms == 1 for s in sets)
    assert live.predictor is not None and live.reconstructor_info["scale"] == 2
    stats = live.predictor.stats()
    assert stats.submitted == 5 and stats.processed + stats.dropped == 5 and stats.failed == 0
    # the newest set is always reconstructed (latest mode drops only stale ones)
    newest = display.latest("488")
    assert newest is not None and newest.kind == "sr" and newest.t == 4
    assert newest.image.shape == (2 * SENSOR, 2 * SENSOR) and newest is shown[-1]
    assert [f.t for f in shown] == sorted({f.t for f in shown})
    assert live.sr_failed == 0 and live.first_sr_error is None
    assert scope.emitting() == []


def test_live_runs_until_stopped_from_another_thread(scope: Microscope) -> None:
    live = LiveAcquisition(scope, _protocol("wf"), chunk=3)
    enough = threading.Event()

    def on_set(frame_set: FrameSet) -> None:
        if live.sets_acquired >= 6:  # two engine runs and more
            enough.set()

    live.set_ready.connect(on_set)
    worker = threading.Thread(target=live.run, daemon=True)
    worker.start()
    assert enough.wait(120)
    live.stop()
    worker.join(60)
    assert not worker.is_alive() and live.stop_requested
    assert live.predictor is None and live.display.latest() is None  # nothing to reconstruct
    assert scope.emitting() == []


def _result(seq: int, info: SetInfo, image: np.ndarray | None,
            error: BaseException | None = None) -> StreamResult[SetInfo]:
    return StreamResult(seq, image, info, 0.25, error)


def test_sr_display_shows_each_result_and_keeps_the_first_failure() -> None:
    display = SRDisplay(DisplaySlot())
    info = SetInfo(t=3, p=1, channel="560", timestamp_ms=12.0, exposure_ms=2.0)
    image = np.ones((4, 4), np.float32)
    frame = display.show(_result(0, info, image))
    assert frame == display.display.latest("560")
    assert frame is not None and (frame.t, frame.position, frame.kind) == (3, 1, "sr")
    assert frame.image is image and frame.latency_s == 0.25
    assert display.show(_result(1, info, None, RuntimeError("CUDA out of memory"))) is None
    assert display.show(_result(2, info, None, ValueError("later"))) is None
    assert display.failed == 2 and display.first_error == "RuntimeError: CUDA out of memory"
    assert display.display.latest("560") is frame and display.display.updates == 1
