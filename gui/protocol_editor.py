"""Open, edit, check, save and run acquisition protocols.

The protocol is its YAML text; a form edits the common top-level fields (mode, time-lapse,
ROI, what to save, output) in that text. Checking validates it with the same model and checks
as ``livesr run`` (:func:`acquisition.protocol.protocol_from_text`), and every located message
(``NAME:LINE:COL: field: message``) is listed; clicking one moves the cursor to its line. Run
only starts a protocol that checks clean.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from qtpy.QtCore import Signal
from qtpy.QtGui import QFont, QTextCursor
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from acquisition.protocol import MODES, Protocol, protocol_from_text
from yamlconfig.located import ConfigError

__all__ = ["ProtocolEditor"]

_LOCATION = re.compile(r":(\d+):(\d+): ")


class ProtocolForm(QWidget):
    """Widgets for the top-level fields; ``edited`` when the user changes one."""

    edited = Signal()

    def __init__(self) -> None:
        super().__init__()
        form = QFormLayout(self)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.count = QSpinBox()
        self.count.setRange(1, 10_000_000)
        self.interval = QDoubleSpinBox()
        self.interval.setRange(0.0, 86_400.0)
        self.interval.setDecimals(2)
        self.interval.setSuffix(" s")
        self.roi = QSpinBox()
        self.roi.setRange(0, 8192)
        self.roi.setSpecialValueText("full sensor")
        self.save_wf = QCheckBox("wide-field of every set")
        self.save_sr = QComboBox()
        self.save_sr.addItems(["every", "displayed", "none"])
        self.output = QLineEdit()
        for label, widget in (("mode", self.mode), ("time points", self.count),
                              ("interval", self.interval), ("ROI (px)", self.roi),
                              ("save WF", self.save_wf), ("save SR", self.save_sr),
                              ("output", self.output)):
            form.addRow(label, widget)
        self.mode.currentTextChanged.connect(self._edited)
        self.count.valueChanged.connect(self._edited)
        self.interval.valueChanged.connect(self._edited)
        self.roi.valueChanged.connect(self._edited)
        self.save_wf.toggled.connect(self._edited)
        self.save_sr.currentTextChanged.connect(self._edited)
        self.output.editingFinished.connect(self._edited)
        self._loading = False

    def _edited(self, *_: object) -> None:
        if not self._loading:
            self.edited.emit()

    def load(self, data: dict[str, Any]) -> None:
        """Show the fields of ``data`` (a parsed protocol); missing ones show defaults."""
        self._loading = True
        try:
            self.mode.setCurrentText(str(data.get("mode", "tirf-sim")))
            timelapse = data.get("timelapse") or {}
            self.count.setValue(_int(timelapse.get("count"), 1))
            self.interval.setValue(_float(timelapse.get("interval_s"), 0.0))
            self.roi.setValue(_int((data.get("microscope") or {}).get("roi"), 0))
            save = data.get("save") or {}
            self.save_wf.setChecked(bool(save.get("wf", True)))
            self.save_sr.setCurrentText(str(save.get("sr", "every")))
            self.output.setText(str(data.get("output", "livesr-output/run")))
        finally:
            self._loading = False

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return a copy of ``data`` with the form's fields written in."""
        data = dict(data)
        data["mode"] = self.mode.currentText()
        data["timelapse"] = {**(data.get("timelapse") or {}), "count": self.count.value(),
                             "interval_s": self.interval.value()}
        microscope = dict(data.get("microscope") or {})
        if self.roi.value():
            microscope["roi"] = self.roi.value()
        else:
            microscope.pop("roi", None)
        data["microscope"] = microscope
        data["save"] = {**(data.get("save") or {}), "wf": self.save_wf.isChecked(),
                        "sr": self.save_sr.currentText()}
        data["output"] = self.output.text().strip() or "livesr-output/run"
        return data


class ProtocolEditor(QWidget):
    """Protocol text, form, messages and the Open / Save / Check / Run / Stop buttons."""

    run_requested = Signal(object)  # a checked Protocol
    stop_requested = Signal()

    def __init__(self, base: Path | None = None) -> None:
        super().__init__()
        self.path: Path | None = None
        self.base = base or Path.cwd()
        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open…")
        self.save_button = QPushButton("Save…")
        self.check_button = QPushButton("Check")
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        for button in (self.open_button, self.save_button, self.check_button, self.run_button,
                       self.stop_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.name = QLabel("(new protocol)")
        layout.addWidget(self.name)
        self.form = ProtocolForm()
        layout.addWidget(self.form)
        self.text = QPlainTextEdit()
        self.text.setFont(QFont("monospace"))
        layout.addWidget(self.text, 3)
        self.messages = QListWidget()
        self.messages.setWordWrap(True)
        layout.addWidget(self.messages, 1)
        self.open_button.clicked.connect(lambda: self.open())
        self.save_button.clicked.connect(lambda: self.save())
        self.check_button.clicked.connect(self.check)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        self.form.edited.connect(self._form_to_text)
        self.text.textChanged.connect(self._text_to_form)
        self.messages.itemActivated.connect(self._go_to)
        self.messages.itemClicked.connect(self._go_to)

    # -- text and form
    def set_text(self, text: str, path: Path | None = None) -> None:
        """Show ``text`` as the protocol; ``path``: its file, whose folder becomes the base."""
        self.path = path
        if path is not None:
            self.base = path.resolve().parent
        self.name.setText(str(path) if path is not None else "(new protocol)")
        self.text.setPlainText(text)
        self.messages.clear()

    def _data(self) -> dict[str, Any] | None:
        try:
            data = yaml.safe_load(self.text.toPlainText())
        except yaml.YAMLError:
            return None
        return data if isinstance(data, dict) else None

    def _text_to_form(self) -> None:
        data = self._data()
        if data is not None:
            self.form.load(data)

    def _form_to_text(self) -> None:
        data = self._data()
        if data is None and self.text.toPlainText().strip():
            # never replace text the form cannot read (mid-edit YAML) with the form alone
            self.show_messages(["the protocol text is not valid YAML: fix it before using "
                                "the form"])
            return
        text = yaml.safe_dump(self.form.apply(data or {}), sort_keys=False, allow_unicode=True)
        self.text.blockSignals(True)
        cursor = self.text.textCursor()  # one undoable edit (Ctrl-Z brings the text back)
        cursor.select(cursor.SelectionType.Document)
        cursor.insertText(text)
        self.text.blockSignals(False)

    # -- file
    def open(self, path: Path | None = None) -> bool:
        """Load a protocol file (``None``: ask for one); ``False`` if none was read."""
        if path is None:
            name, _ = QFileDialog.getOpenFileName(self, "Open protocol", str(self.base),
                                                  "Protocols (*.yaml *.yml)")
            if not name:
                return False
            path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.show_messages([f"{path}: {exc}"])
            return False
        self.set_text(text, path)
        return True

    def save(self, path: Path | None = None) -> bool:
        """Write the text to ``path`` (``None``: ask where); ``False`` if nothing was written."""
        if path is None:
            start = str(self.path or self.base / "protocol.yaml")
            name, _ = QFileDialog.getSaveFileName(self, "Save protocol", start,
                                                  "Protocols (*.yaml *.yml)")
            if not name:
                return False
            path = Path(name)
        try:
            path.write_text(self.text.toPlainText(), encoding="utf-8")
        except OSError as exc:
            self.show_messages([f"{path}: {exc}"])
            return False
        self.path, self.base = path, path.resolve().parent
        self.name.setText(str(path))
        return True

    # -- checking and running
    def check(self) -> Protocol | None:
        """Return the protocol when it checks clean; else ``None``, its located messages shown."""
        name = str(self.path) if self.path is not None else "<editor>"
        try:
            protocol = protocol_from_text(self.text.toPlainText(), name, base=self.base)
        except ConfigError as exc:
            self.show_messages(exc.messages)
            return None
        self.show_messages([])
        return protocol

    def run(self) -> None:
        """Emit ``run_requested`` with the protocol if it checks clean."""
        protocol = self.check()
        if protocol is not None:
            self.run_requested.emit(protocol)

    def show_messages(self, messages: list[str]) -> None:
        """List ``messages`` (none: "protocol OK")."""
        self.messages.clear()
        if not messages:
            self.messages.addItem("protocol OK")
            return
        for message in messages:
            self.messages.addItem(QListWidgetItem(message))

    def message_texts(self) -> list[str]:
        """Return the texts of the listed messages."""
        items = (self.messages.item(i) for i in range(self.messages.count()))
        return [item.text() for item in items if item is not None]

    def set_running(self, running: bool) -> None:
        """Enable Stop while a protocol runs, Run otherwise."""
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _go_to(self, item: QListWidgetItem) -> None:
        match = _LOCATION.search(item.text())
        if match is None:
            return
        line = int(match.group(1))
        document = self.text.document()
        if document is None:
            return
        block = document.findBlockByLineNumber(line - 1)
        cursor = QTextCursor(block)
        cursor.movePosition(QTextCursor.MoveOperation.Right,
                            QTextCursor.MoveMode.MoveAnchor, int(match.group(2)) - 1)
        self.text.setTextCursor(cursor)
        self.text.setFocus()


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
