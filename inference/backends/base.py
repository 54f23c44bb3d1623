"""What every inference backend shares.

The :class:`~inference.reconstructor.Reconstructor` interface, the official pre/post-processing,
one built network per input shape.

A backend holds a DFCAN and runs it its own way (TensorRT engine, PyTorch on CUDA or CPU, ONNX
Runtime). ``reconstruct(frames)`` takes one raw set ``(N, H, W)`` and returns the float32 SR
image in [0, 1], post-processed as the official predict (unless ``postprocess=False``: the
network's sigmoid output), or scaled as its ``normalisation`` says
(:class:`~inference.predict.normalisation.Normalisation`: per set by default, anchored for a
run). ``upload``/``complete`` split that call in two for a streaming pipeline (the next set's
upload overlaps this set's compute on a GPU).
"""

from __future__ import annotations

import hashlib
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from inference.backends.export_onnx import DTYPES
from inference.models.dfcan import DFCAN
from inference.predict.normalisation import Normalisation
from inference.predict.official import resolve_mode
from inference.reconstructor import check_frames

__all__ = ["InferenceBackend", "default_cache_dir", "model_digest"]


def default_cache_dir() -> Path:
    """Return where engines, exported graphs and timing caches live.

    ``$LIVESR_CACHE_DIR``, else the user cache folder (``%LOCALAPPDATA%`` on Windows,
    ``$XDG_CACHE_HOME`` or ``~/.cache``).
    """
    if env := os.environ.get("LIVESR_CACHE_DIR"):
        return Path(env)
    if sys.platform == "win32" and (local := os.environ.get("LOCALAPPDATA")):
        return Path(local) / "livesr" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livesr"


def model_digest(model: DFCAN) -> str:
    """Short SHA-256 of a model's config and weights (names, shapes, values)."""
    digest = hashlib.sha256(model.config.model_dump_json().encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.float().numpy().tobytes())
    return digest.hexdigest()[:16]


class InferenceBackend(ABC):
    """A DFCAN behind one runtime; a :class:`~inference.reconstructor.Reconstructor`."""

    #: runtime name, e.g. ``"tensorrt"``, ``"torch-cuda"``, ``"onnxruntime"``
    kind: ClassVar[str] = "backend"

    def __init__(self, model: DFCAN, precision: str = "fp32", postprocess: bool = True) -> None:
        if not isinstance(model, DFCAN):
            raise TypeError(f"expected a DFCAN, got {type(model).__name__}")
        if precision not in DTYPES:
            raise ValueError(f"unknown precision {precision!r} (one of {', '.join(DTYPES)})")
        self.model = model.eval()
        self.config = model.config
        self.precision = precision
        self.postprocess = postprocess
        self.mode = resolve_mode(None, model.config.in_channels)
        self.scale = model.config.scale
        self.frames_per_set: int | None = None if self.mode == "sisr" else model.config.in_channels
        self.name = f"dfcan-{self.mode}"
        #: how sets are scaled into and out of the network (default: per set, the official)
        self.normalisation = Normalisation()

    @property
    def last_report(self) -> dict[str, float | str]:
        """The last set's anchored scalings, for its SR journal line (empty per set)."""
        return self.normalisation.report()

    @property
    def description(self) -> str:
        """``kind precision``, e.g. ``"torch-cuda fp16"``."""
        return f"{self.kind} {self.precision}"

    @abstractmethod
    def prepare(self, height: int, width: int) -> None:
        """Build (or load from the cache) what runs ``height × width`` inputs."""

    @abstractmethod
    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the network alone on a normalised ``(1, C, H, W)`` float32 input.

        Returns ``(H·s, W·s)`` float32 (the sigmoid output).
        """

    def check(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` as ``(N, H, W)``, or a ValueError naming what this model needs."""
        return check_frames(frames, self.frames_per_set, f"{self.name} ({self.description})")

    def upload(self, frames: np.ndarray) -> Any:
        """First half of :meth:`reconstruct`: check the set and start moving it to the device."""
        return self.check(frames)

    def complete(self, staged: Any) -> np.ndarray:
        """Second half of :meth:`reconstruct`: normalise, infer, post-process."""
        stack = np.asarray(staged)
        x = self.normalisation.prepare(stack, self.mode, self.config.in_channels)
        raw = self.infer(x)
        if self.postprocess:
            return self.normalisation.finish(raw)
        self.normalisation.keep_raw()
        return raw

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """One set ``(N, H, W)`` → float32 ``(H·scale, W·scale)`` in [0, 1]."""
        return self.complete(self.upload(frames))

    def __repr__(self) -> str:
        """Return ``<Class name kind precision>``."""
        return f"<{type(self).__name__} {self.name} {self.description}>"
