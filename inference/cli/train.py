"""``livesr train CONFIG.yaml`` and ``livesr train --resume RUN_DIR``.

Several processes (GPUs) through torchrun, the same command:
``torchrun --nproc_per_node N -m acquisition.cli train CONFIG.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to the ``livesr`` parser; return its parser."""
    parser = subparsers.add_parser(
        "train",
        help="train DFCAN or DFGAN from a YAML config",
        description="Train DFCAN (or DFGAN with a 'gan' section) on BioSR, TIFF pairs or the "
        "simulator. The run folder (OUTPUT_DIR/NAME) holds config.yaml, checkpoint.pt, "
        "best.safetensors, last.safetensors, history.json and curves.png.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("config", nargs="?", help="training config (YAML)")
    source.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    parser.add_argument("--output-dir", help="override the config's output_dir")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or log")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train from the config (or resume a run folder); print the best validation NRMSE."""
    from inference.training.config import load_config
    from inference.training.runs import resume_run, trainer_class

    options = {"progress": not args.no_progress, "device": args.device}
    if args.resume:
        result = resume_run(args.resume, **options)
    else:
        overrides = {"output_dir": args.output_dir} if args.output_dir else {}
        config = load_config(args.config, **overrides)
        result = trainer_class(config)(config, **options).fit()
    if not args.no_progress:
        print(f"{result.run_dir}: iteration {result.step}, best validation NRMSE "
              f"{result.best_nrmse:.4f}")
    return 0
