"""The main window: linked raw / WF / SR views, device panels, protocol editor, counters.

A ~30 Hz timer shows only the newest raw set and the newest SR image of the running session
(never a queue of frames through Qt signals); the counter line follows at 4 Hz, the
histograms at 2 Hz and the lasers' state at 1 Hz. The window drives ``acquisition/`` and
``hardware/`` and owns none of their logic. Every laser goes off when the window closes and
when a session fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QDockWidget,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStatusBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from acquisition.protocol import (
    ChannelSpec,
    InferenceSpec,
    Protocol,
    Reconstruction,
    check_protocol,
)
from gui.counters import Counters
from gui.dose_panel import DosePanel
from gui.panels import AcquisitionPanel, LaserPanel, ReconstructionChoice
from gui.protocol_editor import ProtocolEditor
from gui.sessions import LiveSession, ProtocolSession, Session
from gui.views import LinkedViews, sr_title

if TYPE_CHECKING:
    from pathlib import Path

    from acquisition.display import DisplayFrame
    from hardware.frameset import FrameSet
    from hardware.microscope import Microscope

__all__ = ["DISPLAY_HZ", "MainWindow"]

DISPLAY_HZ = 30
COUNTERS_HZ = 4
HISTOGRAM_HZ = 2
DEVICES_HZ = 1


class MainWindow(QMainWindow):
    """LiveSR at the microscope.

    Args:
        scope: the open microscope (the window turns its emission off when it closes; the
            caller closes it).
        weights: DFCAN weights offered for reconstruction (``{"sim": path, "sisr": path}``).
        config_name: what the microscope was loaded from (for the title and protocol runs).
    """

    session_finished = Signal(object)  # the Session (queued from its worker thread)

    def __init__(self, scope: Microscope, weights: dict[str, Path] | None = None,
                 config_name: str = "demo") -> None:
        super().__init__()
        self.scope = scope
        self.config_name = config_name
        self.pixel_um = scope.backend.pixel_size_um() or 1.0
        self.session: Session | None = None
        self.last_session: Session | None = None
        self.frames_displayed = 0
        self.sr_displayed = 0
        self.displayed_sr: DisplayFrame | None = None
        self._shown_set: FrameSet | None = None
        self._auto_pending = True
        self.setWindowTitle(f"LiveSR — {config_name}")
        self.views = LinkedViews()
        self.setCentralWidget(self._central())
        self.lasers = LaserPanel(scope, self.report)
        self.acquire = AcquisitionPanel(scope, self._exposure_widget())
        self.reconstruction = ReconstructionChoice(weights or {})
        self.dose = DosePanel(camera=scope.settings.camera.calibration)
        self._sr_error_reported: Session | None = None
        self.editor = ProtocolEditor()
        self._docks()
        self.counter_labels: dict[str, QLabel] = {}
        self._counter_bar()
        self.acquire.snap_clicked.connect(self.snap)
        self.acquire.live_toggled.connect(self._live_toggled)
        self.editor.run_requested.connect(self.run_protocol)
        self.editor.stop_requested.connect(self.stop)
        self.session_finished.connect(self._on_session_finished,
                                      Qt.ConnectionType.QueuedConnection)
        self.display_timer = QTimer(self)
        self.display_timer.setInterval(round(1000 / DISPLAY_HZ))
        self.display_timer.timeout.connect(self.refresh_display)
        self.display_timer.start()
        self.counter_timer = QTimer(self)
        self.counter_timer.setInterval(round(1000 / COUNTERS_HZ))
        self.counter_timer.timeout.connect(self.refresh_counters)
        self.counter_timer.start()
        self.histogram_timer = QTimer(self)
        self.histogram_timer.setInterval(round(1000 / HISTOGRAM_HZ))
        self.histogram_timer.timeout.connect(self.views.update_histograms)
        self.histogram_timer.start()
        # the lasers' state as the devices report it (the engine switches them during a run)
        self.device_timer = QTimer(self)
        self.device_timer.setInterval(round(1000 / DEVICES_HZ))
        self.device_timer.timeout.connect(self.lasers.refresh)
        self.device_timer.timeout.connect(self.refresh_dose)
        self.device_timer.start()
        self.resize(1500, 900)

    # -- layout
    def _central(self) -> QWidget:
        central = QWidget()
        layout = QVBoxLayout(central)
        bar = QHBoxLayout()
        auto = QPushButton("Auto contrast")
        auto.clicked.connect(self.views.auto_contrast)
        fit = QPushButton("Fit")
        fit.clicked.connect(self.views.fit)
        self.status = QLabel("ready")
        bar.addWidget(auto)
        bar.addWidget(fit)
        bar.addWidget(self.status, 1)
        layout.addLayout(bar)
        layout.addWidget(self.views, 1)
        return central

    def _exposure_widget(self) -> QWidget | None:
        core = getattr(self.scope.backend, "core", None)
        if core is None:
            return None
        from pymmcore_widgets import ExposureWidget

        return ExposureWidget(mmcore=core)

    def _docks(self) -> None:
        controls = QWidget()
        layout = QVBoxLayout(controls)
        layout.addWidget(self.acquire)
        layout.addWidget(self.reconstruction)
        layout.addWidget(self.lasers)
        layout.addWidget(self.dose)
        props = QPushButton("Device properties…")
        props.clicked.connect(self.show_property_browser)
        layout.addWidget(props)
        layout.addStretch(1)
        tabs = QTabWidget()
        tabs.addTab(controls, "Microscope")
        tabs.addTab(self.editor, "Protocol")
        presets = self._presets_widget()
        if presets is not None:
            tabs.addTab(presets, "Presets")
        dock = QDockWidget("Controls", self)
        dock.setWidget(tabs)
        dock.setMaximumWidth(460)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self._property_browser: QWidget | None = None

    def _presets_widget(self) -> QWidget | None:
        core = getattr(self.scope.backend, "core", None)
        if core is None:
            return None
        from pymmcore_widgets import GroupPresetTableWidget

        return GroupPresetTableWidget(mmcore=core)

    def show_property_browser(self) -> None:
        """Show pymmcore-widgets' device property browser (pymmcore-plus backend only)."""
        core = getattr(self.scope.backend, "core", None)
        if core is None:
            self.report("the device property browser needs the pymmcore-plus backend")
            return
        if self._property_browser is None:
            from pymmcore_widgets import PropertyBrowser

            self._property_browser = PropertyBrowser(mmcore=core)
            self._property_browser.setWindowTitle("Device properties")
        self._property_browser.show()
        self._property_browser.raise_()

    def _counter_bar(self) -> None:
        bar = QWidget()
        grid = QGridLayout(bar)
        grid.setContentsMargins(4, 0, 4, 0)
        for col, label in enumerate(Counters().describe()):
            grid.addWidget(QLabel(f"{label}:"), 0, 2 * col, Qt.AlignmentFlag.AlignRight)
            value = QLabel("-")
            value.setMinimumWidth(60)
            grid.addWidget(value, 0, 2 * col + 1)
            self.counter_labels[label] = value
        self._status_bar().addPermanentWidget(bar, 1)

    # -- messages
    def _status_bar(self) -> QStatusBar:
        bar = self.statusBar()
        assert bar is not None
        return bar

    def report(self, message: str) -> None:
        """Show an error or note in the window (never raise into Qt)."""
        self.status.setText(message)
        self._status_bar().showMessage(message, 15_000)

    # -- what the controls ask for
    def live_protocol(self) -> Protocol:
        """Build a one-channel protocol holding the controls' choices (checked like a file's)."""
        preset = self.acquire.channel.currentText()
        line = self.scope.channel_line(preset)
        method = self.reconstruction.method.currentText()
        weights = self.reconstruction.weights_path() if method == "dfcan" else None
        channel = ChannelSpec(preset=preset, power_mw=self.lasers.power[line].value(),
                              exposure_ms=self.scope.camera.exposure_ms,
                              reconstruction=Reconstruction(method=method, weights=weights))
        backend: Any = self.reconstruction.backend.currentText()
        return Protocol(mode=self.acquire.mode.currentText(), channels=[channel],
                        inference=InferenceSpec(backend=backend))

    # -- sessions
    def snap(self) -> bool:
        """Snap one set; False when it could not start."""
        return self._start_live(count=1)

    def start_live(self, count: int | None = None) -> bool:
        """Live until stopped (or ``count`` sets); False when it could not start."""
        started = self._start_live(count)
        self.acquire.live.blockSignals(True)
        self.acquire.live.setChecked(started)
        self.acquire.live.blockSignals(False)
        return started

    def _live_toggled(self, on: bool) -> None:
        if on:
            self.start_live()
        else:
            self.stop()

    def _start_live(self, count: int | None) -> bool:
        if self.session is not None:
            self.report("an acquisition is running: stop it first")
            return False
        try:
            protocol = self.live_protocol()
        except Exception as exc:
            self.report(f"cannot start: {exc}")
            return False
        if problems := check_protocol(protocol, self.scope.settings):
            self.report("cannot start: " + "; ".join(p.split(": ", 1)[-1] for p in problems))
            return False
        self._start(LiveSession(self.scope, protocol, count=count,
                                on_finished=self.session_finished.emit))
        return True

    def run_protocol(self, protocol: Protocol, out: Path | None = None,
                     overwrite: bool = False) -> bool:
        """Run a checked protocol on this window's microscope."""
        if self.session is not None:
            self.report("an acquisition is running: stop it first")
            return False
        if protocol.microscope.config != self.config_name:
            self.report(f"note: the protocol names microscope {protocol.microscope.config!r}; "
                        f"it runs on the open one ({self.config_name})")
        self._start(ProtocolSession(self.scope, protocol, out, overwrite,
                                    on_finished=self.session_finished.emit))
        self.editor.set_running(True)
        return True

    def _start(self, session: Session) -> None:
        self.session = session
        self._shown_set = None
        self.displayed_sr = None
        self.acquire.snap.setEnabled(False)
        self.status.setText(f"{session.kind}: starting…")
        session.start()

    def stop(self) -> None:
        """Ask the running session to stop (returns at once)."""
        if self.session is not None:
            self.session.stop()
            self.status.setText(f"{self.session.kind}: stopping…")

    def _on_session_finished(self, session: Session) -> None:
        self.refresh_display()
        self.refresh_counters()
        if session is self.session:
            self.session = None
        self.last_session = session
        self.acquire.snap.setEnabled(True)
        self.acquire.live.blockSignals(True)
        self.acquire.live.setChecked(False)
        self.acquire.live.blockSignals(False)
        self.editor.set_running(False)
        self.lasers.refresh()
        if session.error is not None:
            self.emission_off()
            self.report(f"{session.kind} failed: {session.error}")
            return
        text = f"{session.kind}: done, {session.frames_acquired} raw frames"
        result = getattr(session, "result", None)
        if result is not None:
            text += f", {result.frames_written} written to {result.output}"
        self.status.setText(text)

    def emission_off(self) -> None:
        """Turn every laser's emission off (a failure is reported loudly); refresh the panel."""
        try:
            self.scope.emission_off()
        except Exception as exc:
            self.report(f"EMISSION COULD NOT BE TURNED OFF: {exc}")
        self.lasers.refresh()

    # -- display (GUI thread, on the timers)
    def current(self) -> Session | None:
        """Return the running session, else the last one (``None`` before any)."""
        return self.session or self.last_session

    def refresh_display(self) -> None:
        """Show the newest raw set (raw frame and WF) and the newest SR image, if new.

        Those of the chosen channel when the session has it, else of any channel.
        """
        session = self.current()
        if session is None:
            return
        channel = self.acquire.channel.currentText()
        frame_set = session.raw.latest(channel)
        if frame_set is not None and frame_set is not self._shown_set:
            self._shown_set = frame_set
            k = self.acquire.pattern_index()
            n = frame_set.n_frames
            raw = frame_set.frames[n - 1 if k is None or k >= n else k]
            self.views.raw.show(raw, self.pixel_um)
            wf = frame_set.widefield() if n > 1 else raw
            self.views.wf.show(wf, self.pixel_um)
            self.frames_displayed += 1
        sr = session.display.latest(channel) or session.display.latest()
        if sr is not None and sr is not self.displayed_sr and sr.kind == "sr":
            self.displayed_sr = sr
            scale = sr.image.shape[0] / max(frame_set.shape[0], 1) if frame_set else 1.0
            self.views.sr.show(np.asarray(sr.image), self.pixel_um / scale)
            self.views.sr.set_title(sr_title(sr))
            self.sr_displayed += 1
        if self._auto_pending and self.views.raw.image is not None:
            self._auto_pending = False
            self.views.fit()
        if session is self.session:
            self.status.setText(f"{session.kind}: {session.frames_acquired} raw frames")

    def refresh_dose(self) -> None:
        """Dose advice on the newest raw set of the chosen channel (1 Hz)."""
        session = self.current()
        if session is not None:
            self.dose.judge(session.raw.latest(self.acquire.channel.currentText()))

    def refresh_counters(self) -> None:
        """Show the session's counters; report its first SR failure once."""
        session = self.current()
        if session is None:
            return
        for label, text in session.counters().describe().items():
            self.counter_labels[label].setText(text)
        error = getattr(session, "first_sr_error", None)
        if error is not None and session is not self._sr_error_reported:
            self._sr_error_reported = session
            failed = getattr(session, "sr_failed", 0)
            self.report(f"SR reconstruction failed ({failed} set(s) so far; the first: {error})")

    def timers(self) -> tuple[QTimer, ...]:
        """Return the display, counter, histogram and device-state timers."""
        return (self.display_timer, self.counter_timer, self.histogram_timer, self.device_timer)

    # -- closing: lasers off
    def closeEvent(self, event: Any) -> None:
        """Stop the session (waiting up to 30 s), the timers and all emission, then close."""
        session = self.session
        if session is not None:
            session.stop()
            if not session.wait(30):
                QMessageBox.warning(self, "LiveSR", "the acquisition did not stop in 30 s; "
                                    "emission is turned off anyway")
        for timer in self.timers():
            timer.stop()
        self.emission_off()
        if self._property_browser is not None:
            self._property_browser.close()
        super().closeEvent(event)
