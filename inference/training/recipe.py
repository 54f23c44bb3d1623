"""The GPU recipe: official-size DFCAN-SIM, DFCAN-SISR and DFGAN in minutes on one GPU.

    python -m inference.training.recipe --out runs/gpu_recipe            # one H100 / H200
    python -m inference.training.recipe --out /tmp/toy --toy --device cpu  # the CPU check

One command, in order:

1. **Data on the machine.** The scene bank of :mod:`inference.training.bank` (noiseless cells,
   each with its own SIM pattern), rendered by one worker per core; crops are recorded from it
   afresh at 10–800 photons during training.
2. **Three trainings under one wall-time budget.** DFCAN-SIM (9 raw frames in), DFCAN-SISR (one
   WF image in), both the official DFCAN16 (64 features, 4 × 4 FCABs, 128² crops), then DFGAN
   as the SISR generator fine-tuned with the adversarial term. Each run first times a few of
   its own steps and sets its iteration count so that its share of the budget is filled; the
   learning rate then warms up and falls along a cosine to the end (fp16 mixed precision on
   CUDA), the crops drawn ahead by one process per spare core.
3. **Held-out evaluation.** The evaluation matrix (seed 2024, never trained on) of WF,
   Wiener-SIM and the three networks, and the weights copied beside ``recipe.json``, which
   names the device, the budget, every run's iterations, time and validation NRMSE.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from inference.training.config import TrainConfig, parse_config

__all__ = ["RecipeSettings", "calibrate_iterations", "recipe_configs", "run_recipe"]

#: each run's share of the training budget
SHARES = {"dfcan_sim": 0.4, "dfcan_sisr": 0.35, "dfgan": 0.25}


class RecipeSettings:
    """Sizes of one recipe run: the official ones, or a toy for the CPU check."""

    def __init__(self, toy: bool = False) -> None:
        self.toy = toy
        if toy:
            self.model = {"features": 8, "n_groups": 1, "n_blocks": 1, "reduction": 4,
                          "size_psc": 32}
            self.image_size, self.train_cells, self.val_cells = 48, 8, 1
            self.patch, self.batch = 32, 2
            self.val_levels = [20.0, 200.0]
            self.eval_levels = [15.0, 600.0]
            self.eval_sets, self.eval_structures = 1, ["microtubules"]
            self.disc = {"discriminator_widths": [8, 16], "discriminator_stride": 2}
            self.data_workers = 0
        else:
            self.model = {"features": 64, "n_groups": 4, "n_blocks": 4, "reduction": 16,
                          "size_psc": 128}
            self.image_size, self.train_cells, self.val_cells = 160, 1600, 8
            self.patch, self.batch = 128, 8
            self.val_levels = [15.0, 40.0, 100.0, 300.0, 600.0]
            self.eval_levels = [15.0, 25.0, 40.0, 60.0, 100.0, 150.0, 220.0, 320.0, 450.0,
                                600.0]
            self.eval_sets = 5
            self.eval_structures = ["ccp", "er", "microtubules", "factin"]
            self.disc = {}  # the official discriminator
            # a 128² raw-set crop with fresh noise costs ~23 ms of a CPU core: drawn ahead
            self.data_workers = max(1, min(12, (os.cpu_count() or 2) - 2))


def recipe_configs(out: Path, settings: RecipeSettings, lr: float = 5e-4
                   ) -> dict[str, TrainConfig]:
    """Return the three training configs (iterations still to be calibrated)."""
    data = {"kind": "scene_bank", "mode": "tirf-sim", "image_size": settings.image_size,
            "train_cells": settings.train_cells, "val_cells": settings.val_cells,
            "val_photon_levels": settings.val_levels, "bank": str(out / "bank")}
    optim = {"iterations": 1, "batch_size": settings.batch, "patch_size": settings.patch,
             "lr": lr, "schedule": "cosine", "min_lr": lr / 50, "amp": True,
             "data_workers": settings.data_workers}

    def config(name: str, kind: str, **extra: Any) -> TrainConfig:
        channels = 9 if kind == "sim" else 1
        return parse_config({"name": name, "output_dir": str(out / "runs"),
                             "model": {"in_channels": channels, **settings.model},
                             "data": {**data, "input_kind": kind}, "optim": optim, **extra})

    return {
        "dfcan_sim": config("dfcan_sim", "sim"),
        "dfcan_sisr": config("dfcan_sisr", "wf"),
        "dfgan": config("dfgan", "wf", init_weights=str(out / "runs/dfcan_sisr/best.safetensors"),
                        gan=settings.disc),
    }


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def calibrate_iterations(config: TrainConfig, budget_s: float, device: str | None,
                         steps: int = 8) -> tuple[int, float]:
    """Return the iterations that fill ``budget_s`` (validation included) and seconds per step.

    Both come from timing ``steps`` of the config's own training steps (data drawn as the loop
    draws it) after three warm-up steps.
    """
    from inference.training.runs import trainer_class

    with tempfile.TemporaryDirectory() as tmp:
        probe = config.model_copy(update={"init_weights": None})
        trainer = trainer_class(probe)(probe, Path(tmp), progress=False, device=device)
        trainer.prepare_data()
        warmup = 3
        start = 0.0
        for step, (x, y) in enumerate(trainer.batches(0, warmup + steps)):  # as fit draws them
            trainer.step = step
            trainer.train_step(x, y)
            if step == warmup - 1:
                _synchronise(trainer.device)
                start = time.perf_counter()
        _synchronise(trainer.device)
        per_step = (time.perf_counter() - start) / steps
        start = time.perf_counter()
        trainer.validate()
        validation = time.perf_counter() - start
    # about 8 validations per run
    iterations = max(steps, int((budget_s - 8 * validation) / per_step))
    return iterations, per_step


def _with_schedule(config: TrainConfig, iterations: int) -> TrainConfig:
    optim = config.optim.model_copy(update={
        "iterations": iterations, "warmup": max(1, iterations // 20),
        "val_every": max(1, iterations // 8), "checkpoint_every": max(1, iterations // 8)})
    return config.model_copy(update={"optim": optim})


def _device_name(device: str | None) -> str:
    if (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda"):
        return torch.cuda.get_device_name()
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_recipe(out: Path, minutes: float = 8.0, toy: bool = False, device: str | None = None,
               evaluate: bool = True, workers: int | None = None) -> dict[str, Any]:
    """Make the data, train the three models, run the held-out evaluation; return the summary.

    Data and trainings together take ``minutes`` of wall time; the summary is also written to
    ``recipe.json``.
    """
    from inference.training.bank import bank_data
    from inference.training.runs import trainer_class

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = RecipeSettings(toy)
    configs = recipe_configs(out, settings)
    started = time.perf_counter()
    sim = configs["dfcan_sim"]
    bank_data(sim.data, out, sim.optim.patch_size, workers=workers)  # type: ignore[arg-type]
    data_seconds = time.perf_counter() - started
    budget = max(0.0, minutes * 60 - data_seconds)
    runs: dict[str, Any] = {}
    for name, config in configs.items():
        share = budget * SHARES[name]
        iterations, per_step = calibrate_iterations(config, share, device)
        if toy:
            iterations = min(iterations, 6)
        config = _with_schedule(config, iterations)
        begun = time.perf_counter()
        result = trainer_class(config)(config, progress=not toy, device=device).fit()
        runs[name] = {"iterations": result.step, "seconds_per_step": round(per_step, 4),
                      "training_seconds": round(time.perf_counter() - begun, 1),
                      "budget_seconds": round(share, 1),
                      "best_validation_nrmse": result.best_nrmse,
                      "validation_nrmse_input_upsampled":
                          result.history.get("val_nrmse_baseline"),
                      "config": config.model_dump(mode="json")}
    total_training = time.perf_counter() - started
    weights = out / "weights"
    weights.mkdir(exist_ok=True)
    files = {}
    for name, method in (("dfcan_sim", "dfcan-sim"), ("dfcan_sisr", "dfcan-sisr"),
                         ("dfgan", "dfgan")):
        target = weights / f"{name}_official_size.safetensors"
        shutil.copyfile(configs[name].run_dir / "best.safetensors", target)
        files[method] = target
    summary: dict[str, Any] = {
        "recipe": "python -m inference.training.recipe" + (" --toy" if toy else ""),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": _device_name(device), "torch": torch.__version__,
        "budget_minutes": minutes, "data_seconds": round(data_seconds, 1),
        "wall_seconds_data_and_training": round(total_training, 1),
        "runs": runs, "weights": {m: str(p) for m, p in files.items()},
    }
    if evaluate:
        summary["evaluation"] = _evaluate(out, settings, files, device)
    (out / "recipe.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _evaluate(out: Path, settings: RecipeSettings, files: dict[str, Path], device: str | None
              ) -> dict[str, Any]:
    """Run the held-out matrix of the recipe's weights (its report beside recipe.json)."""
    from inference.evaluation import run_matrix, write_report
    from inference.evaluation.config import EvaluationConfig

    config = EvaluationConfig.model_validate({
        "name": "evaluation", "output_dir": str(out),
        "data": {"kind": "simulated", "structures": settings.eval_structures,
                 "photon_levels": settings.eval_levels, "sets_per_cell": settings.eval_sets,
                 "image_size": 128},
        "methods": ["wf", "wiener-sim", "dfcan-sisr", "dfcan-sim", "dfgan"],
        "weights": {m: str(p) for m, p in files.items()},
        "metrics": {"frc": False, "decorrelation": not settings.toy},
        "device": device or ("cuda" if torch.cuda.is_available() else "cpu"),
    })
    started = time.perf_counter()
    result = run_matrix(config, progress=not settings.toy)
    write_report(result, config, out / "evaluation", "python -m inference.training.recipe")
    return {"seconds": round(time.perf_counter() - started, 1),
            "cells": [{"structure": c["structure"], "level": c["level"],
                       "nrmse": {m: s["nrmse"] for m, s in c["methods"].items()},
                       "nrmse_affine": {m: s["nrmse_affine"] for m, s in c["methods"].items()},
                       "dlsr_priority": c["dlsr_priority"]} for c in result.cells]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_recipe"))
    parser.add_argument("--minutes", type=float, default=8.0,
                        help="wall time for the data and the three trainings")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--toy", action="store_true", help="tiny sizes: a check that runs "
                                                           "on a CPU in about a minute")
    parser.add_argument("--no-evaluate", action="store_true")
    parser.add_argument("--workers", type=int, help="processes rendering the bank")
    args = parser.parse_args(argv)
    summary = run_recipe(args.out, args.minutes, args.toy, args.device, not args.no_evaluate,
                         args.workers)
    for name, run in summary["runs"].items():
        print(f"{name}: {run['iterations']} iterations in {run['training_seconds']} s, "
              f"best validation NRMSE {run['best_validation_nrmse']:.4f}")
    print(f"{args.out / 'recipe.json'} ({summary['device']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
