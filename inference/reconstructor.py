"""The one interface every reconstruction method meets: DFCAN on any backend, Wiener-SIM, none.

Acquisition, the streaming predictor and the GUI only see a :class:`Reconstructor`: it takes the
raw frames of one set ``(N, H, W)`` (N = 1 for a wide-field frame, 9 or 25 for a SIM set) and
returns the super-resolved image ``(H·scale, W·scale)`` as float32 in [0, 1].

One is built by name in :func:`inference.registry.build_reconstructor` (a module above this one
and the methods it builds). :class:`DFCANReconstructor` here is the reference PyTorch pipeline
the inference backends are checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from inference.predict.official import predict, resolve_mode

__all__ = ["DFCANReconstructor", "Reconstructor", "check_frames"]


@runtime_checkable
class Reconstructor(Protocol):
    """A reconstruction method with a fixed scale and the raw frames it needs per set."""

    #: short name for logs and metadata, e.g. ``"dfcan-sim"``, ``"wiener-sim"``
    name: str
    #: output pixels per input pixel along each axis
    scale: int
    #: raw frames it needs per set; ``None``: any number (a SISR model averages them to WF)
    frames_per_set: int | None

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """One set ``(N, H, W)`` → float32 ``(H·scale, W·scale)`` in [0, 1]."""
        ...


def check_frames(frames: np.ndarray, frames_per_set: int | None, name: str) -> np.ndarray:
    """``frames`` as an ``(N, H, W)`` array, or a ValueError that says what ``name`` needs."""
    array = np.asarray(frames)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{name}: expected frames (N, H, W), got shape {array.shape}")
    if frames_per_set is not None and array.shape[0] != frames_per_set:
        raise ValueError(
            f"{name}: needs {frames_per_set} raw frames per set, got {array.shape[0]}"
        )
    return array


class DFCANReconstructor:
    """A DFCAN run by the reference PyTorch pipeline (:func:`inference.predict.official.predict`).

    The output is the network's prediction after the official post-processing
    (``rm_outliers(prctile_norm(·))``), as float32 in [0, 1].
    """

    def __init__(self, model: object, device: str = "cpu", name: str | None = None) -> None:
        from inference.models.dfcan import DFCAN

        if not isinstance(model, DFCAN):
            raise TypeError(f"expected a DFCAN, got {type(model).__name__}")
        self.model = model.eval()
        self.device = device
        self.mode = resolve_mode(None, model.config.in_channels)
        self.scale = model.config.scale
        self.frames_per_set = None if self.mode == "sisr" else model.config.in_channels
        self.name = name or f"dfcan-{self.mode}"

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu") -> DFCANReconstructor:
        """Load a weights file (safetensors with architecture, or Keras .h5)."""
        from inference.models.weights import load_model

        model = load_model(Path(path), device=device)
        return cls(model, device=device, name=f"dfcan-{Path(path).stem}")

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Predict one set with the official pipeline; the uint16 image as float32 in [0, 1]."""
        stack = check_frames(frames, self.frames_per_set, self.name)
        _, image = predict(self.model, stack, self.mode, self.device)
        return (image.astype(np.float32) / 65535.0).astype(np.float32)
