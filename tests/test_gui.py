"""The desktop GUI on a small copy of the demo microscope (offscreen Qt): live SR arrives in the
SR view and stops on request; the laser panel drives the core's devices and closing the window
turns every laser off; a protocol with errors shows its located messages and does not start; a
protocol runs on the window's microscope and writes its files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from acquisition_support import small_cfg, tiny_dfcan, write_protocol

from hardware.microscope import Microscope

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest.importorskip("pytestqt")
pytest.importorskip("pyqtgraph")

SENSOR = 64
WAIT_MS = 120_000  # the first frame waits for the sample to render on a loaded machine


@pytest.fixture
def scope(qapp: object, tmp_path: Path) -> Iterator[Microscope]:
    """A small demo microscope opened after the QApplication (as the GUI does)."""
    microscope = Microscope.open(str(small_cfg(tmp_path, SENSOR)))
    yield microscope
    microscope.close()


@pytest.fixture
def window(qtbot, scope: Microscope, tmp_path: Path):  # type: ignore[no-untyped-def]
    from gui.window import MainWindow

    tiny = tiny_dfcan(tmp_path / "tiny_sim.safetensors", in_channels=9)
    win = MainWindow(scope, {"sim": tiny}, config_name="small")
    qtbot.addWidget(win)
    win.show()
    yield win
    if win.session is not None:
        win.session.stop()
        win.session.wait(60)


def _core(scope: Microscope):  # type: ignore[no-untyped-def]
    return scope.backend.core  # type: ignore[attr-defined]


def test_live_sim_shows_the_predictors_latest_output_and_stops(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.reconstruction.set_choice("dfcan", window.reconstruction.weights_path(), "torch")
    window.acquire.mode.setCurrentText("tirf-sim")
    assert window.start_live(), window.status.text()
    session = window.session
    assert session is not None and window.acquire.live.isChecked()
    # SR frames arrive in the SR view: at least two, so the view follows the stream
    qtbot.waitUntil(lambda: window.sr_displayed >= 2, timeout=WAIT_MS)
    assert session.running
    window.acquire.live.setChecked(False)  # the Live button stops it
    qtbot.waitUntil(lambda: window.session is None, timeout=WAIT_MS)
    assert not session.running and session.error is None
    window.refresh_display()
    # the SR view shows exactly the predictor's latest output, on the 2× grid
    latest = session.predictor.latest()
    assert latest is not None and latest.image is not None
    shown = window.views.sr.item.image
    np.testing.assert_array_equal(shown, latest.image)
    assert window.displayed_sr is session.display.latest()
    assert shown.shape == (2 * SENSOR, 2 * SENSOR)
    # raw and WF views show the newest raw set; the views are placed in µm
    frame_set = session.raw.latest()
    assert frame_set is not None and frame_set.n_frames == 9
    np.testing.assert_array_equal(window.views.raw.item.image, frame_set.frames[-1])
    np.testing.assert_allclose(window.views.wf.item.image, frame_set.widefield())
    px = window.pixel_um
    assert px == pytest.approx(0.0626)
    for panel in (window.views.raw, window.views.sr):
        rect = panel.item.mapRectToParent(panel.item.boundingRect())
        assert rect.width() == pytest.approx(SENSOR * px)
    # stopped: every laser is off
    assert not window.scope.emitting()
    counters = session.counters().describe()
    # after the end: the session's mean rates, and the predictor's latency percentiles
    assert float(counters["raw fps"]) > 0 and float(counters["SR fps"]) > 0
    assert counters["latency p50/p99 ms"] != "- / -" and counters["frames written"] == "-"
    # the dose advisor judges the newest raw set against the evaluation matrix
    from inference.evaluation.dose_advisor import DoseAdvisor

    window.refresh_dose()
    expected = DoseAdvisor().advise(frame_set.frames, "microtubules")
    assert window.dose.last_advice == expected
    assert window.dose.advice.text() == expected.message
    window.dose.structure.setCurrentText("er")  # another structure: judged again
    assert window.dose.last_advice == DoseAdvisor().advise(frame_set.frames, "er")


def test_live_wf_without_reconstruction_shows_raw_and_wf(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.acquire.mode.setCurrentText("wf")
    window.reconstruction.set_choice("none")
    assert window.start_live(count=5)
    qtbot.waitUntil(lambda: window.session is None, timeout=WAIT_MS)
    session = window.last_session
    assert session.error is None and session.frames_acquired == 5
    assert window.views.raw.frames_shown >= 1 and window.views.sr.frames_shown == 0
    assert window.views.wf.frames_shown >= 1
    window.refresh_dose()
    assert window.dose.last_advice is None
    assert "needs 9-frame linear SIM sets" in window.dose.advice.text()


def test_sr_failures_in_live_are_reported(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A reconstruction that fails (a wrong model, a GPU out of memory) is said in the window,
    not only logged, while the raw stream goes on.
    """

    class FailingReconstructor:
        name, scale, frames_per_set = "failing", 2, 9

        def reconstruct(self, frames: np.ndarray) -> np.ndarray:
            raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr("acquisition.reconstruction.channel_reconstructor",
                        lambda *args: (FailingReconstructor(), {"scale": 2}))
    window.reconstruction.set_choice("dfcan", window.reconstruction.weights_path(), "torch")
    window.acquire.mode.setCurrentText("tirf-sim")
    assert window.start_live(count=3)
    qtbot.waitUntil(lambda: window.session is None, timeout=WAIT_MS)
    session = window.last_session
    assert session.error is None and session.sets_acquired == 3 and session.sr_failed >= 1
    message = window.statusBar().currentMessage()
    assert "SR reconstruction failed" in message and "CUDA out of memory" in message


def test_laser_power_in_the_panel_sets_the_device_and_closing_turns_every_laser_off(
        qtbot, window, scope: Microscope) -> None:  # type: ignore[no-untyped-def]
    core = _core(scope)
    box = window.lasers.power[488]
    box.setValue(37.5)
    assert float(core.getProperty("Laser488", "PowerSetpoint-mW")) == pytest.approx(37.5)
    # above the configured limit: the spin box cannot go there
    box.setValue(10_000)
    assert float(core.getProperty("Laser488", "PowerSetpoint-mW")) == pytest.approx(200)
    window.lasers.aotf[560].setValue(42)
    assert float(core.getProperty("AOTF", "Intensity-560")) == pytest.approx(42)
    for line, on in window.lasers.emission.items():
        on.setChecked(True)
        assert core.getShutterOpen(scope.lasers[line].label)
    assert sorted(scope.emitting()) == ["Laser405", "Laser488", "Laser560"]
    window.close()
    assert scope.emitting() == []
    assert not any(core.getShutterOpen(laser.label) for laser in scope.lasers.values())


def test_a_power_set_while_live_holds_for_the_next_sets(qtbot, window, scope) -> None:  # type: ignore[no-untyped-def]
    from gui.sessions import LiveSession

    window.acquire.mode.setCurrentText("wf")
    window.lasers.power[488].setValue(20)
    session = LiveSession(scope, window.live_protocol(), chunk=2)
    session.start()
    qtbot.waitUntil(lambda: session.raw.count >= 1, timeout=WAIT_MS)
    assert session.raw.latest().laser_powers_mw == {488: 20.0}
    window.lasers.power[488].setValue(55)
    qtbot.waitUntil(lambda: session.raw.latest().laser_powers_mw == {488: 55.0},
                    timeout=WAIT_MS)
    session.stop()
    assert session.wait(60) and session.error is None
    assert scope.lasers[488].power_mw == 55.0 and scope.emitting() == []


def test_closing_during_live_stops_it_and_turns_lasers_off(qtbot, window, scope) -> None:  # type: ignore[no-untyped-def]
    window.acquire.mode.setCurrentText("wf")
    assert window.start_live()
    session = window.session
    qtbot.waitUntil(lambda: session.raw.count >= 1, timeout=WAIT_MS)
    assert scope.emitting()  # live: the channel's laser is on
    window.close()
    assert not session.running and scope.emitting() == []


def test_bad_controls_are_refused_before_any_device(qtbot, window, scope) -> None:  # type: ignore[no-untyped-def]
    window.reconstruction.set_choice("dfcan", Path("/no/such/weights.safetensors"))
    assert not window.start_live()  # checked like a protocol file
    assert "no such file" in window.status.text() and window.session is None
    window.acquire.mode.setCurrentText("wf")
    window.reconstruction.set_choice("wiener-sim")
    assert not window.start_live()
    assert "wiener-sim needs SIM sets" in window.status.text() and window.session is None
    assert scope.emitting() == [] and window.last_session is None


def test_a_failed_session_turns_emission_off_and_says_why(qtbot, qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import faulty_devices
    from faulty_devices import demo_cfg_variant

    from gui.window import MainWindow

    cfg = demo_cfg_variant(tmp_path / "faulty.cfg", f"gui-faulty-{tmp_path.name}", sensor=SENSOR,
                           classes={"Camera": "faulty_devices.FaultyCamera"})
    faulty_devices.reset()
    faulty_devices.FaultyCamera.fault_after = 4  # the sensor link drops at the 5th frame
    with Microscope.open(str(cfg)) as scope:
        win = MainWindow(scope, {}, config_name="faulty")
        qtbot.addWidget(win)
        win.lasers.emission[405].setChecked(True)  # a laser left on by hand
        win.acquire.mode.setCurrentText("wf")
        win.reconstruction.set_choice("none")
        assert win.start_live()
        session = win.session
        qtbot.waitUntil(lambda: win.session is None, timeout=WAIT_MS)
        assert session.error is not None and "sensor link lost" in session.error
        assert "live failed" in win.status.text()
        assert scope.emitting() == []
        assert not win.lasers.emission[405].isChecked()
        win.close()
    faulty_devices.reset()


def test_a_protocol_with_errors_shows_located_messages_and_does_not_start(
        qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_protocol(tmp_path, """
        mode: tirf-sim
        channels:
          - {preset: "488", power_mw: 900, exposure_ms: 2}
          - {preset: "640", power_mw: 10, exposure_ms: -1}
        timelapse: {count: 2}
        """, name="bad.yaml")
    editor = window.editor
    assert editor.open(path)
    started: list[object] = []
    editor.run_requested.connect(started.append)
    editor.run_button.click()
    messages = editor.message_texts()
    assert started == [] and window.session is None
    assert any(m.startswith(f"{path}:3:") and "power_mw" in m and "200" in m for m in messages)
    assert any(m.startswith(f"{path}:4:") and "exposure_ms" in m for m in messages)
    assert not (tmp_path / "livesr-output").exists()
    # clicking a message moves the cursor to its line
    editor._go_to(editor.messages.item(0))
    assert editor.text.textCursor().blockNumber() + 1 in (3, 4)


def test_the_form_edits_the_protocol_text(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    editor = window.editor
    editor.set_text('channels:\n  - {preset: "488", power_mw: 10, exposure_ms: 2}\n')
    editor.form.count.setValue(7)
    editor.form.mode.setCurrentText("wf")
    protocol = editor.check()
    assert protocol is not None
    assert protocol.timelapse.count == 7 and protocol.mode == "wf"
    assert editor.message_texts() == ["protocol OK"]
    assert editor.save(tmp_path / "saved.yaml")
    assert "count: 7" in (tmp_path / "saved.yaml").read_text()
    # text the form cannot read (mid-edit) is never replaced by the form's fields alone
    broken = 'channels:\n  - {preset: "488", power_mw: 10\n'
    editor.set_text(broken)
    editor.form.count.setValue(9)
    assert editor.text.toPlainText() == broken
    assert "not valid YAML" in " ".join(editor.message_texts())


def test_a_protocol_runs_on_the_windows_microscope(qtbot, window, scope, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_protocol(tmp_path, """
        microscope: {roi: 32}
        mode: tirf-sim
        channels:
          - {preset: "488", power_mw: 20, exposure_ms: 2,
             reconstruction: {method: dfcan, weights: tiny_sim.safetensors}}
        timelapse: {count: 2}
        save: {wf: true, sr: every}
        output: run
        inference: {backend: torch, device: cpu}
        """)
    window.editor.open(path)
    window.editor.run_button.click()
    session = window.session
    assert session is not None and session.kind == "protocol"
    assert window.editor.stop_button.isEnabled()
    qtbot.waitUntil(lambda: window.session is None, timeout=WAIT_MS)
    assert session.error is None, session.error
    result = session.result
    assert result.completed and result.frames_written == 18 and result.sr_written == 2
    assert (tmp_path / "run" / "raw" / "raw_p000.ome.tif").is_file()
    assert window.sr_displayed >= 1
    assert window.counter_labels["frames written"].text() == "18"
    import tifffile

    with tifffile.TiffFile(tmp_path / "run" / "raw" / "raw_p000.ome.tif") as tif:
        assert tif.series[0].shape[-2:] == (32, 32)  # the protocol's ROI
    assert scope.emitting() == []
    # the microscope stays open for the window, with its ROI back for the live view
    assert scope.camera.shape == (SENSOR, SENSOR)


def test_the_sr_view_shows_each_sets_trust_and_the_counters_the_low_ones(  # type: ignore[no-untyped-def]
        qtbot, window, tmp_path: Path) -> None:
    from gui.views import sr_title

    path = write_protocol(tmp_path, """
        mode: tirf-sim
        channels:
          - {preset: "488", power_mw: 20, exposure_ms: 2,
             reconstruction: {method: dfcan, weights: tiny_sim.safetensors,
                              trust: {threshold: 100, fallback: wiener-sim}}}
        timelapse: {count: 3}
        save: {wf: false, sr: every}
        output: run
        inference: {backend: torch, device: cpu}
        """)
    window.editor.open(path)
    window.editor.run_button.click()
    session = window.session
    assert session is not None
    qtbot.waitUntil(lambda: window.session is None, timeout=WAIT_MS)
    assert session.error is None, session.error
    trust = session.result.trust["488"]
    assert trust["count"] >= 2 and trust["below_threshold"] == trust["count"]
    window.refresh_display()
    shown = window.displayed_sr
    assert shown is not None and shown.trust is not None and shown.trust_low
    assert window.views.sr.title == sr_title(shown)
    assert window.views.sr.title.startswith("SR · trust ") and "LOW: wiener-sim shown" in \
        window.views.sr.title
    assert window.counter_labels["low-trust SR"].text() == str(trust["below_threshold"])


def test_stop_ends_a_protocol_run(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_protocol(tmp_path, """
        mode: tirf-sim
        channels: [{preset: "488", power_mw: 20, exposure_ms: 2}]
        timelapse: {count: 300}
        save: {sr: none}
        output: long
        """)
    window.editor.open(path)
    window.editor.run_button.click()
    session = window.session
    qtbot.waitUntil(lambda: session.raw.count >= 3, timeout=WAIT_MS)
    window.editor.stop_button.click()
    qtbot.waitUntil(lambda: window.session is None, timeout=WAIT_MS)
    result = session.result
    assert result is not None and not result.completed
    assert 27 <= result.frames_written < 2700
    assert result.frames_written % 9 == 0  # whole sets


def test_crash_hook_turns_emission_off_before_the_previous_hook(scope: Microscope) -> None:
    from gui.crash_guard import install_excepthook

    seen: list[bool] = []
    previous = sys.excepthook
    sys.excepthook = lambda *args: seen.append(bool(scope.emitting()))
    try:
        restore = install_excepthook()
        scope.lasers[488].on()
        assert scope.emitting() == ["Laser488"]
        try:
            raise RuntimeError("a slot crashed")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())  # what Qt does with an exception escaping a slot
        restore()
    finally:
        sys.excepthook = previous
    assert seen == [False]  # the previous hook ran after emission was off
    assert scope.emitting() == []


def test_screenshot_command_acquires_and_saves_the_window(qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from qtpy.QtGui import QImage

    from acquisition.cli import main

    cfg = small_cfg(tmp_path, SENSOR)
    png = tmp_path / "docs" / "gui.png"
    assert main(["gui", "--config", str(cfg), "--screenshot", str(png), "--frames", "9"]) == 0
    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500
    assert main(["gui", "--demo", "--config", str(cfg), "--screenshot", str(png)]) == 2


def test_rate_meter_counts_over_its_window() -> None:
    from gui.counters import Counters, RateMeter

    meter = RateMeter(window_s=2.0)
    assert meter.rate(now=0.0) == 0.0
    for i in range(11):  # 9 frames every 0.1 s
        meter.add(9, now=i * 0.1)
    assert meter.rate(now=1.0) == pytest.approx(90.0)
    assert meter.rate(now=10.0) == 0.0 and meter.total == 99  # the window has passed
    text = Counters(raw_fps=90, latency_p50_ms=12.4, latency_p99_ms=40.0, frames_written=7,
                    free_disk_bytes=2_500_000_000, camera_buffer_fill=0.25,
                    writer_queue_fill=0.5).describe()
    assert text["raw fps"] == "90.0" and text["latency p50/p99 ms"] == "12 / 40"
    assert text["free disk"] == "2.5 GB" and text["buffer fill"] == "cam 25% · writer 50%"
    assert text["low-trust SR"] == "-" and Counters(low_trust=3).describe()["low-trust SR"] == "3"
