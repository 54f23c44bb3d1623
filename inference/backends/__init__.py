"""Inference backends behind one interface: TensorRT, PyTorch (CUDA or CPU), ONNX Runtime.

``select_backend("auto", model)`` picks the fastest that works here and falls back with a
warning; ``named_backend(name, model)`` makes exactly one, without fallback. Every backend is a
:class:`~inference.reconstructor.Reconstructor`; callers that start from a method name and a
weights file use :func:`inference.registry.build_reconstructor`.
"""

from inference.backends.base import InferenceBackend, default_cache_dir
from inference.backends.errors import BackendError, BackendUnavailable
from inference.backends.select import (
    AUTO_ORDER,
    BACKEND_NAMES,
    FallbackBackend,
    named_backend,
    select_backend,
)

__all__ = [
    "AUTO_ORDER",
    "BACKEND_NAMES",
    "BackendError",
    "BackendUnavailable",
    "FallbackBackend",
    "InferenceBackend",
    "default_cache_dir",
    "named_backend",
    "select_backend",
]
