"""The Micro-Manager operations that LiveSR's roles need, over one of two backends.

:class:`Backend` is the interface; :class:`PymmcoreBackend` speaks to a pymmcore-plus core
(``CMMCorePlus`` or ``UniMMCore``: C++ adapters and Python devices through one code path). The
pycromanager backend lives in :mod:`hardware.pycromanager_backend`. Every failing call raises a
:class:`DeviceError` that names the device.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

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

    def config_file(self) -> str:
        """Return the path of the loaded ``.cfg`` (or a description of it)."""

    def loaded_devices(self) -> list[str]:
        """Return the labels of the loaded devices."""

    def property_names(self, device: str) -> list[str]:
        """Return the property names of ``device``."""

    def get_property(self, device: str, prop: str) -> str:
        """Read property ``prop`` of ``device``."""

    def set_property(self, device: str, prop: str, value: str | float) -> None:
        """Set property ``prop`` of ``device`` to ``value``."""

    def property_limits(self, device: str, prop: str) -> tuple[float, float] | None:
        """Return ``(low, high)`` of a numeric property, or ``None`` when it has no limits."""

    def allowed_values(self, device: str, prop: str) -> list[str]:
        """Return the values ``prop`` allows (empty when any value goes)."""

    def is_shutter(self, device: str) -> bool:
        """Tell whether ``device`` is a shutter device."""

    def set_shutter_open(self, device: str, is_open: bool) -> None:
        """Open or close shutter ``device``."""

    def get_shutter_open(self, device: str) -> bool:
        """Tell whether shutter ``device`` is open."""

    def camera_device(self) -> str:
        """Return the label of the core camera."""

    def set_camera_device(self, device: str) -> None:
        """Make ``device`` the core camera."""

    def get_exposure(self) -> float:
        """Return the core camera's exposure in ms."""

    def set_exposure(self, ms: float) -> None:
        """Set the core camera's exposure in ms."""

    def get_roi(self) -> tuple[int, int, int, int]:
        """Return the camera ROI as ``(x, y, width, height)`` in sensor pixels."""

    def set_roi(self, x: int, y: int, width: int, height: int) -> None:
        """Set the camera ROI."""

    def clear_roi(self) -> None:
        """Reset the camera ROI to the whole sensor."""

    def snap(self) -> np.ndarray:
        """Snap one image and return it."""

    def start_sequence(self, n_images: int) -> None:
        """Start a camera sequence of ``n_images`` into the circular buffer."""

    def stop_sequence(self) -> None:
        """Stop the running camera sequence."""

    def is_sequence_running(self) -> bool:
        """Tell whether a camera sequence is running."""

    def remaining_images(self) -> int:
        """Return how many images wait in the circular buffer."""

    def pop_image(self) -> tuple[np.ndarray, dict[str, str]]:
        """Take the next image and its metadata out of the circular buffer."""

    def buffer_overflowed(self) -> bool:
        """Tell whether the circular buffer overflowed."""

    def is_sequenceable(self, device: str, prop: str) -> bool:
        """Tell whether ``prop`` of ``device`` can run a hardware property sequence."""

    def sequence_max_length(self, device: str, prop: str) -> int:
        """Return the most values a property sequence of ``prop`` holds."""

    def load_property_sequence(self, device: str, prop: str, values: Sequence[str]) -> None:
        """Load ``values`` as the property sequence of ``prop``."""

    def start_property_sequence(self, device: str, prop: str) -> None:
        """Start the loaded property sequence of ``prop``."""

    def stop_property_sequence(self, device: str, prop: str) -> None:
        """Stop the property sequence of ``prop``."""

    def pixel_size_um(self) -> float:
        """Return the pixel size in µm at the sample."""

    def config_presets(self, group: str) -> list[str]:
        """Return the presets of config group ``group`` (empty when it is not defined)."""

    def set_config(self, group: str, preset: str) -> None:
        """Apply preset ``preset`` of config group ``group``."""

    def release(self) -> None:
        """Leave the hardware safe and let go of the core."""


class PymmcoreBackend:
    """A pymmcore-plus core (``CMMCorePlus`` or ``UniMMCore``)."""

    name = "pymmcore-plus"

    def __init__(self, core: Any) -> None:
        self.core = core

    @classmethod
    def from_config(cls, cfg: str = "demo", mm_path: str | None = None) -> PymmcoreBackend:
        """Make a new ``UniMMCore`` with ``cfg`` (a path, or ``demo``) loaded."""
        from hardware.core import create_core

        return cls(create_core(cfg, mm_path))

    def _call(self, device: str, what: str, fn: Callable[..., T], *args: Any) -> T:
        with device_call(device, what):
            return fn(*args)

    def config_file(self) -> str:
        """Return ``systemConfigurationFile()``."""
        return str(self.core.systemConfigurationFile() or "(no configuration)")

    def loaded_devices(self) -> list[str]:
        """Return ``getLoadedDevices()``."""
        return [str(d) for d in self.core.getLoadedDevices()]

    def property_names(self, device: str) -> list[str]:
        """Return ``getDevicePropertyNames(device)``."""
        return [str(p) for p in self.core.getDevicePropertyNames(device)]

    def get_property(self, device: str, prop: str) -> str:
        """Read ``getProperty(device, prop)``."""
        return str(self._call(device, f"reading {prop}", self.core.getProperty, device, prop))

    def set_property(self, device: str, prop: str, value: str | float) -> None:
        """Call ``setProperty(device, prop, value)``."""
        self._call(device, f"setting {prop} to {value}", self.core.setProperty, device, prop,
                   value)

    def property_limits(self, device: str, prop: str) -> tuple[float, float] | None:
        """Return the lower and upper limits, if ``hasPropertyLimits``."""
        if not self.core.hasPropertyLimits(device, prop):
            return None
        return (float(self.core.getPropertyLowerLimit(device, prop)),
                float(self.core.getPropertyUpperLimit(device, prop)))

    def allowed_values(self, device: str, prop: str) -> list[str]:
        """Return ``getAllowedPropertyValues(device, prop)``."""
        return [str(v) for v in self.core.getAllowedPropertyValues(device, prop)]

    def is_shutter(self, device: str) -> bool:
        """Tell whether ``getDeviceType(device)`` is ``DeviceType.Shutter``."""
        from pymmcore_plus import DeviceType

        return bool(self.core.getDeviceType(device) == DeviceType.Shutter)

    def set_shutter_open(self, device: str, is_open: bool) -> None:
        """Call ``setShutterOpen(device, is_open)``."""
        what = "opening" if is_open else "closing"
        self._call(device, what, self.core.setShutterOpen, device, bool(is_open))

    def get_shutter_open(self, device: str) -> bool:
        """Return ``getShutterOpen(device)``."""
        return bool(self._call(device, "reading its state", self.core.getShutterOpen, device))

    def camera_device(self) -> str:
        """Return ``getCameraDevice()``."""
        return str(self.core.getCameraDevice())

    def set_camera_device(self, device: str) -> None:
        """Call ``setCameraDevice(device)``."""
        self._call(device, "making it the core camera", self.core.setCameraDevice, device)

    def get_exposure(self) -> float:
        """Return ``getExposure()``."""
        return float(self.core.getExposure())

    def set_exposure(self, ms: float) -> None:
        """Call ``setExposure(ms)``."""
        self._call(self.camera_device(), f"setting exposure {ms} ms", self.core.setExposure,
                   float(ms))

    def get_roi(self) -> tuple[int, int, int, int]:
        """Return ``getROI()``."""
        x, y, w, h = self.core.getROI()
        return int(x), int(y), int(w), int(h)

    def set_roi(self, x: int, y: int, width: int, height: int) -> None:
        """Call ``setROI(x, y, width, height)``."""
        self._call(self.camera_device(), f"setting ROI {(x, y, width, height)}",
                   self.core.setROI, x, y, width, height)

    def clear_roi(self) -> None:
        """Call ``clearROI()``."""
        self._call(self.camera_device(), "clearing the ROI", self.core.clearROI)

    def snap(self) -> np.ndarray:
        """Call ``snapImage()`` and return ``getImage()``."""
        camera = self.camera_device()
        self._call(camera, "snapping an image", self.core.snapImage)
        return np.asarray(self._call(camera, "reading the image", self.core.getImage))

    def start_sequence(self, n_images: int) -> None:
        """Call ``startSequenceAcquisition(n_images, 0, True)`` (stop on overflow)."""
        self._call(self.camera_device(), f"starting a sequence of {n_images}",
                   self.core.startSequenceAcquisition, n_images, 0.0, True)

    def stop_sequence(self) -> None:
        """Call ``stopSequenceAcquisition()``."""
        self._call(self.camera_device(), "stopping the sequence",
                   self.core.stopSequenceAcquisition)

    def is_sequence_running(self) -> bool:
        """Return ``isSequenceRunning()``."""
        return bool(self.core.isSequenceRunning())

    def remaining_images(self) -> int:
        """Return ``getRemainingImageCount()``."""
        return int(self.core.getRemainingImageCount())

    def pop_image(self) -> tuple[np.ndarray, dict[str, str]]:
        """Return ``popNextImageAndMD()``, the metadata as a dict of str."""
        img, meta = self._call(self.camera_device(), "reading the buffer",
                               self.core.popNextImageAndMD)
        return np.asarray(img), {str(k): str(v) for k, v in dict(meta).items()}

    def buffer_overflowed(self) -> bool:
        """Return ``isBufferOverflowed()``."""
        return bool(self.core.isBufferOverflowed())

    def is_sequenceable(self, device: str, prop: str) -> bool:
        """Return ``isPropertySequenceable(device, prop)``."""
        return bool(self.core.isPropertySequenceable(device, prop))

    def sequence_max_length(self, device: str, prop: str) -> int:
        """Return ``getPropertySequenceMaxLength(device, prop)``."""
        return int(self.core.getPropertySequenceMaxLength(device, prop))

    def load_property_sequence(self, device: str, prop: str, values: Sequence[str]) -> None:
        """Call ``loadPropertySequence(device, prop, values)``."""
        self._call(device, f"loading a {prop} sequence", self.core.loadPropertySequence, device,
                   prop, [str(v) for v in values])

    def start_property_sequence(self, device: str, prop: str) -> None:
        """Call ``startPropertySequence(device, prop)``."""
        self._call(device, f"starting the {prop} sequence", self.core.startPropertySequence,
                   device, prop)

    def stop_property_sequence(self, device: str, prop: str) -> None:
        """Call ``stopPropertySequence(device, prop)``."""
        self._call(device, f"stopping the {prop} sequence", self.core.stopPropertySequence,
                   device, prop)

    def pixel_size_um(self) -> float:
        """Return ``getPixelSizeUm()``."""
        return float(self.core.getPixelSizeUm())

    def config_presets(self, group: str) -> list[str]:
        """Return ``getAvailableConfigs(group)``, empty if the group is undefined."""
        if not self.core.isGroupDefined(group):
            return []
        return [str(p) for p in self.core.getAvailableConfigs(group)]

    def set_config(self, group: str, preset: str) -> None:
        """Call ``setConfig(group, preset)``."""
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
