"""Create a Micro-Manager core (pymmcore-plus UniMMCore) and load a ``.cfg`` into it.

``UniMMCore`` serves C++ device adapters and Python devices (``#py`` lines) through one API.
The name ``demo`` means the simulated microscope's configuration shipped with LiveSR.
"""

from __future__ import annotations

import functools
import os
import tempfile
from importlib import resources
from pathlib import Path

from pymmcore_plus import DeviceType
from pymmcore_plus.experimental.unicore import UniMMCore

DEMO = "demo"


def resolve_config(cfg: str | Path) -> Path:
    """Return the path of a ``.cfg``; ``demo`` is the bundled simulated microscope."""
    if str(cfg) == DEMO:
        # the package ships as plain files (setuptools package-data), never zipped
        path = Path(str(resources.files("simulators").joinpath("demo.cfg")))
        if not path.is_file():
            raise FileNotFoundError(f"the bundled demo configuration is missing: {path}")
        return path
    path = Path(cfg).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Micro-Manager configuration not found: {path}")
    return path.resolve()


def create_core(cfg: str | Path | None = DEMO, mm_path: str | Path | None = None) -> UniMMCore:
    """Create a core with ``cfg`` loaded (``None`` loads nothing).

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


def close_all_shutters(core: UniMMCore) -> None:
    """Close every shutter device: laser emission off, AOTF blanked (each one tried)."""
    errors = []
    for label in core.getLoadedDevicesOfType(DeviceType.Shutter):
        try:
            core.setShutterOpen(label, False)
        except Exception as exc:  # keep closing the others
            errors.append(f"{label}: {exc}")
    if errors:
        raise RuntimeError("could not close every shutter: " + "; ".join(errors))


def release_core(core: UniMMCore) -> None:
    """Stop acquisition, close every shutter and unload every device.

    A clean exit for the C++ core.
    """
    try:
        if core.isSequenceRunning():
            core.stopSequenceAcquisition()
        close_all_shutters(core)
    finally:
        core.unloadAllDevices()


@functools.cache
def _empty_adapter_dir() -> str:
    """Make an empty folder to stand in for a Micro-Manager installation (one per process)."""
    return tempfile.mkdtemp(prefix="livesr-no-adapters-")
