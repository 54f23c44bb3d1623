"""A stand-in for pycromanager's bridge: the Java core's snake_case API and Java return types.

No Java Micro-Manager can run here, so this object answers as pycromanager's ``Core()`` proxy
would, by forwarding each snake_case call to the camelCase method of a real pymmcore-plus core
(loaded with a real ``.cfg``) and returning what the bridge returns: ``StrVector`` objects with
``size()``/``get(i)``, ``TaggedImage`` with flat ``pix`` and ``tags``, ``Rectangle`` for ROIs,
Java enum names for device types. ``load_property_sequence`` accepts only a ``StrVector``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np


class FakeStrVector:
    """``mmcorej.StrVector`` as the bridge shows it."""

    def __init__(self, values: Sequence[str] = ()) -> None:
        self._values = [str(v) for v in values]

    def size(self) -> int:
        return len(self._values)

    def get(self, i: int) -> str:
        return self._values[i]

    def add(self, value: str) -> None:
        self._values.append(str(value))


@dataclass
class FakeTaggedImage:
    pix: np.ndarray
    tags: dict[str, Any]


@dataclass
class FakeRectangle:
    x: int
    y: int
    width: int
    height: int


_SPECIAL = {"get_roi": "getROI", "set_roi": "setROI", "clear_roi": "clearROI"}
_NOT_IN_JAVA = {"get_system_configuration_file"}  # pymmcore-plus additions the Java core lacks


def _camel(name: str) -> str:
    if name in _SPECIAL:
        return _SPECIAL[name]
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class FakeBridgeCore:
    """pycromanager's ``Core()`` over a real pymmcore-plus core."""

    def __init__(self, core: Any) -> None:
        self._core = core
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name in _NOT_IN_JAVA:
            raise AttributeError(name)
        target = getattr(self._core, _camel(name))
        self.calls.append(name)

        def call(*args: Any) -> Any:
            return _to_java(target(*args))

        return call

    def get_roi(self) -> FakeRectangle:
        x, y, w, h = self._core.getROI()
        return FakeRectangle(x, y, w, h)

    def get_device_type(self, label: str) -> str:
        return str(self._core.getDeviceType(label).name)  # Java: ShutterDevice, ...

    def get_tagged_image(self) -> FakeTaggedImage:
        img = self._core.getImage()
        return FakeTaggedImage(img.ravel().copy(), {"Height": img.shape[0],
                                                    "Width": img.shape[1]})

    def pop_next_tagged_image(self) -> FakeTaggedImage:
        img, meta = self._core.popNextImageAndMD()
        tags = {**dict(meta), "Height": img.shape[0], "Width": img.shape[1]}
        return FakeTaggedImage(img.ravel().copy(), tags)

    def load_property_sequence(self, label: str, prop: str, values: FakeStrVector) -> None:
        if not isinstance(values, FakeStrVector):
            raise TypeError("the Java core takes a StrVector, not " + type(values).__name__)
        self._core.loadPropertySequence(label, prop,
                                        [values.get(i) for i in range(values.size())])


def _to_java(value: Any) -> Any:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return FakeStrVector(value)
    return value
