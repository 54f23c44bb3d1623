"""Training speed on this machine: seconds per iteration and samples/s per configuration.

    python benchmarks/bench_training.py            # JSON: benchmarks/results/training_cpu.json
    python benchmarks/bench_training.py --quick    # fewer steps, no official-size model
    python benchmarks/bench_training.py --compile  # also torch.compile (minutes to compile)

Each configuration: a DFCAN (or DFGAN) training step as the trainer takes it (forward,
``MSE + 0.1·(1 − SSIM)``, backward, Adam), batch 4, on random crops; two warm-up steps, then the
median of the timed ones. Beside the steps: what a batch of crops costs from the fixed pool and
from the scene bank, what rendering a cell in the loop would cost, one validation image, and how
far bf16 autocast moves the loss and the gradient from fp32 on one batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dfcan import log, machine_info

from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.dfgan import Discriminator, DiscriminatorConfig
from inference.training.losses import dfcan_loss, dfgan_generator_loss
from inference.training.trainer import cpu_has_bf16

if TYPE_CHECKING:
    from collections.abc import Callable

RESULTS = Path(__file__).parent / "results" / "training_cpu.json"
SHIPPED = DFCANConfig(in_channels=9, features=32, n_groups=2, n_blocks=2, reduction=8,
                      size_psc=64)
OFFICIAL = DFCANConfig(in_channels=9)


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return sorted(f for f in set(flags) if f.startswith(("avx512_bf16", "amx", "avx512f",
                                                         "avx512_vnni", "avx_vnni")))


def step_fn(config: DFCANConfig, patch: int, bf16: bool, channels_last: bool = False,
            compile_model: bool = False, gan: bool = False
            ) -> Callable[[], None]:
    torch.manual_seed(0)
    net: Any = DFCAN(config)
    x = torch.rand(4, config.in_channels, patch, patch)
    y = torch.rand(4, 1, patch * config.scale, patch * config.scale)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), 1e-4)
    model = torch.compile(net) if compile_model else net
    disc = (Discriminator(DiscriminatorConfig(widths=(16, 32, 64, 128), stride=2))
            if gan else None)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            judged = disc(out).float() if disc is not None else None
        loss = (dfgan_generator_loss(out.float(), y, judged) if judged is not None
                else dfcan_loss(out.float(), y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def time_steps(step: Callable[[], None], steps: int, warmup: int = 2) -> dict[str, float]:
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    return {"warmup_s": round(first, 3), "step_s": round(median, 4),
            "best_step_s": round(min(times), 4), "iterations_per_s": round(1 / median, 3),
            "samples_per_s": round(4 / median, 2), "steps": steps}


def bf16_error(config: DFCANConfig, patch: int) -> dict[str, float]:
    """Loss and gradient of one batch under bf16 autocast against fp32."""
    torch.manual_seed(1)
    net = DFCAN(config)
    x = torch.rand(4, config.in_channels, patch, patch)
    y = torch.rand(4, 1, 2 * patch, 2 * patch)
    results = []
    for bf16 in (False, True):
        net.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = dfcan_loss(out.float(), y)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        results.append((float(loss.detach()), grad.clone(), out.detach().float()))
    (l32, g32, o32), (l16, g16, o16) = results
    return {"loss_rel_diff": abs(l16 - l32) / l32,
            "grad_cosine": float(torch.nn.functional.cosine_similarity(g32, g16, dim=0)),
            "output_max_abs_diff": float((o32 - o16).abs().max())}


def data_costs() -> dict[str, float]:
    """Seconds per batch of 4 crops from the pool and the bank, and per rendered cell."""
    from inference.training.bank import BankSampler, build_bank
    from inference.training.config import SceneBankData
    from inference.training.patches import ImagePair, PatchSampler
    from simulators.render import render_set

    start = time.perf_counter()
    scene = render_set("microtubules", "tirf-sim", 128, 5)
    render = time.perf_counter() - start
    data = SceneBankData(train_cells=4)
    with tempfile.TemporaryDirectory() as tmp:
        bank = build_bank(data, 0, 4, Path(tmp) / "bank")
        sampler = BankSampler(bank, data, 64)
        rng = np.random.default_rng(0)
        sampler.batch(rng, 4)
        start = time.perf_counter()
        for _ in range(20):
            sampler.batch(rng, 4)
        bank_batch = (time.perf_counter() - start) / 20
    pool = PatchSampler([ImagePair(scene.at_photons(100, seed=0).raw.astype(np.float32),
                                   scene.gt, "cell")], 64)
    start = time.perf_counter()
    for _ in range(20):
        pool.batch(rng, 4)
    pool_batch = (time.perf_counter() - start) / 20
    net = DFCAN(SHIPPED).eval()
    with torch.no_grad():
        net(torch.rand(1, 9, 128, 128))
        start = time.perf_counter()
        for _ in range(5):
            net(torch.rand(1, 9, 128, 128))
        validation = (time.perf_counter() - start) / 5
    return {"render_cell_128_s": round(render, 3), "bank_batch_s": round(bank_batch, 4),
            "pool_batch_s": round(pool_batch, 4),
            "render_in_loop_batch_s": round(4 * render, 3),
            "validation_image_128_s": round(validation, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, no official size")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    steps = 3 if args.quick else 6
    # bf16 is timed whether this CPU has it natively or oneDNN emulates it on AVX-512
    native = cpu_has_bf16()
    configs: list[tuple[str, DFCANConfig, int, dict[str, Any], int]] = [
        ("shipped 32x2x2, 64², fp32", SHIPPED, 64, {"bf16": False}, 2),
        ("shipped 32x2x2, 64², fp32, 1 thread", SHIPPED, 64, {"bf16": False}, 1),
        ("shipped 32x2x2, 64², fp32, channels_last", SHIPPED, 64,
         {"bf16": False, "channels_last": True}, 2),
        ("shipped 32x2x2, 64², bf16", SHIPPED, 64, {"bf16": True}, 2),
        ("shipped 32x2x2, 64², bf16, 1 thread", SHIPPED, 64, {"bf16": True}, 1),
        ("shipped 32x2x2, 64², bf16, channels_last", SHIPPED, 64,
         {"bf16": True, "channels_last": True}, 2),
        ("DFGAN, shipped generator + small discriminator, 64², fp32", SHIPPED, 64,
         {"bf16": False, "gan": True}, 2),
    ]
    if args.compile:
        configs.append(("shipped 32x2x2, 64², torch.compile", SHIPPED, 64,
                        {"bf16": False, "compile_model": True}, 2))
    if not args.quick:
        configs.append(("official 64x4x4, 128², fp32", OFFICIAL, 128, {"bf16": False}, 2))
        configs.append(("official 64x4x4, 128², bf16", OFFICIAL, 128, {"bf16": True}, 2))
    rows = []
    for label, config, patch, options, threads in configs:
        torch.set_num_threads(threads)
        try:
            timing = time_steps(step_fn(config, patch, **options),
                                steps if patch == 64 else max(2, steps // 2))
        except Exception as exc:  # torch.compile may fail on a machine: say why
            timing = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        rows.append({"configuration": label, "threads": threads, **timing})
        log(f"{label}, {threads} thread(s): {timing}")
    torch.set_num_threads(2)
    costs = data_costs()
    log(f"data: {costs}")
    errors = {"shipped 32x2x2, 64²": bf16_error(SHIPPED, 64)}
    log(f"bf16 against fp32: {errors}")
    one_thread = next(r for r in rows
                      if r["configuration"] == "shipped 32x2x2, 64², fp32, 1 thread")
    # the old demo run: 1 thread, crops from the pool, 40 validation images every 250 iterations
    accounted = (one_thread["step_s"] + costs["pool_batch_s"]
                 + 40 * costs["validation_image_128_s"] / 250)
    costs["old_demo_run_accounted_s_per_iteration"] = round(accounted, 4)
    costs["old_demo_run_logged_s_per_iteration"] = round(4013.2 / 1500, 3)
    log(f"old demo run: {accounted:.3f} s per iteration accounted for, 2.675 s logged")
    base = next(r for r in rows if r["configuration"] == "shipped 32x2x2, 64², fp32")
    for row in rows:
        if "step_s" in row and "step_s" in base:
            row["speed_vs_shipped_fp32"] = round(base["step_s"] / row["step_s"], 3)
    result = {"benchmark": "training steps, batch 4",
              "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": {**machine_info(), "cpu_flags": cpu_flags(), "native_bf16": native},
              "steps": rows, "data": costs, "bf16_vs_fp32": errors}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
