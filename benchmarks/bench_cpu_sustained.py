"""DFCAN on the CPU over a long run: latency and memory frame after frame.

``livesr bench`` times a few frames per configuration; this runs ``auto``'s CPU configuration
(the torch backend, Winograd convolutions where its kernels build) on ``--frames`` new inputs
(a fresh random image per frame, none seen before), through ``infer`` as the acquisition calls
it, and records each frame's latency and the process's anonymous resident memory. Prints
p50/p99, the first and last quarters' p50 (does it slow down?) and the memory after warm-up, at
its peak and at the end (does it grow?). Run:
``python benchmarks/bench_cpu_sustained.py [--frames 120] [--size 256]``; writes
``benchmarks/results/cpu_sustained.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_writing import rss_anon_mb

from inference.backends.torch_backend import TorchBackend
from inference.models.weights import load_model

WEIGHTS = Path("../shared/reference/dlsr/golden/dfcan_sisr_random_seed0.h5")
OUTPUT = Path("benchmarks/results/cpu_sustained.json")


def main() -> None:
    """Run the frames, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    backend = TorchBackend(load_model(WEIGHTS), "cpu", postprocess=False)
    backend.prepare(args.size, args.size)
    rng = np.random.default_rng(1)
    ms: list[float] = []
    rss_mb: list[float] = []
    start = time.time()
    for _ in range(args.frames):
        x = rng.random((1, 1, args.size, args.size), dtype=np.float32)
        t0 = time.perf_counter()
        backend.infer(x)
        ms.append((time.perf_counter() - t0) * 1e3)
        rss_mb.append(rss_anon_mb())
    quarter = max(1, args.frames // 4)
    result = {
        "benchmark": "DFCAN16 (official size, golden weights) on the CPU, one new input per frame",
        "backend": backend.description, "size": args.size, "frames": args.frames,
        "wall_s": time.time() - start,
        "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
        "first_quarter_p50_ms": float(np.median(ms[:quarter])),
        "last_quarter_p50_ms": float(np.median(ms[-quarter:])),
        "rss_mb_after_warmup": rss_mb[min(9, args.frames - 1)], "rss_mb_peak": max(rss_mb),
        "rss_mb_end": rss_mb[-1],
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=1))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
