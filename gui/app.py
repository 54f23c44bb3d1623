"""Start the GUI: a Qt application, the microscope, the main window (and the screenshot mode).

The QApplication exists before the microscope's core, so the core's device events reach the
widgets as queued Qt signals on the GUI thread.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["GuiOptions", "launch", "open_window", "save_screenshot", "wait_for"]

#: the demo's camera ROI on a machine without a CUDA GPU (as ``livesr demo``)
DEMO_CPU_ROI = 256


@dataclass(frozen=True)
class GuiOptions:
    """The ``livesr gui`` options: microscope, demo, ROI, protocol to open, screenshot."""

    config: str = "demo"
    settings: Path | None = None
    demo: bool = False
    roi: int | None = None
    protocol: Path | None = None
    screenshot: Path | None = None
    frames: int = 27


def application() -> Any:
    """Return the running QApplication, or a new one."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    return app if app is not None else QApplication(sys.argv[:1] or ["livesr"])


def open_window(scope: Any, options: GuiOptions) -> Any:
    """Open the main window on ``scope``; ``--demo`` chooses TIRF-SIM with the bundled weights."""
    from acquisition.demo import bundled_weights
    from gui.window import MainWindow

    weights = bundled_weights()
    window = MainWindow(scope, weights, config_name=options.config)
    if options.demo:
        window.acquire.mode.setCurrentText("tirf-sim")
        chosen = weights.get("sim") or weights.get("sisr")
        if chosen is not None:
            window.reconstruction.set_choice("dfcan", chosen, "auto")
        from acquisition.demo import demo_protocol

        protocol = demo_protocol(options.roi, None, weights)
        window.editor.set_text(protocol.source_text())
    if options.protocol is not None:
        window.editor.open(options.protocol)
    return window


def launch(options: GuiOptions) -> int:
    """Run the GUI until its window closes (or until the screenshot is saved)."""
    from gui.crash_guard import install_excepthook
    from hardware.microscope import Microscope

    app = application()
    restore_hook = install_excepthook()
    roi = options.roi
    if roi is None and options.demo and not _cuda():
        roi = DEMO_CPU_ROI
        options = GuiOptions(**{**options.__dict__, "roi": roi})
    scope = Microscope.open(options.config, options.settings)
    window: Any = None
    try:
        if roi:
            scope.camera.centred_roi(roi)
        window = open_window(scope, options)
        window.show()
        if options.screenshot is None:
            return int(app.exec())
        return save_screenshot(window, options.screenshot, options.frames)
    finally:
        _finish_session(window)
        scope.close()
        restore_hook()


def _finish_session(window: Any) -> None:
    """Stop a session that outlived the window and wait for it to end.

    It ends (a protocol finishes its files' metadata) before the microscope closes under it.
    """
    session = None if window is None else window.session
    if session is None:
        return
    session.stop()
    if not session.wait(5):
        print("waiting for the acquisition to end (its files are being finished)…",
              file=sys.stderr)
        session.wait()


def save_screenshot(window: Any, path: Path, frames: int, timeout_s: float = 600.0) -> int:
    """Acquire ``frames`` raw frames live, wait for the last SR image, save the window."""
    per_set = window.live_protocol().frames_per_set
    if not window.start_live(count=math.ceil(frames / per_set)):
        raise RuntimeError(f"live did not start: {window.status.text()}")
    session = window.session
    if not wait_for(lambda: window.session is None, timeout_s):
        window.close()  # stops the acquisition, lasers off
        raise TimeoutError(f"the acquisition did not finish in {timeout_s:.0f} s")
    if session.error is not None:
        raise RuntimeError(f"the acquisition failed: {session.error}")
    window.refresh_display()
    window.views.auto_contrast()
    window.views.update_histograms()
    window.refresh_counters()
    wait_for(lambda: False, 0.3)  # let the window paint
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"{session.frames_acquired} raw frames, {window.sr_displayed} SR image(s) shown; "
          f"screenshot: {path}")
    window.close()
    return 0


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Run the Qt event loop until ``condition()`` holds (True) or ``timeout_s`` passes."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    met = condition()
    if met:
        return True

    def poll() -> None:
        nonlocal met
        met = condition()
        if met or time.monotonic() > deadline:
            loop.quit()

    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(poll)
    timer.start()
    loop.exec()
    timer.stop()
    return met


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False
