"""Which CPU configuration ``auto`` runs: the fastest accurate one, measured on this machine.

A CPU's best configuration depends on its instructions (bf16 is twice float32's rate with
AVX-512 BF16 or AMX, and slower than float32 without them) and on the input size, so it is
measured rather than guessed: ``livesr bench`` records, per input size, the fastest
configuration whose output is within :data:`ACCURATE` of the reference network's, in
``<cache>/cpu_choice.json`` under this machine's signature (CPU model, its bf16/VNNI/AMX flags,
the torch and ONNX Runtime versions). When nothing is recorded for this machine, the first
``auto`` build for a shape times the accurate candidates once (one warm-up frame, one timed)
and records the result the same way; later runs read it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.backends.engine_cache import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable

    from inference.backends.base import InferenceBackend

    #: makes the backend ``(name, precision)`` on the CPU
    MakeBackend = Callable[[str, str], InferenceBackend]

__all__ = [
    "ACCURATE",
    "CANDIDATES",
    "FILE_NAME",
    "candidates",
    "cpu_flags",
    "cpu_model",
    "has_bf16",
    "machine_signature",
    "ordered",
    "physical_cores",
    "read_choice",
    "record_choice",
    "time_candidates",
]

log = logging.getLogger(__name__)

#: what the labels run; a new version (torch-fp32 with Winograd convolutions: 2) re-measures
CONFIGURATIONS_VERSION = 2
#: max abs output error against the reference network for a configuration to count as accurate
ACCURATE = 2e-3
FILE_NAME = "cpu_choice.json"
#: accurate CPU configurations: bench label → (backend, precision)
CANDIDATES: dict[str, tuple[str, str]] = {
    "onnxruntime-fp32": ("onnxruntime", "fp32"),
    "torch-fp32": ("torch", "fp32"),
    "torch-bf16": ("torch", "bf16"),
}
_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni", "avx512f")


def cpu_flags() -> set[str]:
    """Return the CPU flags of interest here (bf16, AMX, VNNI, AVX-512) that this CPU reports."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.split(":", 1)[-1].split()) & set(_FLAGS)


def has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def candidates() -> list[str]:
    """Return the accurate configurations worth timing here (bf16 only with bf16 instructions)."""
    return [label for label in CANDIDATES if label != "torch-bf16" or has_bf16()]


def physical_cores() -> int:
    """Physical cores available to this process: logical CPUs / hardware threads per core."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (logical or 1) // _threads_per_core())


def _threads_per_core() -> int:
    try:
        text = Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").read_text()
    except OSError:
        return 1
    count = 0
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        count += int(hi) - int(lo) + 1 if hi else 1
    return max(1, count)


def cpu_model() -> str:
    """Return the CPU's model name (``/proc/cpuinfo``; else what ``platform`` knows)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_signature() -> str:
    """Return the CPU model, its flags of interest, core count, torch and ONNX Runtime versions."""
    import torch

    cpu = cpu_model()
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "none"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags = ",".join(sorted(cpu_flags()))
    return (f"{cpu} | {cores} cpus | {flags} | torch {torch.__version__} | onnxruntime {ort}"
            f" | configurations {CONFIGURATIONS_VERSION}")


def _path(cache_dir: Path) -> Path:
    return Path(cache_dir) / FILE_NAME


def _load(cache_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(_path(cache_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_choice(cache_dir: Path, size: int | None = None) -> list[str] | None:
    """Return the recorded order for this machine (nearest recorded size), or None."""
    entry = _load(cache_dir).get(machine_signature())
    if not isinstance(entry, dict) or not entry:
        return None
    sizes = sorted(int(k) for k in entry)
    key = str(min(sizes, key=lambda s: abs(s - size)) if size else max(sizes))
    order = entry[key].get("order") if isinstance(entry[key], dict) else None
    return [label for label in order if label in CANDIDATES] if order else None


def record_choice(cache_dir: Path, size: int, timings_ms: dict[str, float],
                  source: str) -> list[str]:
    """Record the accurate configurations timed at ``size``, fastest first; return that order."""
    order = sorted(timings_ms, key=timings_ms.__getitem__)
    data = _load(cache_dir)
    entry = data.setdefault(machine_signature(), {})
    entry[str(size)] = {"order": order, "ms": timings_ms, "source": source,
                        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write(_path(cache_dir), json.dumps(data, indent=2).encode())
    return order


def time_candidates(make: MakeBackend, in_channels: int, size: tuple[int, int],
                    cache_dir: Path) -> list[str]:
    """Time each accurate candidate once at ``size`` (after one warm-up); record the order.

    Returns the order, fastest first; a candidate that fails is left out.
    """
    import numpy as np

    x = np.random.default_rng(0).random((1, in_channels, *size), dtype=np.float32)
    timings: dict[str, float] = {}
    for label in candidates():
        name, precision = CANDIDATES[label]
        try:
            backend = make(name, precision)
            backend.prepare(*size)
            backend.infer(x)
            start = time.perf_counter()
            backend.infer(x)
            timings[label] = (time.perf_counter() - start) * 1e3
        except Exception as exc:  # an unavailable candidate is skipped
            log.info("cpu candidate %s skipped: %s", label, exc)
    if not timings:
        return list(CANDIDATES)
    order = record_choice(cache_dir, max(size), timings, "measured by the first auto build")
    log.info("cpu configurations here at %s: %s", size,
             ", ".join(f"{k} {v:.0f} ms" for k, v in timings.items()))
    return order


def ordered(make: MakeBackend, in_channels: int, shape: tuple[int, int] | None,
            cache_dir: Path, measure: bool = True) -> list[str]:
    """Return the accurate CPU configurations, fastest first on this machine.

    Recorded order if any; else, with a shape and ``measure``, timed now (and recorded); else
    torch fp32 (Winograd convolutions where its kernel builds), then ONNX Runtime fp32 (torch
    bf16 first where the CPU has bf16 instructions).
    """
    recorded = read_choice(cache_dir, max(shape) if shape else None)
    if recorded:
        return recorded
    if shape is not None and measure:
        return time_candidates(make, in_channels, shape, cache_dir)
    return [*(["torch-bf16"] if has_bf16() else []), "torch-fp32", "onnxruntime-fp32"]
