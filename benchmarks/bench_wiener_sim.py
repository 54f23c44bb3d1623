"""Wiener-SIM speed: a 512² raw set → 1024², calibration reused; ours vs napari-sim-processor.

    python benchmarks/bench_wiener_sim.py [--repeats 5]

Both run on this machine in one process: ours with NumPy/SciPy (single-threaded FFTs and all
threads) and with PyTorch on the CPU (and on CUDA when there is a GPU), theirs with its
``reconstruct_rfftw`` (NumPy FFTs). Best and median of ``repeats`` per set; JSON to
benchmarks/results/wiener_sim_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from inference.wiener_sim import OTFModel, ReconstructionPlan, SIMOptics, estimate_calibration
from inference.wiener_sim.reference import load_conv_sim_processor
from inference.wiener_sim.wiener_filter import NumpyBackend, TorchBackend
from simulators import simulate

if TYPE_CHECKING:
    from collections.abc import Callable

RESULTS = Path(__file__).parent / "results" / "wiener_sim_cpu.json"


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"best_ms": 1e3 * min(times), "median_ms": 1e3 * statistics.median(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    raw = simulate("microtubules", "tirf-sim", photons=1000, size=512, seed=0).raw
    frames = raw.astype(np.float32)
    optics = SIMOptics()
    start = time.perf_counter()
    calibration = estimate_calibration(frames, optics)
    estimate_s = time.perf_counter() - start
    otf = OTFModel(optics)
    results: dict[str, Any] = {"input": "512² × 9 → 1024²", "estimate_once_s": estimate_s}
    plans = {"ours_numpy_1thread": NumpyBackend(workers=1),
             "ours_numpy_all_threads": NumpyBackend(workers=-1),
             "ours_torch_cpu": TorchBackend("cpu")}
    if torch.cuda.is_available():
        plans["ours_torch_cuda"] = TorchBackend("cuda")
    for name, backend in plans.items():
        plan = ReconstructionPlan(calibration, otf, backend=backend)
        if backend.name == "torch" and str(backend.device) == "cuda":
            x = backend.frames(frames)

            def run(plan: ReconstructionPlan = plan, x: Any = x) -> None:
                plan.apply(x)
                torch.cuda.synchronize()
            results[name] = timed(run, args.repeats)
        else:
            results[name] = timed(lambda plan=plan: plan.apply(frames), args.repeats)
        print(f"{name}: {results[name]}", flush=True)
    conv = load_conv_sim_processor()
    proc = conv.ConvSimProcessor(angleSteps=3, phaseSteps=3)
    proc.debug = False
    proc.pixelsize, proc.magnification = optics.pixel_um, 1.0
    proc.NA, proc.n, proc.wavelength, proc.eta = optics.na, 1.518, optics.emission_um, 0.8
    background = calibration.background
    proc.calibrate(frames - background)
    results["napari_sim_processor_rfftw"] = timed(
        lambda: proc.reconstruct_rfftw(frames - background), args.repeats)
    print(f"napari: {results['napari_sim_processor_rfftw']}")
    theirs = results["napari_sim_processor_rfftw"]["best_ms"]
    results["speedup_vs_napari"] = {k: theirs / v["best_ms"] for k, v in results.items()
                                    if k.startswith("ours")}
    results["machine"] = {"cpu_count": os.cpu_count(), "torch": torch.__version__,
                          "numpy": np.__version__, "platform": platform.platform(),
                          "cuda": torch.cuda.is_available()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["speedup_vs_napari"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
