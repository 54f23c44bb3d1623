"""The demo weights shipped in the package, how they were trained, and how well they do.

``python -m inference.training.demo_weights`` copies each run's ``best.safetensors`` into
``inference/weights/`` (with ``--install``) and writes ``inference/weights/demo_weights.json``:
the command and config that trained each file, its training time and validation NRMSE, and the
held-out evaluation (:func:`inference.training.heldout.evaluate_weights`) against the
upsampled wide-field image at three photon levels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["DEMO_WEIGHTS", "WEIGHTS_DIR", "demo_weights_path", "describe_run", "main"]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SUMMARY = WEIGHTS_DIR / "demo_weights.json"
CONFIGS = Path(__file__).resolve().parent / "configs"

#: name -> (file in inference/weights, training config in inference/training/configs)
DEMO_WEIGHTS: dict[str, tuple[str, str]] = {
    "dfcan-sisr": ("dfcan_sisr_demo.safetensors", "dfcan_sisr_tirf.yaml"),
    "dfcan-sim": ("dfcan_sim_demo.safetensors", "dfcan_sim_tirf_lowdose2.yaml"),
    "dfgan": ("dfgan_demo.safetensors", "dfgan_tirf.yaml"),
}
#: runs whose final weights (``last.safetensors``) ship instead of the best-validated ones,
#: and why
SHIP_FINAL: dict[str, str] = {
    "dfcan-sim": "the best validation NRMSE (iteration 500 of 5000) was a fluctuation of the 40 "
                 "validation crops (validation loss 0.0045 there, 0.0038-0.0039 over the last "
                 "1,500 iterations); the final weights score better on the held-out matrix "
                 "(affine-fitted NRMSE lower in all 24 cells tested)",
}
#: runs trained in stages: the earlier stages' configs, in order
STAGES: dict[str, tuple[str, ...]] = {
    "dfcan-sim": ("dfcan_sim_tirf.yaml", "dfcan_sim_tirf_lowdose1.yaml"),
}


def demo_weights_path(name: str) -> Path:
    """Return the shipped weights file for ``name`` (``dfcan-sisr``, ``dfcan-sim`` or ``dfgan``)."""
    if name not in DEMO_WEIGHTS:
        raise ValueError(f"unknown demo weights {name!r} (known: {', '.join(DEMO_WEIGHTS)})")
    path = WEIGHTS_DIR / DEMO_WEIGHTS[name][0]
    if not path.is_file():
        raise FileNotFoundError(f"demo weights not installed: {path}")
    return path


def describe_run(run_dir: Path, config_name: str) -> dict[str, Any]:
    """Summarise what a run did: its command, iterations, time, best validation NRMSE."""
    history = json.loads((run_dir / "history.json").read_text())
    best = min(range(len(history["val_nrmse"])), key=history["val_nrmse"].__getitem__)
    return {
        "command": f"livesr train inference/training/configs/{config_name}",
        "config": f"inference/training/configs/{config_name}",
        "iterations": len(history["loss"]),
        "training_seconds": round(_training_seconds(run_dir, history), 1),
        "best_validation_step": history["val_step"][best],
        "best_validation_nrmse": history["val_nrmse"][best],
        "final_validation_nrmse": history["val_nrmse"][-1],
        "validation_nrmse_input_upsampled": history.get("val_nrmse_baseline"),
    }


def _training_seconds(run_dir: Path, history: dict[str, Any]) -> float:
    """Return the wall time of the training in seconds.

    For a run stopped from outside (no end recorded): from the start (its config written) to its
    last checkpoint, pool simulation included.
    """
    if history.get("seconds"):
        return float(sum(history["seconds"]))
    return (run_dir / "checkpoint.pt").stat().st_mtime - (run_dir / "config.yaml").stat().st_mtime


def main(argv: list[str] | None = None) -> int:
    """Write ``demo_weights.json`` (with ``--install``, copy the runs' weights first); return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the runs' folder")
    parser.add_argument("--install", action="store_true",
                        help="copy each run's best.safetensors into inference/weights/")
    parser.add_argument("--cells", type=int, default=16, help="held-out cells per level")
    args = parser.parse_args(argv)
    from inference.training.heldout import evaluate_weights

    previous = json.loads(SUMMARY.read_text()) if SUMMARY.is_file() else {"weights": {}}
    summary: dict[str, Any] = {"weights": {}}
    for name, (file_name, config_name) in DEMO_WEIGHTS.items():
        run_dir = args.runs / Path(config_name).stem
        target = WEIGHTS_DIR / file_name
        shipped = "last.safetensors" if name in SHIP_FINAL else "best.safetensors"
        if args.install:
            shutil.copyfile(run_dir / shipped, target)
        # without the run folder, keep what the last run of this script recorded
        entry = (describe_run(run_dir, config_name) if (run_dir / "history.json").is_file()
                 else dict(previous["weights"].get(name, {})))
        entry.update(file=f"inference/weights/{file_name}", bytes=target.stat().st_size,
                     sha256=hashlib.sha256(target.read_bytes()).hexdigest(),
                     shipped=shipped.removesuffix(".safetensors"))
        if name in SHIP_FINAL:
            entry["why_final"] = SHIP_FINAL[name]
        if name in STAGES:
            entry["earlier_stages"] = [
                {"config": f"inference/training/configs/{stage}",
                 **({k: v for k, v in describe_run(args.runs / Path(stage).stem, stage).items()
                     if k in ("iterations", "training_seconds")}
                    if (args.runs / Path(stage).stem / "history.json").is_file() else {})}
                for stage in STAGES[name]]
        summary["weights"][name] = entry
    paths = {name: WEIGHTS_DIR / f for name, (f, _) in DEMO_WEIGHTS.items()}
    summary["heldout"] = evaluate_weights(paths, n_cells=args.cells)
    SUMMARY.write_text(json.dumps(summary, indent=1) + "\n")
    for level, scores in summary["heldout"]["mean_nrmse"].items():
        print(f"{level:>4} photons: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    print(f"wrote {SUMMARY}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
