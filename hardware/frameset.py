"""A complete set of raw frames as it leaves the SIM engine, with per-frame metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FrameSet"]


@dataclass
class FrameSet:
    """One time point × channel × position: 9 or 25 SIM frames, or one wide-field frame."""

    t: int
    channel: str
    position: int
    line_nm: int
    #: ``(n, h, w)`` uint16, orientation-major for SIM
    frames: np.ndarray
    #: pattern property value of each frame (``"WF"``-like for uniform illumination)
    patterns: tuple[str, ...]
    #: per frame, ms since the run started (camera timestamps where the camera gives them)
    timestamps_ms: np.ndarray
    exposure_ms: float
    #: laser powers (mW) in effect for this set, per line
    laser_powers_mw: dict[int, float]
    #: whether the camera acquired the set as one hardware-triggered sequence
    hardware_sequenced: bool
    #: what the camera reported for each frame (empty dicts for software snaps)
    camera_metadata: list[dict[str, str]] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        """Number of frames in the set: 9 or 25 for SIM, 1 for wide-field."""
        return int(self.frames.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of each frame."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    def widefield(self) -> np.ndarray:
        """Return the wide-field image: the mean of the set, float32."""
        return np.asarray(self.frames.mean(axis=0, dtype=np.float32))
