"""The live dose advisor.

It shows the newest raw SIM set's photon count and which reconstruction the evaluation matrix
trusts at that dose (:class:`inference.evaluation.dose_advisor.DoseAdvisor`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel

if TYPE_CHECKING:
    from hardware.frameset import FrameSet

__all__ = ["DosePanel"]

ALL_STRUCTURES = "all structures"


class DosePanel(QGroupBox):
    """Structure chooser and advice line.

    :meth:`judge` is called on a slow timer (cheap: a smoothing, an Otsu threshold, an
    interpolation).
    """

    def __init__(self, advisor: Any = None, camera: Any = None) -> None:
        super().__init__("Dose advisor")
        self.advisor = advisor
        self.structure = QComboBox()
        self.advice = QLabel("no raw SIM set yet")
        self.advice.setWordWrap(True)
        self.last_advice: Any = None  # the newest DoseAdvice
        self._judged: FrameSet | None = None
        if advisor is None:
            try:
                from inference.evaluation.dose_advisor import DoseAdvisor

                self.advisor = DoseAdvisor(camera=camera)
            except (OSError, ValueError) as exc:
                self.advice.setText(f"unavailable: {exc}")
        if self.advisor is not None:
            self.structure.addItems([ALL_STRUCTURES, *self.advisor.structures])
            if "microtubules" in self.advisor.structures:
                self.structure.setCurrentText("microtubules")
        self.structure.setEnabled(self.advisor is not None)
        self.structure.currentTextChanged.connect(lambda _: self._rejudge())
        form = QFormLayout(self)
        form.addRow("structure", self.structure)
        form.addRow(self.advice)

    def chosen_structure(self) -> str | None:
        """Return the structure chosen (``None``: all structures, or no advisor)."""
        text = self.structure.currentText()
        return None if text in ("", ALL_STRUCTURES) else text

    def judge(self, frame_set: FrameSet | None) -> None:
        """Advice on ``frame_set`` if it is a new 9-frame linear SIM set."""
        if self.advisor is None or frame_set is None or frame_set is self._judged:
            return
        self._judged = frame_set
        if frame_set.n_frames != 9:
            self.last_advice = None
            self.advice.setText(f"needs 9-frame linear SIM sets (this one has "
                                f"{frame_set.n_frames} frames)")
            return
        try:
            self.last_advice = self.advisor.advise(frame_set.frames, self.chosen_structure())
        except ValueError as exc:
            self.last_advice = None
            self.advice.setText(f"no advice: {exc}")
            return
        self.advice.setText(self.last_advice.message)

    def _rejudge(self) -> None:
        frame_set, self._judged = self._judged, None
        self.judge(frame_set)
