"""DFCAN inference speed per backend and precision: the measurements behind ``livesr bench``.

For each input size and configuration: the build time, then ms per frame (p50, p99) of the
network on a normalised input already on the device (CUDA: synchronised after each frame),
frames/s, the ratio to torch eager fp32 (the reference network) of the same run, and the share
of this device's dense matmul rate (measured in the same run) that the network's FLOPs reach.
:func:`benchmark` runs them and returns the result as a JSON-ready dict; :func:`plot` draws it.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.backends.cpu_choice import (
    ACCURATE,
    CANDIDATES,
    cpu_flags,
    cpu_model,
    record_choice,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ACCURATE", "BASELINE", "CPU_SIZES", "GPU_SIZES", "Config", "benchmark",
           "configurations", "machine", "plot", "test_inputs"]

CPU_SIZES = (128, 256, 512)
GPU_SIZES = (256, 512, 1024)
BASELINE = "torch-eager-fp32"


@dataclass(frozen=True)
class Config:
    """One way to run the network: a label and a backend factory."""

    label: str
    make: Callable[[], Any]


def configurations(model: Any, device: str, cache_dir: Path,
                   calibration: list[Any] | None = None) -> list[Config]:
    """Return the configurations benchmarked on ``device``, the baseline first.

    ``calibration``: the inputs int8 is calibrated on (not the ones its error is measured on).
    """
    from inference.backends.onnxruntime_backend import OnnxRuntimeBackend
    from inference.backends.torch_backend import TorchBackend

    if device == "cpu":
        return [
            Config(BASELINE, lambda: TorchBackend(model, "cpu", dft="fft", conv="direct")),
            Config("torch-fp32", lambda: TorchBackend(model, "cpu")),
            Config("torch-fp32-direct", lambda: TorchBackend(model, "cpu", conv="direct")),
            Config("torch-bf16", lambda: TorchBackend(model, "cpu", "bf16")),
            Config("torch-fp32-compile", lambda: TorchBackend(model, "cpu", compile="default")),
            Config("torch-fp32-direct-compile",
                   lambda: TorchBackend(model, "cpu", conv="direct", compile="default")),
            Config("onnxruntime-fp32", lambda: OnnxRuntimeBackend(model, cache_dir=cache_dir)),
            Config("onnxruntime-int8", lambda: OnnxRuntimeBackend(
                model, "int8", cache_dir=cache_dir, calibration=calibration)),
        ]

    def torch_cfg(precision: str, cl: bool, graphs: bool, compile: str | None = None) -> Config:
        label = "-".join(["torch", precision, *(["cl"] if cl else []),
                          *(["graphs"] if graphs else []), *(["compile"] if compile else [])])
        return Config(label, lambda: TorchBackend(model, "cuda", precision, channels_last=cl,
                                                  cuda_graphs=graphs, compile=compile))

    configs = [
        Config(BASELINE, lambda: TorchBackend(model, "cuda", "fp32", dft="fft",
                                              channels_last=False, cuda_graphs=False)),
        torch_cfg("fp32", False, False),
        torch_cfg("fp16", False, False),
        torch_cfg("fp16", True, False),
        torch_cfg("fp16", True, True),
        torch_cfg("bf16", True, True),
        torch_cfg("fp16", True, True, "max-autotune"),
        torch_cfg("bf16", True, True, "max-autotune"),
    ]
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        from inference.backends.tensorrt_backend import TensorRTBackend

        configs.append(Config("tensorrt-fp16",
                              lambda: TensorRTBackend(model, "fp16", cache_dir=cache_dir)))
    return configs


def network_flops(model: Any, size: int) -> float:
    """Count the FLOPs of one forward at ``size²``.

    Convolutions and matrix products of the matmul-DFT network, counted by PyTorch's FLOP counter
    on the meta device (nothing is computed).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from inference.models.dft import with_matmul_dft

    net = with_matmul_dft(model, size, size).to("meta")
    x = torch.empty(1, model.config.in_channels, size, size, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    return float(counter.get_total_flops())


def matmul_rate(device: str) -> dict[str, Any]:
    """Dense matmul FLOP/s measured here: bf16 and fp16 8192² on CUDA, fp32 1024² on the CPU."""
    import torch

    rates: dict[str, Any] = {}
    if device == "cpu":
        n, dtypes, reps = 1024, [torch.float32], 5
    else:
        n, dtypes, reps = 8192, [torch.bfloat16, torch.float16], 20
    for dtype in dtypes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        times = []
        for _ in range(reps + 2):
            _sync(device)
            start = time.perf_counter()
            torch.matmul(a, b)
            _sync(device)
            times.append(time.perf_counter() - start)
        best = min(times[2:])
        rates[str(dtype).removeprefix("torch.")] = 2 * n**3 / best
    rates["size"] = n
    rates["peak"] = max(v for k, v in rates.items() if k != "size")
    return rates


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def test_inputs(size: int, channels: int, reference: Any | None) -> tuple[Any, Any]:
    """The input the error is measured on and a different one int8 is calibrated on.

    ``reference`` (a 2-D image, e.g. the golden input) is mirrored out to ``size²`` and min–max
    normalised; the calibration input is the same image transposed and flipped (other content,
    the same statistics). Without one: smooth random images.
    """
    import numpy as np

    def normalised(image: Any) -> Any:
        image = np.asarray(image, np.float64)
        reps = (-(-size // image.shape[0]), -(-size // image.shape[1]))
        tile = np.block([[image if (i + j) % 2 == 0 else image[::-1, ::-1]
                          for j in range(reps[1])] for i in range(reps[0])])[:size, :size]
        tile = (tile - tile.min()) / (np.ptp(tile) + 1e-12)
        return np.repeat(tile[None, None], channels, axis=1).astype(np.float32)

    if reference is None:
        rng = np.random.default_rng(0)
        from numpy.fft import irfft2, rfft2

        noise = rng.random((size, size))
        ky = np.fft.fftfreq(size)[:, None]
        kx = np.fft.rfftfreq(size)[None, :]
        reference = irfft2(rfft2(noise) * np.exp(-(ky**2 + kx**2) / 0.01), s=(size, size))
    reference = np.asarray(reference)
    return normalised(reference), normalised(reference.T[::-1])


@dataclass
class Prepared:
    """A configuration built for one size: one frame to time, its output, its build time."""

    description: str
    frame: Callable[[], None]
    output: Any
    build_s: float


def prepare_config(config: Config, size: int, device: str, x_np: Any) -> Prepared:
    """Build one configuration at one size and run it once (its output)."""
    import numpy as np
    import torch

    from inference.backends.torch_backend import TorchBackend

    start = time.perf_counter()
    backend = config.make()
    backend.prepare(size, size)
    build_s = time.perf_counter() - start
    output = np.asarray(backend.infer(x_np), np.float32)
    if isinstance(backend, TorchBackend):
        x = torch.from_numpy(x_np).to(backend.device)

        def frame() -> None:
            backend.forward(x)
            _sync(device)
    else:
        def frame() -> None:
            backend.infer(x_np)

    return Prepared(backend.description, frame, output, build_s)


def time_round_robin(prepared: dict[str, Prepared], warmup: int,
                     repeats: int) -> dict[str, list[float]]:
    """Time ``repeats`` frames of each configuration, one of each in turn; seconds per frame.

    Taking turns spreads slow drifts of the machine's speed (other tenants, clocks) over all
    configurations alike, so their ratios hold even where their absolute times wander.
    """
    for item in prepared.values():
        for _ in range(warmup):
            item.frame()
    times: dict[str, list[float]] = {label: [] for label in prepared}
    for _ in range(repeats):
        for label, item in prepared.items():
            t0 = time.perf_counter()
            item.frame()
            times[label].append(time.perf_counter() - t0)
    return times


def summary(times_s: list[float]) -> dict[str, Any]:
    """p50, p99, mean (ms), frames/s and the count of timed frames."""
    import numpy as np

    ms = np.array(times_s) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(statistics.fmean(ms)),
        "frames_per_s": float(1e3 / np.percentile(ms, 50)),
        "runs": len(ms),
    }


def describe(row: dict[str, Any]) -> str:
    """One result as a line of text."""
    head = f"{row['size']:>5}² {row['config']:<28}"
    if "p50_ms" not in row:
        return f"{head} failed: {row['error']}"
    return (f"{head} p50 {row['p50_ms']:9.2f} ms  p99 {row['p99_ms']:9.2f} ms  "
            f"{row['frames_per_s']:8.1f} fps  ×{row['ratio_to_eager_fp32'] or 0:5.2f}  "
            f"{100 * row['share_of_matmul_rate']:5.1f}% of matmul rate  "
            f"max|Δ| {row.get('max_abs_error', float('nan')):.1e}")


def machine(device: str) -> dict[str, Any]:
    """Describe this machine: CPU, torch and Python versions, platform, and the GPU on CUDA."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_flags": sorted(cpu_flags()),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
        info["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
        info["cuda"] = torch.version.cuda
    return info


def benchmark(model: Any, sizes: list[int], device: str, *, warmup: int,
              repeats_for: Callable[[int], int], labels: list[str] | None = None,
              weights: str = "", reference: Any | None = None,
              reference_name: str = "smooth random image") -> dict[str, Any]:
    """Time every configuration (or those in ``labels``, plus the baseline) at each size.

    Each row also holds the output's max abs error against the baseline's on the same input
    (``reference`` mirrored out to the size; see :func:`test_inputs`).
    """
    import numpy as np
    from rich.progress import Progress

    info = machine(device)
    rate = matmul_rate(device)
    print(f"dense matmul on {info.get('gpu', info['cpu'])}: "
          + ", ".join(f"{k} {v / 1e12:.2f} TFLOP/s" for k, v in rate.items()
                      if k not in ("size", "peak")))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        calibrations: list[Any] = []
        chosen: dict[int, str] = {}
        configs = configurations(model, device, Path(tmp), calibrations)
        if labels:
            unknown = set(labels) - {c.label for c in configs}
            if unknown:
                raise ValueError(f"unknown --configs {sorted(unknown)}; here: "
                                 f"{', '.join(c.label for c in configs)}")
            configs = [c for c in configs if c.label in labels or c.label == BASELINE]
        with Progress() as progress:
            task = progress.add_task("benchmark", total=len(sizes) * len(configs))
            for size in sizes:
                flops = network_flops(model, size)
                x_np, calibration = test_inputs(size, model.config.in_channels, reference)
                calibrations[:] = [calibration]
                prepared: dict[str, Prepared] = {}
                failed: dict[str, str] = {}
                for config in configs:
                    progress.update(task, description=f"{size}² build {config.label}")
                    try:
                        prepared[config.label] = prepare_config(config, size, device, x_np)
                    except Exception as exc:  # a configuration that fails is recorded
                        failed[config.label] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                        traceback.print_exc(limit=2)
                progress.update(task, description=f"{size}² timing, round robin")
                times = time_round_robin(prepared, warmup, repeats_for(size))
                baseline = prepared.get(BASELINE)
                baseline_ms = float(np.median(times[BASELINE])) * 1e3 if baseline else None
                for config in configs:
                    row: dict[str, Any] = {"size": size, "config": config.label,
                                           "gflop_per_frame": flops / 1e9}
                    if config.label in failed:
                        row["error"] = failed[config.label]
                    else:
                        item = prepared[config.label]
                        row.update({"backend": item.description, "build_s": item.build_s,
                                    **summary(times[config.label])})
                        if baseline is not None:
                            row["max_abs_error"] = float(abs(item.output - baseline.output).max())
                        row["ratio_to_eager_fp32"] = (baseline_ms / row["p50_ms"]
                                                      if baseline_ms else None)
                        row["share_of_matmul_rate"] = flops / (row["p50_ms"] / 1e3) / rate["peak"]
                    progress.console.print(describe(row), soft_wrap=True)
                    rows.append(row)
                    progress.advance(task)
                prepared.clear()
                if device == "cpu":
                    accurate = {r["config"]: r["p50_ms"] for r in rows
                                if r["size"] == size and r["config"] in CANDIDATES
                                and r.get("max_abs_error", 1.0) <= ACCURATE}
                    if accurate:
                        from inference.backends.base import default_cache_dir

                        order = record_choice(default_cache_dir(), size, accurate, "livesr bench")
                        progress.console.print(f"{size}²: auto on this CPU now runs {order[0]}")
                        chosen[size] = order[0]
    return {
        "benchmark": "DFCAN forward per frame, batch 1, normalised input on the device",
        "model": {"weights": weights, **model.config.model_dump()},
        "method": (
            f"per size: every configuration built, {warmup} warm-up frames each, then the timed "
            "frames round robin (one frame of each configuration in turn); p50/p99 of ms per "
            "frame (CUDA synchronised per frame); ratio = eager fp32 p50 / p50 in this run; "
            "share = FLOPs per frame (convs + matmuls, torch FLOP counter) / p50 / the dense "
            f"matmul rate measured in this run ({rate['size']}², best dtype); max_abs_error = "
            "max |output − baseline output| (sigmoid output, before post-processing) on "
            f"{reference_name} mirrored out to the size; int8 calibrated on the same image "
            "transposed and flipped"
        ),
        "accuracy_bound": ACCURATE,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device,
        "machine": info,
        "matmul_flops_per_s": rate,
        "results": rows,
        "auto_cpu_choice": {str(k): v for k, v in chosen.items()},
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Plot grouped bars: ms per frame (p50, log scale) per size and configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in result["results"] if "p50_ms" in r]
    sizes = sorted({r["size"] for r in rows})
    labels = list(dict.fromkeys(r["config"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(sizes) * len(labels) / 3), 4.5))
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        values = [next((r["p50_ms"] for r in rows if r["size"] == s and r["config"] == label),
                       np.nan) for s in sizes]
        bars = ax.bar(np.arange(len(sizes)) + i * width, values, width, label=label)
        for bar, row_size in zip(bars, sizes, strict=True):
            row = next((r for r in rows if r["size"] == row_size and r["config"] == label), None)
            if row and row.get("ratio_to_eager_fp32"):
                ax.annotate(f"×{row['ratio_to_eager_fp32']:.1f}",
                            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(sizes)) + width * (len(labels) - 1) / 2)
    ax.set_xticklabels([f"{s}² → {s * result['model']['scale']}²" for s in sizes])
    ax.set_yscale("log")
    ax.set_ylabel("ms per frame (p50)")
    where = result["machine"].get("gpu") or result["machine"]["cpu"]
    ax.set_title(f"DFCAN inference on {where}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
