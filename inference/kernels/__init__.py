"""Native CPU kernels, compiled on first use for this machine's CPU (a C++ compiler is needed).

:func:`load` builds the ``*.cpp`` files of this folder (``winograd.cpp``: 3×3 convolutions;
``fold.cpp`` and ``fca_amplitude.cpp``: the FCA's fold and amplitude spectrum of channels-last
maps) into one library with ``torch.utils.cpp_extension`` (linked against libtorch and the BLAS
in it), in
``<cache>/kernels/<digest>/`` (the digest covers the sources, the flags, the torch version and
the CPU), and returns their operators' namespace, ``torch.ops.livesr``, with each operator's shape
function registered so that ``torch.compile`` traces them. A second process waits
for the first one's build (a file lock) and later ones reuse it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

from inference.backends.errors import BackendUnavailable

__all__ = ["compile_flags", "load"]

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: list[Any] = []
_failed: list[str] = []
NAME = "livesr_cpu"


def compile_flags() -> list[str]:
    """Optimisation flags for this CPU (its own instructions; 512-bit vectors with AVX-512)."""
    from inference.backends.cpu_choice import cpu_flags

    flags = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp"]
    if "avx512f" in cpu_flags():
        flags.append("-mprefer-vector-width=512")
    return flags


def _sources() -> list[Path]:
    return sorted(Path(__file__).parent.glob("*.cpp"))


def _build_dir(sources: list[Path], flags: list[str]) -> Path:
    import torch

    from inference.backends.base import default_cache_dir
    from inference.backends.cpu_choice import cpu_flags, cpu_model

    headers = sorted(Path(__file__).parent.glob("*.h"))
    key = "\n".join([*(p.read_text() for p in [*sources, *headers]), " ".join(flags),
                     torch.__version__, cpu_model(), ",".join(sorted(cpu_flags()))])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return default_cache_dir() / "kernels" / f"cpu-{digest}"


def load() -> Any:
    """Build (once) and load the kernels; return their ``torch.ops`` namespace.

    Raises :class:`~inference.backends.errors.BackendUnavailable` when they cannot be built
    here (no C++ compiler, an unsupported platform); the reason is kept, so later calls fail
    fast.
    """
    import torch

    with _lock:
        if _loaded:
            return _loaded[0]
        if _failed:
            raise BackendUnavailable(_failed[0])
        sources, flags = _sources(), compile_flags()
        build = _build_dir(sources, flags)
        try:  # a read-only cache, no compiler, a failed build: not here
            build.mkdir(parents=True, exist_ok=True)
            from torch.utils.cpp_extension import load as build_extension

            build_extension(name=NAME, sources=[str(p) for p in sources], extra_cflags=flags,
                            build_directory=str(build), is_python_module=False, verbose=False)
        except Exception as error:
            text = str(error).strip()
            reason = (f"the native CPU kernels could not be built here ({type(error).__name__}"
                      f"{': ' + text.splitlines()[-1] if text else ''})")
            _failed.append(reason)
            log.warning("%s: the CPU runs direct convolutions (slower)", reason)
            raise BackendUnavailable(reason) from error
        log.debug("loaded the native CPU kernels from %s", build)
        _register_shapes()
        _loaded.append(torch.ops.livesr)
        return _loaded[0]


def _register_shapes() -> None:
    """Tell ``torch.compile`` the shape of each operator's output (no computation)."""
    import torch
    from torch import Tensor

    @torch.library.register_fake("livesr::conv3x3")
    def _conv3x3(x: Tensor, u: Tensor, bias: Tensor, activation: int, m: int,
                 chunk: int) -> Tensor:
        return x.new_empty((x.shape[0], x.shape[1], x.shape[2], u.shape[2]))

    @torch.library.register_fake("livesr::fold_nchw")
    def _fold(x: Tensor, fold_h: int, fold_w: int) -> Tensor:
        return x.new_empty((x.shape[0], x.shape[3], x.shape[1] // fold_h, x.shape[2] // fold_w))

    @torch.library.register_fake("livesr::fca_amplitude")
    def _amplitude(z: Tensor, gather: Tensor, norm: float, eps: float, gamma: float) -> Tensor:
        return z.new_empty((z.shape[0], gather.shape[0], z.shape[1]), dtype=torch.float32)
