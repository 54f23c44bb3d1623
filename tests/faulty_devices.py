"""Simulated devices with injected faults, loaded by a ``.cfg`` like any Python device.

Class attributes arm a fault before the core loads the devices; ``reset()`` disarms them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from simulators.mmdevices import SimCamera, SimPattern

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

    import numpy as np
    from numpy.typing import DTypeLike


class FaultyPattern(SimPattern):
    """Raises once more than ``fail_after`` pattern values have been checked (set or loaded)."""

    fail_after: int | None = None
    checked = 0

    def _check(self, state: str) -> str:
        cls = type(self)
        cls.checked += 1
        if cls.fail_after is not None and cls.checked > cls.fail_after:
            raise RuntimeError("pattern generator lost its trigger input")
        return super()._check(state)


class FaultyCamera(SimCamera):
    """After ``fault_after`` frames (counted over all sequences) it either raises or stalls
    until ``release`` is set.
    """

    fault_after: int | None = None
    fault: str = "raise"  # or "stall"
    release = threading.Event()
    frames = 0

    def start_sequence(
        self, n: int | None, get_buffer: Callable[[Sequence[int], DTypeLike], np.ndarray]
    ) -> Iterator[Mapping]:
        cls = type(self)
        for meta in super().start_sequence(n, get_buffer):
            if cls.fault_after is not None and cls.frames >= cls.fault_after:
                if cls.fault == "raise":
                    raise OSError("sensor link lost")
                cls.release.wait(timeout=30)
            cls.frames += 1
            yield meta


def reset() -> None:
    FaultyPattern.fail_after, FaultyPattern.checked = None, 0
    FaultyCamera.fault_after, FaultyCamera.fault, FaultyCamera.frames = None, "raise", 0
    FaultyCamera.release = threading.Event()


def demo_cfg_variant(path: Path, bench: str, sensor: int = 128,
                     classes: Mapping[str, str] | None = None) -> Path:
    """A copy of the demo ``.cfg`` at ``path``: its own bench, a smaller sensor (the sample
    renders in a fraction of the time), and device classes swapped (label -> module.Class).
    """
    from hardware.core import resolve_config

    lines = []
    for line in resolve_config("demo").read_text().splitlines():
        parts = line.split(",")
        if line.startswith("#py pyDevice,"):
            label = parts[1]
            if classes and label in classes:
                module, cls = classes[label].rsplit(".", 1)
                line = f"#py pyDevice,{label},{module},{cls}"
            lines.append(line)
            lines.append(f"#py Property,{label},Bench,{bench}")
            continue
        if line.startswith("#py Property,Camera,SensorSize,"):
            line = f"#py Property,Camera,SensorSize,{sensor}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path
