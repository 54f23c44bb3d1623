"""Inference backends behind one interface: TensorRT, PyTorch (CUDA or CPU), ONNX Runtime.

``create_backend("auto", model)`` picks the fastest that works here and falls back with a
warning; every backend is a :class:`~inference.reconstructor.Reconstructor`.
"""

from inference.backends.base import InferenceBackend, default_cache_dir
from inference.backends.errors import BackendError, BackendUnavailable
from inference.backends.select import (
    AUTO_ORDER,
    BACKEND_NAMES,
    FallbackBackend,
    create_backend,
    make_backend,
)

__all__ = [
    "AUTO_ORDER",
    "BACKEND_NAMES",
    "BackendError",
    "BackendUnavailable",
    "FallbackBackend",
    "InferenceBackend",
    "create_backend",
    "default_cache_dir",
    "make_backend",
]
