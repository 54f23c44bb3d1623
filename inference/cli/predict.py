"""``livesr predict``: super-resolve one image or raw SIM stack with DFCAN / DFGAN weights."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``predict`` subcommand to the ``livesr`` parser."""
    parser = subparsers.add_parser(
        "predict",
        help="super-resolve an image or raw SIM stack with DFCAN/DFGAN weights",
        description=(
            "Run DFCAN/DFGAN on IN (.npy, .tif, .mrc): a 2-D array is one wide-field image, a "
            "3-D array (N, H, W) a raw stack (averaged to wide-field in sisr mode, the model's "
            "channels in sim mode). Pre- and post-processing follow the official DL-SR predict."
        ),
    )
    parser.add_argument(
        "--weights",
        required=True,
        type=Path,
        metavar="FILE",
        help="our .safetensors, or an official Keras .h5 (config inferred)",
    )
    parser.add_argument("--input", required=True, type=Path, metavar="IN")
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="OUT",
        help=".tif or .npy (uint16); with --raw-output: .npy (float32)",
    )
    parser.add_argument(
        "--mode",
        choices=("sisr", "sim"),
        default=None,
        help="default: sisr for a 1-channel model, sim otherwise",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="default: cpu for the reference pipeline; with --backend, the backend's choice",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "tensorrt", "torch", "onnxruntime"),
        default=None,
        help="run on an inference backend (auto: the fastest that works here, with fallback); "
        "default: the reference PyTorch pipeline",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16"),
        default=None,
        help="with --backend: the backend's precision (default fp16 on a GPU, fp32 on the CPU)",
    )
    parser.add_argument(
        "--raw-output",
        action="store_true",
        help="write the network's float32 output, not post-processed (.npy)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the weights, predict, write the result. User errors raise ValueError / OSError."""
    from inference.models.dfcan import DFCAN
    from inference.models.weights import load_model
    from inference.predict.image_io import WRITE_SUFFIXES, read_image, write_image
    from inference.predict.official import predict, resolve_device

    output: Path = args.output
    suffix = output.suffix.lower()
    if args.raw_output and suffix != ".npy":
        raise ValueError(f"--raw-output writes .npy, not {suffix or 'no extension'} ({output})")
    if suffix not in WRITE_SUFFIXES:
        raise ValueError(f"{output}: output must be .tif, .tiff or .npy")
    if args.backend is None and args.precision is not None:
        raise ValueError("--precision needs --backend")
    device = resolve_device(args.device or "cpu")
    image = read_image(args.input)
    start = time.perf_counter()
    model = load_model(args.weights, device="cpu" if args.backend else device)
    if not isinstance(model, DFCAN):
        raise ValueError(f"{args.weights}: holds a {type(model).__name__}, not a DFCAN generator")
    via = ""
    if args.backend is None:
        raw, result = predict(model, image, args.mode, device)
        out = raw if args.raw_output else result
    else:
        out, via = _run_backend(args, model, image)
    written = write_image(output, out)
    kind = "raw float32" if args.raw_output else "uint16"
    elapsed = time.perf_counter() - start
    print(f"wrote {written} ({out.shape[0]}×{out.shape[1]} {kind}) in {elapsed:.2f} s{via}")
    return 0


def _run_backend(args: argparse.Namespace, model: Any, image: Any) -> tuple[Any, str]:
    """Reconstruct ``image`` on the chosen backend: (output array, " on <backend>")."""
    from inference.backends import BackendError
    from inference.predict.official import resolve_mode
    from inference.predict.processing import to_uint16
    from inference.registry import build_reconstructor

    if resolve_mode(args.mode, model.config.in_channels) == "sim" and image.ndim != 3:
        raise ValueError(f"sim mode needs a raw stack (N, H, W), got a 2-D image {image.shape}")
    try:
        backend: Any = build_reconstructor(
            "dfcan", model=model, backend=args.backend, device=args.device,
            precision=args.precision, postprocess=not args.raw_output).reconstructor
        result = backend.reconstruct(image)
    except BackendError as exc:
        raise ValueError(str(exc)) from None
    out = result if args.raw_output else to_uint16(result)
    return out, f" on {backend.description}"
