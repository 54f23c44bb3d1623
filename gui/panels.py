"""Device and acquisition controls: lasers and AOTF, camera, SIM mode, reconstruction.

The panels act through the microscope's roles (``hardware/``): a laser's power goes through
``Laser.power_mw`` (refused above the configured limit), emission through ``Laser.on/off``, AOTF
lines through ``AOTF.set_intensity``. Errors are shown, never raised into Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from hardware.microscope import Microscope

__all__ = ["AcquisitionPanel", "LaserPanel", "ReconstructionChoice"]

ErrorSink = Callable[[str], None]


class LaserPanel(QGroupBox):
    """Per laser line: emission on/off, power (mW, up to the configured limit), AOTF %."""

    def __init__(self, scope: Microscope, report: ErrorSink) -> None:
        super().__init__("Lasers and AOTF")
        self.scope, self.report = scope, report
        grid = QGridLayout(self)
        for col, text in enumerate(("line", "emission", "power (mW)", "AOTF (%)")):
            grid.addWidget(QLabel(f"<b>{text}</b>"), 0, col)
        self.emission: dict[int, QCheckBox] = {}
        self.power: dict[int, QDoubleSpinBox] = {}
        self.aotf: dict[int, QDoubleSpinBox] = {}
        aotf_lines = scope.aotf.lines if scope.aotf is not None else []
        for row, (line, laser) in enumerate(sorted(scope.lasers.items()), start=1):
            grid.addWidget(QLabel(f"{line} nm"), row, 0)
            on = QCheckBox("on")
            on.setChecked(laser.is_on)
            on.toggled.connect(lambda checked, ln=line: self._set_emission(ln, checked))
            grid.addWidget(on, row, 1)
            power = QDoubleSpinBox()
            power.setRange(0.0, laser.max_power_mw)
            power.setDecimals(1)
            power.setKeyboardTracking(False)
            power.setValue(laser.power_mw)
            power.valueChanged.connect(lambda mw, ln=line: self._set_power(ln, mw))
            grid.addWidget(power, row, 2)
            self.emission[line], self.power[line] = on, power
            if line in aotf_lines and scope.aotf is not None:
                aotf = QDoubleSpinBox()
                aotf.setRange(0.0, 100.0)
                aotf.setDecimals(1)
                aotf.setKeyboardTracking(False)
                aotf.setValue(scope.aotf.intensity(line))
                aotf.valueChanged.connect(lambda pct, ln=line: self._set_aotf(ln, pct))
                grid.addWidget(aotf, row, 3)
                self.aotf[line] = aotf
        self.all_off = QPushButton("All emission off")
        self.all_off.clicked.connect(self.emission_off)
        grid.addWidget(self.all_off, len(scope.lasers) + 1, 0, 1, 4)

    def _set_emission(self, line: int, on: bool) -> None:
        laser = self.scope.lasers[line]
        try:
            laser.on() if on else laser.off()
        except Exception as exc:
            self.report(f"{laser.label}: {exc}")
            self.refresh()

    def _set_power(self, line: int, mw: float) -> None:
        try:
            self.scope.lasers[line].power_mw = mw
        except Exception as exc:
            self.report(str(exc))
            self.refresh()

    def _set_aotf(self, line: int, percent: float) -> None:
        try:
            assert self.scope.aotf is not None
            self.scope.aotf.set_intensity(line, percent)
        except Exception as exc:
            self.report(str(exc))

    def emission_off(self) -> None:
        """Turn every laser's emission off (an error is reported), then refresh the panel."""
        try:
            self.scope.emission_off()
        except Exception as exc:
            self.report(str(exc))
        self.refresh()

    def powers_mw(self) -> dict[int, float]:
        """Return the power shown for each laser line, mW."""
        return {line: box.value() for line, box in self.power.items()}

    def refresh(self) -> None:
        """Show the devices' state (emission, power) without writing it back."""
        for line, laser in self.scope.lasers.items():
            try:
                on, mw = laser.is_on, laser.power_mw
            except Exception:
                continue
            _show(self.emission[line], on)
            _show(self.power[line], mw)
        for line, box in self.aotf.items():
            if self.scope.aotf is None:
                break
            try:
                percent = self.scope.aotf.intensity(line)
            except Exception:
                continue
            _show(box, percent)


class ReconstructionChoice(QGroupBox):
    """Reconstruction (none, Wiener-SIM, DFCAN with a weights file) and inference backend."""

    changed = Signal()

    METHODS = ("none", "wiener-sim", "dfcan")
    BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")

    def __init__(self, weights: dict[str, Path]) -> None:
        super().__init__("Reconstruction")
        form = QFormLayout(self)
        self.method = QComboBox()
        self.method.addItems(self.METHODS)
        self.weights = QComboBox()
        self.weights.setEditable(True)
        self.weights.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for kind, path in sorted(weights.items()):
            self.weights.addItem(path.name, str(path))
            self.weights.setItemData(self.weights.count() - 1, f"{kind}: {path}",
                                     Qt.ItemDataRole.ToolTipRole)
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.weights, 1)
        row.addWidget(browse)
        self.backend = QComboBox()
        self.backend.addItems(self.BACKENDS)
        form.addRow("method", self.method)
        form.addRow("DFCAN weights", row)
        form.addRow("backend", self.backend)
        self.method.currentTextChanged.connect(lambda _: self.changed.emit())
        self.method.currentTextChanged.connect(self._enable)
        self._enable(self.method.currentText())

    def _enable(self, method: str) -> None:
        self.weights.setEnabled(method == "dfcan")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "DFCAN weights", "",
                                              "Weights (*.safetensors *.h5)")
        if path:
            self.weights.setEditText(path)

    def weights_path(self) -> Path | None:
        """Return the chosen weights: a listed file by its name, else the path typed in."""
        text = self.weights.currentText().strip()
        index = self.weights.findText(text)
        if index >= 0:
            return Path(str(self.weights.itemData(index)))
        return Path(text) if text else None

    def set_choice(self, method: str, weights: Path | None = None,
                   backend: str | None = None) -> None:
        """Select ``method`` and, when given, the ``weights`` file and the inference ``backend``."""
        if weights is not None:
            index = self.weights.findData(str(weights))
            if index >= 0:
                self.weights.setCurrentIndex(index)
            else:
                self.weights.setEditText(str(weights))
        if backend is not None:
            self.backend.setCurrentText(backend)
        self.method.setCurrentText(method)


def _show(widget: QCheckBox | QDoubleSpinBox, value: bool | float) -> None:
    """Show a device's value without emitting the widget's signals (a refresh, not an edit).

    A widget being edited (it has the focus) is left alone.
    """
    if widget.hasFocus():
        return
    widget.blockSignals(True)
    try:
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        else:
            widget.setValue(float(value))
    finally:
        widget.blockSignals(False)


class _ExposureBox(QDoubleSpinBox):
    """Camera exposure (ms) through the camera role, where no pymmcore-plus core is at hand."""

    def __init__(self, scope: Microscope) -> None:
        super().__init__()
        self.setRange(0.01, 10_000.0)
        self.setDecimals(2)
        self.setSuffix(" ms")
        self.setKeyboardTracking(False)
        self.setValue(scope.camera.exposure_ms)
        self.valueChanged.connect(lambda ms: setattr(scope.camera, "exposure_ms", ms))


class AcquisitionPanel(QWidget):
    """Snap / Live (WF or SIM), the channel, exposure, SIM mode and the pattern to show."""

    snap_clicked = Signal()
    live_toggled = Signal(bool)

    MODES = ("tirf-sim", "gi-sim", "nl-sim", "wf")

    def __init__(self, scope: Microscope, exposure_widget: QWidget | None = None) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        self.snap = QPushButton("Snap")
        self.live = QPushButton("Live")
        self.live.setCheckable(True)
        self.snap.clicked.connect(self.snap_clicked.emit)
        self.live.toggled.connect(self.live_toggled.emit)
        buttons.addWidget(self.snap)
        buttons.addWidget(self.live)
        layout.addLayout(buttons)
        form = QFormLayout()
        self.mode = QComboBox()
        self.mode.addItems(self.MODES)
        self.channel = QComboBox()
        self.channel.addItems(list(scope.settings.channels.lines))
        if "488" in scope.settings.channels.lines:
            self.channel.setCurrentText("488")
        self.exposure = exposure_widget or _ExposureBox(scope)
        self.pattern = QComboBox()
        self.pattern.addItem("newest")
        self.pattern.addItems([str(k) for k in range(25)])
        self.pattern.setToolTip("which frame of the raw set the raw view shows")
        form.addRow("SIM mode", self.mode)
        form.addRow("channel", self.channel)
        form.addRow("exposure", self.exposure)
        form.addRow("raw view pattern", self.pattern)
        layout.addLayout(form)

    def pattern_index(self) -> int | None:
        """Return the pattern frame the raw view shows (``None``: the newest of the set)."""
        text = self.pattern.currentText()
        return None if text == "newest" else int(text)
