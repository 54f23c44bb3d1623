"""The backend over pycromanager: a running (Java) Micro-Manager's core over its ZMQ bridge.

pycromanager turns the Java ``CMMCore`` API into snake_case Python calls (``setProperty`` →
``set_property``), and Java return types arrive as bridge objects: a ``StrVector`` answers
``size()`` and ``get(i)``, a ``TaggedImage`` carries ``pix`` (the pixels, flat) and ``tags`` (a
dict), a ``Rectangle`` has ``x``, ``y``, ``width`` and ``height``. :class:`JavaCoreAdapter` turns
that back into the camelCase, plain-Python API of a pymmcore core, so that
:class:`PycromanagerBackend` is the pymmcore-plus backend over the adapter. pycromanager is
imported only when no core is given (``pip install "livesr[pycromanager]"`` and Micro-Manager
running with its server on port 4827).

Hardware-sequenced acquisition through pycromanager is not offered: its Python acquisition
engine raises "Property sequences not yet implemented". The roles work over it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from hardware.backend import PymmcoreBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["JavaCoreAdapter", "PycromanagerBackend"]


def _strings(java_vector: Any) -> list[str]:
    """Turn a Java ``StrVector`` (``size``/``get``) or any iterable into a list of str."""
    if hasattr(java_vector, "size") and hasattr(java_vector, "get"):
        return [str(java_vector.get(i)) for i in range(int(java_vector.size()))]
    return [str(v) for v in java_vector]


def _snake(name: str) -> str:
    """``getROI`` → ``get_roi``, ``setProperty`` → ``set_property`` (pycromanager's rule)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _pixels(tagged: Any) -> np.ndarray:
    """Return the image of a ``TaggedImage`` (flat ``pix`` reshaped by its Height and Width)."""
    tags = dict(tagged.tags)
    return np.asarray(tagged.pix).reshape(int(tags["Height"]), int(tags["Width"]))


class JavaCoreAdapter:
    """The camelCase pymmcore API over pycromanager's snake_case Java core proxy."""

    # methods whose value is a Java StrVector, returned here as a list of str
    _VECTORS = frozenset({"getLoadedDevices", "getDevicePropertyNames",
                          "getAllowedPropertyValues", "getAvailableConfigs"})

    def __init__(self, java_core: Any, str_vector: Callable[[Sequence[str]], Any],
                 config_name: str) -> None:
        self._java, self._str_vector, self._config_name = java_core, str_vector, config_name

    def __getattr__(self, name: str) -> Any:
        """Return the Java core's method ``name`` (snake_case), vectors as lists of str."""
        method = getattr(self._java, _snake(name))
        if name in self._VECTORS:
            return lambda *args: _strings(method(*args))
        return method

    def systemConfigurationFile(self) -> str:
        """Return the configuration name given (the Java core does not report its .cfg)."""
        return self._config_name

    def getROI(self) -> tuple[int, int, int, int]:
        """Return the ROI as ``(x, y, width, height)``, from a Java ``Rectangle``."""
        rect = self._java.get_roi()
        return int(rect.x), int(rect.y), int(rect.width), int(rect.height)

    def getImage(self) -> np.ndarray:
        """Return the snapped image, from a ``TaggedImage``."""
        return _pixels(self._java.get_tagged_image())

    def popNextImageAndMD(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Pop the next image of the buffer, and its tags as metadata."""
        tagged = self._java.pop_next_tagged_image()
        return _pixels(tagged), dict(tagged.tags)

    def loadPropertySequence(self, device: str, prop: str, values: Sequence[str]) -> None:
        """Load ``values`` as a property sequence, passed as a Java ``StrVector``."""
        self._java.load_property_sequence(device, prop, self._str_vector(list(values)))

    def isShutter(self, device: str) -> bool:
        """Tell whether ``device`` is a shutter device."""
        # a Java DeviceType enum over the bridge; its name is e.g. "ShutterDevice"
        return str(self._java.get_device_type(device)).endswith("ShutterDevice")


class PycromanagerBackend(PymmcoreBackend):
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
        name = config_name or f"the configuration loaded in Micro-Manager (port {port})"
        super().__init__(JavaCoreAdapter(core, str_vector or _java_str_vector, name))

    def is_shutter(self, device: str) -> bool:
        """Tell whether ``device`` is a shutter device (from its Java device type)."""
        return bool(self.core.isShutter(device))

    def release(self) -> None:
        """Stop acquisition and close every shutter; the Java core keeps its devices."""
        if self.core is None:
            return
        if self.core.isSequenceRunning():
            self.core.stopSequenceAcquisition()
        errors = []
        for device in self.loaded_devices():
            try:
                if self.is_shutter(device):
                    self.core.setShutterOpen(device, False)
            except Exception as exc:
                errors.append(f"{device}: {exc}")
        self.core = None
        if errors:
            raise RuntimeError("could not close every shutter: " + "; ".join(errors))


def _java_str_vector(values: Sequence[str]) -> Any:
    """Build a Java ``mmcorej.StrVector`` holding ``values`` over the bridge."""
    from pycromanager import JavaObject

    vector = JavaObject("mmcorej.StrVector")
    for value in values:
        vector.add(value)
    return vector
