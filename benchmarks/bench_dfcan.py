"""CPU forward time of DFCAN (official DFCAN16, 1 channel, 2×): torch eager vs torch.compile.

    python benchmarks/bench_dfcan.py                 # 128², 256², 512²; JSON to benchmarks/results
    python benchmarks/bench_dfcan.py --sizes 128 --repeats 1 --no-compile

Each size: one first call (warm-up, or compilation), then ``repeats`` timed forwards (3 / 2 / 1
at 128² / 256² / 512²); best and median are reported, the ratio uses the best. If
``torch.compile`` fails, the reason is recorded in the JSON instead of crashing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from inference.models.dfcan import DFCAN, DFCANConfig

if TYPE_CHECKING:
    from collections.abc import Callable

RESULTS = Path(__file__).parent / "results" / "dfcan_cpu.json"
DEFAULT_REPEATS = {128: 3, 256: 2, 512: 1}


def machine_info() -> dict[str, Any]:
    """CPU, cores and software versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def time_forward(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int
) -> tuple[dict[str, float], torch.Tensor]:
    """Seconds of the first call (warm-up or compilation), best and median of ``repeats`` more
    (best is the least disturbed by other work on a shared machine), and the last output.
    """
    with torch.inference_mode():
        start = time.perf_counter()
        out = fn(x)
        first = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = fn(x)
            times.append(time.perf_counter() - start)
    stats = {
        "first_call_s": first,
        "best_ms": 1e3 * min(times),
        "median_ms": 1e3 * statistics.median(times),
        "runs": repeats,
    }
    return stats, out


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per size (default 3/2/1)"
    )
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = DFCAN(DFCANConfig()).eval()
    info = machine_info()
    log(f"DFCAN16 1ch 2x on {info['cpu']} ({info['cpu_count']} cores, torch {info['torch']})")
    compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
    compile_error: str | None = None
    if not args.no_compile:
        try:
            compiled = torch.compile(model, dynamic=False)  # type: ignore[assignment]
        except Exception as exc:  # record, do not crash
            compile_error = f"{type(exc).__name__}: {exc}"

    rows: list[dict[str, Any]] = []
    for i, size in enumerate(args.sizes, start=1):
        repeats = args.repeats or DEFAULT_REPEATS.get(size, 1)
        x = torch.rand(1, 1, size, size)
        log(f"({i}/{len(args.sizes)}) {size}x{size}: eager, 1 warm-up + {repeats} runs ...")
        eager, reference = time_forward(model, x, repeats)
        row: dict[str, Any] = {"size": size, "eager": eager}
        log(f"    eager    best {eager['best_ms']:9.1f} ms, median {eager['median_ms']:9.1f} ms")
        if compiled is not None and compile_error is None:
            log(f"    compiling for {size}x{size}, then {repeats} runs ...")
            try:
                stats, out = time_forward(compiled, x, repeats)
                stats["max_abs_diff_vs_eager"] = (out - reference).abs().max().item()
                ratio = eager["best_ms"] / stats["best_ms"]
                row["compiled"] = stats
                row["speedup_compiled_vs_eager"] = ratio
                log(
                    f"    compiled best {stats['best_ms']:9.1f} ms, "
                    f"median {stats['median_ms']:9.1f}"
                    f" ms (compile + first call {stats['first_call_s']:.0f} s); eager/compiled "
                    f"= {ratio:.2f}x; max |diff| {stats['max_abs_diff_vs_eager']:.1e}"
                )
            except Exception as exc:
                compile_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                row["compiled_error"] = compile_error
                log(f"    torch.compile failed: {compile_error}")
                traceback.print_exc(limit=3)
        rows.append(row)

    result = {
        "benchmark": "DFCAN16 forward, batch 1, 1 channel, scale 2, float32, CPU, inference_mode",
        "method": "per size: 1 first call (warm-up / compilation, dynamic=False), then `runs` "
        "timed calls; ratio = eager best / compiled best",
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "torch_compile": "disabled"
        if args.no_compile
        else ("ok" if compile_error is None else "failed"),
        "torch_compile_error": compile_error,
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.output}")
    print(f"{'size':>6} {'eager ms':>10} {'compiled ms':>12} {'ratio':>7}  (best of runs)")
    for row in rows:
        comp = row.get("compiled", {}).get("best_ms")
        ratio = row.get("speedup_compiled_vs_eager")
        print(
            f"{row['size']:>6} {row['eager']['best_ms']:>10.1f} "
            f"{comp if comp is None else f'{comp:.1f}':>12} "
            f"{'-' if ratio is None else f'{ratio:.2f}x':>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
