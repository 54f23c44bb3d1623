"""``livesr predict``: super-resolve one image or raw SIM stack with DFCAN / DFGAN weights."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

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
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--raw-output",
        action="store_true",
        help="write the network's float32 output, not post-processed (.npy)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the weights, predict, write the result. User errors raise ValueError / OSError."""
    from inference.dfcan import DFCAN
    from inference.image_io import WRITE_SUFFIXES, read_image, write_image
    from inference.predict import predict, resolve_device
    from inference.weights import load_model

    output: Path = args.output
    suffix = output.suffix.lower()
    if args.raw_output and suffix != ".npy":
        raise ValueError(f"--raw-output writes .npy, not {suffix or 'no extension'} ({output})")
    if suffix not in WRITE_SUFFIXES:
        raise ValueError(f"{output}: output must be .tif, .tiff or .npy")
    device = resolve_device(args.device)
    image = read_image(args.input)
    start = time.perf_counter()
    model = load_model(args.weights, device=device)
    if not isinstance(model, DFCAN):
        raise ValueError(f"{args.weights}: holds a {type(model).__name__}, not a DFCAN generator")
    raw, result = predict(model, image, args.mode, device)
    written = write_image(output, raw if args.raw_output else result)
    kind = "raw float32" if args.raw_output else "uint16"
    elapsed = time.perf_counter() - start
    print(f"wrote {written} ({raw.shape[0]}×{raw.shape[1]} {kind}) in {elapsed:.2f} s")
    return 0
