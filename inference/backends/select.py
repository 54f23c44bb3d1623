"""Pick a backend by name, or ``auto``: the fastest that works here, falling back with a warning.

Two functions, one job each: :func:`named_backend` makes exactly the backend it is asked for
(or raises); :func:`select_backend` is what callers use: a named backend prepared for a shape,
or for ``auto`` a :class:`FallbackBackend` over :data:`AUTO_ORDER`. Reconstructors are built by
name (DFCAN, Wiener-SIM, wide field) one level up, in
:func:`inference.registry.build_reconstructor`, which calls :func:`select_backend`.

``auto`` tries, in order: TensorRT (fp16), PyTorch on CUDA (fp16, CUDA graphs), then the accurate
CPU configurations fastest first on this machine (:mod:`inference.backends.cpu_choice`: ONNX
Runtime fp32, PyTorch fp32, PyTorch bf16 where the CPU has bf16 instructions; measured once per
machine and shape, or by ``livesr bench``). A backend that cannot be made (library or GPU
missing), cannot be built for the shape, or fails while running (out of memory, a driver error)
is skipped with a warning naming it and why, and the next one takes the set. Wrong input (a
ValueError, e.g. the wrong number of frames) is the caller's error and is raised, not retried.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

from inference.backends.errors import BackendError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import numpy as np

    from inference.backends.base import InferenceBackend
    from inference.models.dfcan import DFCAN
    from inference.predict.normalisation import Normalisation

__all__ = ["AUTO_ORDER", "BACKEND_NAMES", "FallbackBackend", "named_backend", "select_backend"]

log = logging.getLogger(__name__)

BACKEND_NAMES = ("auto", "tensorrt", "torch", "onnxruntime")
#: (backend, device, default precision), fastest first
AUTO_ORDER: tuple[tuple[str, str, str], ...] = (
    ("tensorrt", "cuda", "fp16"),
    ("torch", "cuda", "fp16"),
    ("onnxruntime", "cpu", "fp32"),
    ("torch", "cpu", "fp32"),
)


def named_backend(
    name: str,
    model: DFCAN,
    *,
    device: str | None = None,
    precision: str | None = None,
    cache_dir: str | Path | None = None,
    compile: str | None = None,
    postprocess: bool = True,
) -> InferenceBackend:
    """Exactly the backend called ``name``, not prepared for any shape; no ``auto``, no fallback.

    The building block of :func:`select_backend` (each of ``auto``'s candidates is made here).
    A backend that cannot be made here raises
    (:class:`~inference.backends.errors.BackendUnavailable`: its library or GPU is missing).

    Parameters
    ----------
    name
        ``tensorrt``, ``torch`` or ``onnxruntime`` (``auto`` is refused: see
        :func:`select_backend`).
    device, precision
        Default: ``tensorrt`` cuda fp16; ``torch`` CUDA when available (fp16), else the CPU
        (fp32); ``onnxruntime`` the CPU, fp32.
    cache_dir, compile, postprocess
        Passed to the backend (engine/graph cache, ``torch.compile`` mode, official
        post-processing).
    """
    import torch

    if name == "tensorrt":
        from inference.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model, precision or "fp16", device=device or "cuda",
                               cache_dir=cache_dir, postprocess=postprocess)
    if name == "torch":
        from inference.backends.torch_backend import TorchBackend

        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        default = "fp16" if dev.startswith("cuda") else "fp32"
        return TorchBackend(model, dev, precision or default, compile=compile,
                            postprocess=postprocess)
    if name == "onnxruntime":
        from inference.backends.onnxruntime_backend import OnnxRuntimeBackend

        if device not in (None, "cpu"):
            raise ValueError(f"the onnxruntime backend runs on the cpu, not {device}")
        return OnnxRuntimeBackend(model, precision or "fp32", cache_dir=cache_dir,
                                  postprocess=postprocess)
    raise ValueError(f"unknown backend {name!r} (one of {', '.join(BACKEND_NAMES)})")


class FallbackBackend:
    """A :class:`~inference.reconstructor.Reconstructor` over a list of backend factories.

    It uses the first that works and moves to the next when one fails.

    Args:
        factories: ``(label, make)`` pairs, fastest first; ``make()`` returns a backend.
        shape: ``(height, width)`` to build for at once (else at the first set).
    """

    def __init__(
        self,
        factories: list[tuple[str, Callable[[], InferenceBackend]]],
        shape: tuple[int, int] | None = None,
    ) -> None:
        if not factories:
            raise ValueError("no backend to choose from")
        self._factories = list(factories)
        self.skipped: list[tuple[str, str]] = []
        self._normalisation: Normalisation | None = None
        self.active: InferenceBackend = self._next(shape)

    @property
    def normalisation(self) -> Normalisation:
        """How sets are scaled (one object, handed on to each backend fallen back to)."""
        return self._normalisation or self.active.normalisation

    @normalisation.setter
    def normalisation(self, value: Normalisation) -> None:
        self._normalisation = self.active.normalisation = value

    @property
    def last_report(self) -> dict[str, float | str]:
        """The active backend's report on the last set."""
        return self.active.last_report

    @property
    def name(self) -> str:
        """The active backend's name."""
        return self.active.name

    @property
    def scale(self) -> int:
        """The active backend's upscaling factor."""
        return self.active.scale

    @property
    def frames_per_set(self) -> int | None:
        """The active backend's frames per set (None: any number, SISR)."""
        return self.active.frames_per_set

    @property
    def description(self) -> str:
        """The active backend's ``kind precision``."""
        return self.active.description

    def _skip(self, label: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        self.skipped.append((label, reason))
        warnings.warn(f"backend {label} unavailable, trying the next: {reason}", RuntimeWarning,
                      stacklevel=3)

    def _next(self, shape: tuple[int, int] | None) -> InferenceBackend:
        while self._factories:
            label, make = self._factories.pop(0)
            try:
                backend = make()
                if self._normalisation is not None:
                    backend.normalisation = self._normalisation
                if shape is not None:
                    backend.prepare(*shape)
            except Exception as exc:
                self._skip(label, exc)
                continue
            log.info("using backend %s", backend.description)
            return backend
        tried = "; ".join(f"{label}: {why}" for label, why in self.skipped)
        raise BackendError(f"no inference backend works here ({tried})")

    def prepare(self, height: int, width: int) -> None:
        """Build for ``height × width``, moving to the next backend while one fails."""
        while True:
            try:
                self.active.prepare(height, width)
                return
            except Exception as exc:
                self._skip(self.active.description, exc)
                self.active = self._next((height, width))

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the network alone on the active backend, falling back on failure."""
        return self._retry(lambda backend: backend.infer(x))

    def upload(self, frames: np.ndarray) -> Any:
        """Check the set; the upload itself happens in :meth:`complete`."""
        return self.active.check(frames)

    def complete(self, staged: Any) -> np.ndarray:
        """Reconstruct a set checked by :meth:`upload` (as :meth:`reconstruct`)."""
        return self.reconstruct(staged)

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Reconstruct one set, falling back to the next backend when the active one fails."""
        stack = self.active.check(frames)  # the caller's errors are raised, not retried
        return self._retry(lambda backend: backend.reconstruct(stack))

    def _retry(self, run: Callable[[InferenceBackend], np.ndarray]) -> np.ndarray:
        while True:
            backend = self.active
            try:
                return run(backend)
            except Exception as exc:
                self._skip(backend.description, exc)
                self.active = self._next(None)


def select_backend(
    name: str,
    model: DFCAN,
    *,
    device: str | None = None,
    precision: str | None = None,
    shape: tuple[int, int] | None = None,
    cache_dir: str | Path | None = None,
    compile: str | None = None,
    postprocess: bool = True,
    order: tuple[tuple[str, str, str], ...] = AUTO_ORDER,
) -> InferenceBackend | FallbackBackend:
    """Return the backend to run: by name (as :func:`named_backend`), or ``auto`` with fallback.

    Unlike :func:`named_backend`, it accepts ``auto``, and it builds for ``shape`` at once when
    given (so a failure shows before the first set).

    Parameters
    ----------
    name
        ``tensorrt``, ``torch``, ``onnxruntime``: that backend only, its errors raised (no
        fallback). ``auto``: a :class:`FallbackBackend` over ``order``, fastest first, each
        candidate skipped with a warning if it cannot be made, built or run.
    device, precision
        For ``auto``, restrict ``order`` to the entries that can honour them (e.g. ``cpu``:
        ONNX Runtime, then PyTorch on the CPU).
    shape
        ``(height, width)`` to build for now.
    cache_dir, compile, postprocess, order
        Passed to the backends; ``order``: ``auto``'s candidates.
    """
    if name != "auto":
        backend = named_backend(name, model, device=device, precision=precision,
                               cache_dir=cache_dir, compile=compile, postprocess=postprocess)
        if shape is not None:
            backend.prepare(*shape)
        return backend
    factories: list[tuple[str, Callable[[], InferenceBackend]]] = []
    if order is AUTO_ORDER and _cpu_only(device):
        order = _cpu_order(model, shape, cache_dir, precision)
    for backend_name, dev, default_precision in order:
        if device is not None and not dev.startswith(device.split(":")[0]):
            continue
        chosen = precision or default_precision
        if dev == "cpu" and chosen != default_precision:
            continue

        def make(b: str = backend_name, d: str = dev, p: str = chosen) -> InferenceBackend:
            return named_backend(b, model, device=d, precision=p, cache_dir=cache_dir,
                                compile=compile, postprocess=postprocess)

        factories.append((f"{backend_name}-{dev} {chosen}", make))
    if not factories:
        raise ValueError(f"no backend runs precision {precision} on {device}")
    return FallbackBackend(factories, shape)


def _cpu_only(device: str | None) -> bool:
    """Whether ``auto`` will run on the CPU (asked for, or no GPU here)."""
    if device is not None:
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()


def _cpu_order(model: DFCAN, shape: tuple[int, int] | None, cache_dir: str | Path | None,
               precision: str | None) -> tuple[tuple[str, str, str], ...]:
    """``auto``'s CPU candidates, fastest accurate first on this machine."""
    from pathlib import Path

    from inference.backends.base import default_cache_dir
    from inference.backends.cpu_choice import CANDIDATES, ordered

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def make(name: str, chosen: str) -> InferenceBackend:
        return named_backend(name, model, device="cpu", precision=chosen, cache_dir=cache)

    labels = ordered(make, model.config.in_channels, shape, cache, measure=precision is None)
    return tuple((CANDIDATES[label][0], "cpu", CANDIDATES[label][1]) for label in labels)
