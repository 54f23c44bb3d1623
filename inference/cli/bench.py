"""``livesr bench``: DFCAN inference speed per backend and precision, in one run.

For each input size and configuration: the build time, then ms per frame (p50, p99) of the
network on a normalised input already on the device (CUDA: synchronised after each frame),
frames/s, the ratio to torch eager fp32 (the reference network) of the same run, and the share
of this device's dense matmul rate (measured in the same run) that the network's FLOPs reach
(a direct convolution's FLOPs: Winograd does fewer). The frames of the configurations are timed
in turn, one of each, so that drifts of the machine's speed hit them alike. Writes JSON and a
PNG bar chart.

On a GPU (default sizes 256, 512, 1024): torch eager fp32, then the matmul-DFT network in fp16
and bf16 with channels_last, CUDA graphs and torch.compile (max-autotune) added one at a time,
and TensorRT fp16 when it is installed. On the CPU (default sizes 128, 256, 512): torch eager
fp32 (the reference network), torch fp32 (FCA by a real FFT of the folded map, last conv before
depth_to_space, 3×3 convolutions by Winograd F(6×6, 3×3) in a native kernel), the same with
direct convolutions, torch bf16 (its FCAB convolutions in bfloat16), torch.compile of both,
ONNX Runtime fp32 and int8. Each row holds its output's max abs error against the reference
network's; on the CPU the fastest configuration within 2e-3 is recorded as this machine's
choice for ``auto``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from inference.backends.bench import CPU_SIZES, GPU_SIZES

RESULTS = Path("benchmarks") / "results"


def add_parser(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to the ``livesr`` parser."""
    parser = subparsers.add_parser(
        "bench",
        help="time DFCAN per backend and precision; JSON and a PNG chart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(parser)
    parser.set_defaults(func=run)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help=f"input sides (default {CPU_SIZES} on CPU, {GPU_SIZES} on GPU)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="weights file (default: the official DFCAN16 architecture, "
                        "random weights)")
    parser.add_argument("--channels", type=int, default=1,
                        help="input channels without --weights (1: SISR, 9: SIM)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed frames per point (default 100 on GPU; 5, 3 … on CPU)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed frames first (default 10 on GPU, 1 on CPU)")
    parser.add_argument("--configs", nargs="+", default=None, metavar="LABEL",
                        help="only these configurations (labels as in the output)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON path (default benchmarks/results/inference_<device>.json)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="image the output error is measured on (.npy, .tif, .mrc; mirrored "
                        "out to each size), e.g. the golden input; default: a smooth random "
                        "image")
    parser.add_argument("--no-plot", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Benchmark the configurations, write the JSON (and the PNG plot unless ``--no-plot``)."""
    import torch

    from inference.backends.bench import benchmark, machine, plot
    from inference.models.dfcan import DFCAN, DFCANConfig
    from inference.models.weights import load_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available here")
    gpu = device == "cuda"
    sizes = args.sizes or list(GPU_SIZES if gpu else CPU_SIZES)
    if any(s < 8 for s in sizes):
        raise ValueError(f"--sizes must be ≥ 8, got {sizes}")
    if args.weights is not None:
        model = load_model(args.weights)
        if not isinstance(model, DFCAN):
            raise ValueError(f"{args.weights}: not a DFCAN")
        weights = str(args.weights)
    else:
        torch.manual_seed(0)
        model = DFCAN(DFCANConfig(in_channels=args.channels))
        weights = "random (DFCAN16 architecture)"
    model.eval()
    info = machine(device)
    tag = "cpu" if not gpu else re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
    output = args.output or RESULTS / f"inference_{tag}.json"
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 1)

    def repeats_for(size: int) -> int:
        if args.repeats:
            return int(args.repeats)
        return 100 if gpu else max(3, 7 - 2 * (size // 256))

    reference = None
    if args.reference is not None:
        import numpy as np

        from inference.predict.image_io import read_image

        reference = np.squeeze(np.load(args.reference) if args.reference.suffix == ".npy"
                               else read_image(args.reference))
        if reference.ndim == 3:
            reference = reference.mean(axis=0)
        if reference.ndim != 2:
            raise ValueError(f"--reference {args.reference}: not a 2-D image "
                             f"(shape {reference.shape})")
    result = benchmark(model, sizes, device, warmup=warmup, repeats_for=repeats_for,
                       labels=args.configs, weights=weights, reference=reference,
                       reference_name=str(args.reference or "a smooth random image"))
    result["command"] = "livesr bench " + " ".join(
        sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")
    if not args.no_plot:
        png = output.with_suffix(".png")
        plot(result, png)
        print(f"wrote {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python benchmarks/bench_inference.py``."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(parser)
    return run(parser.parse_args(argv))
