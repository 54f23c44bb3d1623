"""The backend over pycromanager: a running (Java) Micro-Manager's core over its ZMQ bridge.

pycromanager turns the Java ``CMMCore`` API into snake_case Python calls (``setProperty`` →
``set_property``). Java return types arrive as bridge objects: a ``StrVector`` answers ``size()``
and ``get(i)``, a ``TaggedImage`` carries ``pix`` (the pixels, flat) and ``tags`` (a dict), a
``Rectangle`` has ``x``, ``y``, ``width`` and ``height``. This module converts them to plain
Python. pycromanager is imported only when no core is given (``pip install "livesr[pycromanager]"``
and Micro-Manager running with its server on port 4827).

Hardware-sequenced acquisition through pycromanager is not offered: its Python acquisition
engine raises "Property sequences not yet implemented". The roles work; sets are software-stepped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from hardware.backend import device_call

__all__ = ["PycromanagerBackend"]

T = TypeVar("T")


def _strings(java_vector: Any) -> list[str]:
    """A Java ``StrVector`` (``size``/``get``) or any iterable, as a list of str."""
    if hasattr(java_vector, "size") and hasattr(java_vector, "get"):
        return [str(java_vector.get(i)) for i in range(int(java_vector.size()))]
    return [str(v) for v in java_vector]


class PycromanagerBackend:
    """A Micro-Manager core reached through pycromanager's bridge."""

    name = "pycromanager"

    def __init__(self, core: Any = None, str_vector: Callable[[Sequence[str]], Any] | None = None,
                 port: int = 4827, config_name: str | None = None) -> None:
        if core is None:
            try:
                from pycromanager import Core
            except ImportError as exc:
                raise ImportError('the pycromanager backend needs pycromanager: '
                                  'pip install "livesr[pycromanager]"') from exc
            core = Core(port=port)
        self.core = core
        self._str_vector = str_vector or _java_str_vector
        # the Java core does not report which .cfg it loaded; messages use this name
        self._config_name = config_name or f"the configuration loaded in Micro-Manager ({port})"

    def _call(self, device: str, what: str, fn: Callable[..., T], *args: Any) -> T:
        with device_call(device, what):
            return fn(*args)

    def config_file(self) -> str:
        return self._config_name

    def loaded_devices(self) -> list[str]:
        return _strings(self.core.get_loaded_devices())

    def property_names(self, device: str) -> list[str]:
        return _strings(self.core.get_device_property_names(device))

    def get_property(self, device: str, prop: str) -> str:
        return str(self._call(device, f"reading {prop}", self.core.get_property, device, prop))

    def set_property(self, device: str, prop: str, value: str | float) -> None:
        self._call(device, f"setting {prop} to {value}", self.core.set_property, device, prop,
                   value)

    def property_limits(self, device: str, prop: str) -> tuple[float, float] | None:
        if not self.core.has_property_limits(device, prop):
            return None
        return (float(self.core.get_property_lower_limit(device, prop)),
                float(self.core.get_property_upper_limit(device, prop)))

    def allowed_values(self, device: str, prop: str) -> list[str]:
        return _strings(self.core.get_allowed_property_values(device, prop))

    def is_shutter(self, device: str) -> bool:
        # a Java DeviceType enum over the bridge; its string form ends with the type's name
        return str(self.core.get_device_type(device)).endswith("ShutterDevice")

    def set_shutter_open(self, device: str, is_open: bool) -> None:
        what = "opening" if is_open else "closing"
        self._call(device, what, self.core.set_shutter_open, device, bool(is_open))

    def get_shutter_open(self, device: str) -> bool:
        return bool(self._call(device, "reading its state", self.core.get_shutter_open, device))

    def camera_device(self) -> str:
        return str(self.core.get_camera_device())

    def set_camera_device(self, device: str) -> None:
        self._call(device, "making it the core camera", self.core.set_camera_device, device)

    def get_exposure(self) -> float:
        return float(self.core.get_exposure())

    def set_exposure(self, ms: float) -> None:
        self._call(self.camera_device(), f"setting exposure {ms} ms", self.core.set_exposure,
                   float(ms))

    def get_roi(self) -> tuple[int, int, int, int]:
        rect = self.core.get_roi()
        return int(rect.x), int(rect.y), int(rect.width), int(rect.height)

    def set_roi(self, x: int, y: int, width: int, height: int) -> None:
        self._call(self.camera_device(), f"setting ROI {(x, y, width, height)}",
                   self.core.set_roi, x, y, width, height)

    def clear_roi(self) -> None:
        self._call(self.camera_device(), "clearing the ROI", self.core.clear_roi)

    def snap(self) -> np.ndarray:
        camera = self.camera_device()
        self._call(camera, "snapping an image", self.core.snap_image)
        tagged = self._call(camera, "reading the image", self.core.get_tagged_image)
        return _pixels(tagged)

    def start_sequence(self, n_images: int) -> None:
        self._call(self.camera_device(), f"starting a sequence of {n_images}",
                   self.core.start_sequence_acquisition, n_images, 0.0, True)

    def stop_sequence(self) -> None:
        self._call(self.camera_device(), "stopping the sequence",
                   self.core.stop_sequence_acquisition)

    def is_sequence_running(self) -> bool:
        return bool(self.core.is_sequence_running())

    def remaining_images(self) -> int:
        return int(self.core.get_remaining_image_count())

    def pop_image(self) -> tuple[np.ndarray, dict[str, str]]:
        tagged = self._call(self.camera_device(), "reading the buffer",
                            self.core.pop_next_tagged_image)
        return _pixels(tagged), {str(k): str(v) for k, v in dict(tagged.tags).items()}

    def buffer_overflowed(self) -> bool:
        return bool(self.core.is_buffer_overflowed())

    def is_sequenceable(self, device: str, prop: str) -> bool:
        return bool(self.core.is_property_sequenceable(device, prop))

    def sequence_max_length(self, device: str, prop: str) -> int:
        return int(self.core.get_property_sequence_max_length(device, prop))

    def load_property_sequence(self, device: str, prop: str, values: Sequence[str]) -> None:
        vector = self._str_vector([str(v) for v in values])
        self._call(device, f"loading a {prop} sequence", self.core.load_property_sequence,
                   device, prop, vector)

    def start_property_sequence(self, device: str, prop: str) -> None:
        self._call(device, f"starting the {prop} sequence", self.core.start_property_sequence,
                   device, prop)

    def stop_property_sequence(self, device: str, prop: str) -> None:
        self._call(device, f"stopping the {prop} sequence", self.core.stop_property_sequence,
                   device, prop)

    def pixel_size_um(self) -> float:
        return float(self.core.get_pixel_size_um())

    def config_presets(self, group: str) -> list[str]:
        if not self.core.is_group_defined(group):
            return []
        return _strings(self.core.get_available_configs(group))

    def set_config(self, group: str, preset: str) -> None:
        self._call(f"{group}/{preset}", "applying the preset", self.core.set_config, group, preset)

    def release(self) -> None:
        """Stop acquisition and close every shutter; the Java core keeps its devices."""
        if self.core.is_sequence_running():
            self.core.stop_sequence_acquisition()
        errors = []
        for device in self.loaded_devices():
            try:
                if self.is_shutter(device):
                    self.core.set_shutter_open(device, False)
            except Exception as exc:
                errors.append(f"{device}: {exc}")
        if errors:
            raise RuntimeError("could not close every shutter: " + "; ".join(errors))


def _pixels(tagged: Any) -> np.ndarray:
    """The image of a ``TaggedImage`` (flat ``pix`` reshaped by its Height and Width tags)."""
    tags = dict(tagged.tags)
    return np.asarray(tagged.pix).reshape(int(tags["Height"]), int(tags["Width"]))


def _java_str_vector(values: Sequence[str]) -> Any:
    """A Java ``mmcorej.StrVector`` holding ``values``, built over the bridge."""
    from pycromanager import JavaObject

    vector = JavaObject("mmcorej.StrVector")
    for value in values:
        vector.add(value)
    return vector
