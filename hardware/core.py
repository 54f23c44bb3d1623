"""Create a Micro-Manager core (pymmcore-plus UniMMCore) and load a ``.cfg`` into it.

``UniMMCore`` serves C++ device adapters and Python devices (``#py`` lines) through one API.
The name ``demo`` means the simulated microscope's configuration shipped with LiveSR.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from pymmcore_plus.experimental.unicore import UniMMCore

DEMO = "demo"


def resolve_config(cfg: str | Path) -> Path:
    """The path of a ``.cfg``: ``demo`` is the bundled simulated microscope."""
    if str(cfg) == DEMO:
        with resources.as_file(resources.files("simulators") / "demo.cfg") as path:
            return Path(path)
    path = Path(cfg).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Micro-Manager configuration not found: {path}")
    return path.resolve()


def create_core(cfg: str | Path | None = DEMO, mm_path: str | Path | None = None) -> UniMMCore:
    """A core with ``cfg`` loaded (``None`` loads nothing).

    ``mm_path`` is the Micro-Manager installation holding C++ adapters; without one (only Python
    devices), an empty folder stands in so that the core starts.
    """
    if mm_path is None:
        mm_path = os.environ.get("MICROMANAGER_PATH") or _empty_adapter_dir()
    core = UniMMCore(mm_path=str(mm_path))
    if cfg is not None:
        path = resolve_config(cfg)
        try:
            core.loadSystemConfiguration(str(path))
        except Exception:
            release_core(core)
            raise
    return core


def release_core(core: UniMMCore) -> None:
    """Stop acquisition and unload every device (a clean exit for the C++ core)."""
    if core.isSequenceRunning():
        core.stopSequenceAcquisition()
    core.unloadAllDevices()


def _empty_adapter_dir() -> str:
    path = Path(tempfile.gettempdir()) / "livesr-no-adapters"
    path.mkdir(exist_ok=True)
    return str(path)
