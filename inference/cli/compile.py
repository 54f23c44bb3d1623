"""``livesr compile``: prebuild what a backend runs for one camera ROI, into the cache.

TensorRT: the ONNX export and the engine (cached by ONNX hash, TensorRT version, GPU, precision
and shape). torch: ``torch.compile`` (max-autotune) for that shape, which fills PyTorch's own
on-disk compilation caches. onnxruntime: the exported graph.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "parse_shape", "run"]


def parse_shape(text: str) -> tuple[int, int]:
    """``"512x512"`` / ``"512"`` → ``(512, 512)``; a ValueError saying what is expected."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x×,]\s*(\d+))?\s*", text)
    if not match:
        raise ValueError(f"--shape must be HxW (e.g. 512x512), got {text!r}")
    height = int(match.group(1))
    width = int(match.group(2) or height)
    if not (1 <= height <= 16384 and 1 <= width <= 16384):
        raise ValueError(f"--shape {height}x{width}: each side must be 1 … 16384")
    return height, width


def add_parser(subparsers: Any) -> None:
    """Add the ``compile`` subcommand to the ``livesr`` parser."""
    parser = subparsers.add_parser(
        "compile",
        help="prebuild and cache a TensorRT engine or compiled graph for one input shape",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--weights", required=True, type=Path, metavar="FILE")
    parser.add_argument("--shape", required=True, type=str, metavar="HxW",
                        help="the camera ROI, e.g. 512x512")
    parser.add_argument("--backend", choices=("auto", "tensorrt", "torch", "onnxruntime"),
                        default="auto")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default=None,
                        help="default fp16 on a GPU, fp32 on the CPU")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="default $LIVESR_CACHE_DIR or the user cache folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the backend for ``--shape`` (filling the cache) and print where it came from."""
    from inference.backends import BackendError, default_cache_dir
    from inference.models.dfcan import DFCAN
    from inference.models.weights import load_model
    from inference.registry import build_reconstructor

    shape = parse_shape(args.shape)
    model = load_model(args.weights)
    if not isinstance(model, DFCAN):
        raise ValueError(f"{args.weights}: holds a {type(model).__name__}, not a DFCAN generator")
    compile_mode = "max-autotune" if args.backend in ("torch", "auto") else None
    start = time.perf_counter()
    try:
        backend: Any = build_reconstructor(
            "dfcan", model=model, backend=args.backend, device=args.device,
            precision=args.precision, shape=shape, cache_dir=args.cache_dir,
            compile=compile_mode).reconstructor
    except BackendError as exc:
        raise ValueError(str(exc)) from None
    active = getattr(backend, "active", backend)
    outcome = getattr(active, "outcomes", {}).get(shape)
    where: object = args.cache_dir or default_cache_dir()
    if active.kind.startswith("torch"):
        where = "PyTorch's own compilation cache, TORCHINDUCTOR_CACHE_DIR"
    detail = ""
    if outcome is not None:
        detail = f": engine {outcome.path} ({'built' if outcome.built else 'from the cache'})"
    print(f"prepared {shape[0]}x{shape[1]} on {active.description} in "
          f"{time.perf_counter() - start:.1f} s{detail} (cache: {where})")
    return 0
