"""The Micro-Manager operations that LiveSR's roles need, over one of two backends.

:class:`Backend` is the interface; :class:`PymmcoreBackend` speaks to a pymmcore-plus core
(``CMMCorePlus`` or ``UniMMCore``: C++ adapters and Python devices through one code path). The
pycromanager backend lives in :mod:`hardware.pycromanager_backend`. Every failing call raises a
:class:`DeviceError` that names the device.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

__all__ = ["Backend", "DeviceError", "PymmcoreBackend", "device_call"]

T = TypeVar("T")


class DeviceError(RuntimeError):
    """A device that refused, raised, stalled or failed; ``device`` is its label."""

    def __init__(self, device: str, message: str) -> None:
        self.device = device
        super().__init__(f"device {device!r}: {message}")


@contextmanager
def device_call(device: str, what: str) -> Iterator[None]:
    """Turn any error inside into a :class:`DeviceError` naming ``device`` and ``what``."""
    try:
        yield
    except DeviceError:
        raise
    except Exception as exc:
        raise DeviceError(device, f"{what} failed: {exc}") from exc


@runtime_checkable
class Backend(Protocol):
    """What the roles and the SIM engine ask of a Micro-Manager core."""

    name: str

    def config_file(self) -> str: ...
    def loaded_devices(self) -> list[str]: ...
    def property_names(self, device: str) -> list[str]: ...
    def get_property(self, device: str, prop: str) -> str: ...
    def set_property(self, device: str, prop: str, value: str | float) -> None: ...
    def property_limits(self, device: str, prop: str) -> tuple[float, float] | None: ...
    def allowed_values(self, device: str, prop: str) -> list[str]: ...
    def is_shutter(self, device: str) -> bool: ...
    def set_shutter_open(self, device: str, is_open: bool) -> None: ...
    def get_shutter_open(self, device: str) -> bool: ...
    def camera_device(self) -> str: ...
    def set_camera_device(self, device: str) -> None: ...
    def get_exposure(self) -> float: ...
    def set_exposure(self, ms: float) -> None: ...
    def get_roi(self) -> tuple[int, int, int, int]: ...
    def set_roi(self, x: int, y: int, width: int, height: int) -> None: ...
    def clear_roi(self) -> None: ...
    def snap(self) -> np.ndarray: ...
    def start_sequence(self, n_images: int) -> None: ...
    def stop_sequence(self) -> None: ...
    def is_sequence_running(self) -> bool: ...
    def remaining_images(self) -> int: ...
    def pop_image(self) -> tuple[np.ndarray, dict[str, str]]: ...
    def buffer_overflowed(self) -> bool: ...
    def is_sequenceable(self, device: str, prop: str) -> bool: ...
    def sequence_max_length(self, device: str, prop: str) -> int: ...
    def load_property_sequence(self, device: str, prop: str, values: Sequence[str]) -> None: ...
    def start_property_sequence(self, device: str, prop: str) -> None: ...
    def stop_property_sequence(self, device: str, prop: str) -> None: ...
    def pixel_size_um(self) -> float: ...
    def config_presets(self, group: str) -> list[str]: ...
    def set_config(self, group: str, preset: str) -> None: ...
    def release(self) -> None: ...


class PymmcoreBackend:
    """A pymmcore-plus core (``CMMCorePlus`` or ``UniMMCore``)."""

    name = "pymmcore-plus"

    def __init__(self, core: Any) -> None:
        self.core = core

    @classmethod
    def from_config(cls, cfg: str = "demo", mm_path: str | None = None) -> PymmcoreBackend:
        """A new ``UniMMCore`` with ``cfg`` (a path, or ``demo``) loaded."""
        from hardware.core import create_core

        return cls(create_core(cfg, mm_path))

    def _call(self, device: str, what: str, fn: Callable[..., T], *args: Any) -> T:
        with device_call(device, what):
            return fn(*args)

    def config_file(self) -> str:
        return str(self.core.systemConfigurationFile() or "(no configuration)")

    def loaded_devices(self) -> list[str]:
        return [str(d) for d in self.core.getLoadedDevices()]

    def property_names(self, device: str) -> list[str]:
        return [str(p) for p in self.core.getDevicePropertyNames(device)]

    def get_property(self, device: str, prop: str) -> str:
        return str(self._call(device, f"reading {prop}", self.core.getProperty, device, prop))

    def set_property(self, device: str, prop: str, value: str | float) -> None:
        self._call(device, f"setting {prop} to {value}", self.core.setProperty, device, prop,
                   value)

    def property_limits(self, device: str, prop: str) -> tuple[float, float] | None:
        if not self.core.hasPropertyLimits(device, prop):
            return None
        return (float(self.core.getPropertyLowerLimit(device, prop)),
                float(self.core.getPropertyUpperLimit(device, prop)))

    def allowed_values(self, device: str, prop: str) -> list[str]:
        return [str(v) for v in self.core.getAllowedPropertyValues(device, prop)]

    def is_shutter(self, device: str) -> bool:
        from pymmcore_plus import DeviceType

        return bool(self.core.getDeviceType(device) == DeviceType.Shutter)

    def set_shutter_open(self, device: str, is_open: bool) -> None:
        what = "opening" if is_open else "closing"
        self._call(device, what, self.core.setShutterOpen, device, bool(is_open))

    def get_shutter_open(self, device: str) -> bool:
        return bool(self._call(device, "reading its state", self.core.getShutterOpen, device))

    def camera_device(self) -> str:
        return str(self.core.getCameraDevice())

    def set_camera_device(self, device: str) -> None:
        self._call(device, "making it the core camera", self.core.setCameraDevice, device)

    def get_exposure(self) -> float:
        return float(self.core.getExposure())

    def set_exposure(self, ms: float) -> None:
        self._call(self.camera_device(), f"setting exposure {ms} ms", self.core.setExposure,
                   float(ms))

    def get_roi(self) -> tuple[int, int, int, int]:
        x, y, w, h = self.core.getROI()
        return int(x), int(y), int(w), int(h)

    def set_roi(self, x: int, y: int, width: int, height: int) -> None:
        self._call(self.camera_device(), f"setting ROI {(x, y, width, height)}",
                   self.core.setROI, x, y, width, height)

    def clear_roi(self) -> None:
        self._call(self.camera_device(), "clearing the ROI", self.core.clearROI)

    def snap(self) -> np.ndarray:
        camera = self.camera_device()
        self._call(camera, "snapping an image", self.core.snapImage)
        return np.asarray(self._call(camera, "reading the image", self.core.getImage))

    def start_sequence(self, n_images: int) -> None:
        self._call(self.camera_device(), f"starting a sequence of {n_images}",
                   self.core.startSequenceAcquisition, n_images, 0.0, True)

    def stop_sequence(self) -> None:
        self._call(self.camera_device(), "stopping the sequence",
                   self.core.stopSequenceAcquisition)

    def is_sequence_running(self) -> bool:
        return bool(self.core.isSequenceRunning())

    def remaining_images(self) -> int:
        return int(self.core.getRemainingImageCount())

    def pop_image(self) -> tuple[np.ndarray, dict[str, str]]:
        img, meta = self._call(self.camera_device(), "reading the buffer",
                               self.core.popNextImageAndMD)
        return np.asarray(img), {str(k): str(v) for k, v in dict(meta).items()}

    def buffer_overflowed(self) -> bool:
        return bool(self.core.isBufferOverflowed())

    def is_sequenceable(self, device: str, prop: str) -> bool:
        return bool(self.core.isPropertySequenceable(device, prop))

    def sequence_max_length(self, device: str, prop: str) -> int:
        return int(self.core.getPropertySequenceMaxLength(device, prop))

    def load_property_sequence(self, device: str, prop: str, values: Sequence[str]) -> None:
        self._call(device, f"loading a {prop} sequence", self.core.loadPropertySequence, device,
                   prop, [str(v) for v in values])

    def start_property_sequence(self, device: str, prop: str) -> None:
        self._call(device, f"starting the {prop} sequence", self.core.startPropertySequence,
                   device, prop)

    def stop_property_sequence(self, device: str, prop: str) -> None:
        self._call(device, f"stopping the {prop} sequence", self.core.stopPropertySequence,
                   device, prop)

    def pixel_size_um(self) -> float:
        return float(self.core.getPixelSizeUm())

    def config_presets(self, group: str) -> list[str]:
        if not self.core.isGroupDefined(group):
            return []
        return [str(p) for p in self.core.getAvailableConfigs(group)]

    def set_config(self, group: str, preset: str) -> None:
        self._call(f"{group}/{preset}", "applying the preset", self.core.setConfig, group, preset)

    def release(self) -> None:
        """Stop acquisition, close every shutter, unload the devices, and drop the core.

        The core must be destroyed now: one that lives until interpreter exit after a
        hardware-sequenced acquisition can abort the process.
        """
        from hardware.core import release_core

        if self.core is None:
            return
        try:
            release_core(self.core)
        finally:
            self.core = None
            gc.collect()  # the core sits in reference cycles (its MDA runner, signals)
