"""The dose advisor and the bleaching record during a run.

The newest raw set of each channel is kept (cheap, on the acquisition thread) and, when the run
ends, each channel's first and last sets are judged by
:class:`inference.evaluation.dose_advisor.DoseAdvisor` (the result goes into
``RunResult.dose_advice`` and ``run.json``). :class:`BleachingLog` keeps the bleached fraction
a camera reports with its frames (the simulated microscope does; ``RunResult.bleaching``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np

    from acquisition.protocol import Protocol
    from hardware.frameset import FrameSet
    from hardware.settings import CameraCalibration

__all__ = ["BLEACHED_KEY", "BleachingLog", "DoseMonitor"]

#: camera metadata key of the fraction of a line's fluorophores bleached by the end of a frame
BLEACHED_KEY = "LiveSR-BleachedFraction-{line}"


class DoseMonitor:
    """Collects each channel's first and newest raw set; :meth:`advice` judges them.

    Its :attr:`bleaching` log keeps what the camera reports of the sample's bleaching.
    """

    def __init__(self, structures: Mapping[str, str | None], advisor: Any = None,
                 note: str | None = None) -> None:
        self.structures = structures
        self.advisor = advisor
        self.note = note
        self._first: dict[str, np.ndarray] = {}
        self._last: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.bleaching = BleachingLog()

    @classmethod
    def for_protocol(cls, protocol: Protocol,
                     camera: CameraCalibration | None = None) -> DoseMonitor:
        """Build a monitor for the protocol's channels.

        ``camera``: the camera's calibration from the microscope settings (``None``: photon
        counts are estimated with the simulated camera's defaults, and the advice says so).
        Without an advice to give (a mode other than linear SIM, or no evaluation matrix) it
        only says why.
        """
        structures = {c.preset: c.structure for c in protocol.channels}
        if protocol.frames_per_set != 9:
            return cls(structures, note=f"no dose advice in {protocol.mode} mode (the "
                                        "evaluation matrix is of 9-frame linear SIM)")
        from inference.evaluation.dose_advisor import DoseAdvisor

        try:
            return cls(structures, DoseAdvisor(camera=camera))
        except (OSError, ValueError) as exc:
            return cls(structures, note=f"no dose advice: {exc}")

    def on_set(self, frame_set: FrameSet) -> None:
        """Slot for ``set_ready``: keeps references only."""
        self.bleaching.on_set(frame_set)
        if self.advisor is None:
            return
        with self._lock:
            self._first.setdefault(frame_set.channel, frame_set.frames)
            self._last[frame_set.channel] = frame_set.frames

    def advice(self) -> dict[str, Any]:
        """Per channel: the advice on its first and last set (or why there is none)."""
        if self.advisor is None:
            return {"note": self.note} if self.note else {}
        with self._lock:
            first, last = dict(self._first), dict(self._last)
        found: dict[str, Any] = {}
        for channel, frames in last.items():
            structure = self.structures.get(channel)
            try:
                found[channel] = {
                    "first_set": self.advisor.advise(first[channel], structure).to_dict(),
                    "last_set": self.advisor.advise(frames, structure).to_dict(),
                }
            except ValueError as exc:
                found[channel] = {"note": str(exc)}
        return found


class BleachingLog:
    """Per channel, the bleached fraction its camera reported at the end of each set.

    Sets whose frames carry no :data:`BLEACHED_KEY` for the set's line add nothing, so a
    microscope that does not report it leaves the log empty.
    """

    def __init__(self) -> None:
        self._sets: dict[str, dict[str, list[Any]]] = {}
        self._lock = threading.Lock()

    def on_set(self, frame_set: FrameSet) -> None:
        """Slot for ``set_ready``: reads the last frame's metadata only."""
        meta = frame_set.camera_metadata[-1] if frame_set.camera_metadata else {}
        value = meta.get(BLEACHED_KEY.format(line=frame_set.line_nm))
        if value is None:
            return
        with self._lock:
            columns = self._sets.setdefault(
                frame_set.channel, {"t": [], "p": [], "bleached_fraction": []})
            columns["t"].append(frame_set.t)
            columns["p"].append(frame_set.position)
            columns["bleached_fraction"].append(float(value))

    def summary(self) -> dict[str, Any]:
        """JSON-ready: per channel, columns ``t``, ``p`` and ``bleached_fraction`` per set."""
        with self._lock:
            return {channel: {k: list(v) for k, v in columns.items()}
                    for channel, columns in self._sets.items()}
