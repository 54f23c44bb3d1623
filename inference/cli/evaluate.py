"""``livesr evaluate CONFIG.yaml``: the evaluation matrix (:mod:`inference.evaluation`).

Written as CSV, JSON and PNG. The config file is read here, where its errors can be located in it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yamlconfig.located import ConfigError, load_model

if TYPE_CHECKING:
    import argparse

    from inference.evaluation.config import EvaluationConfig

__all__ = ["add_parser", "load_evaluation_config", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to the ``livesr`` parser; return its parser."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score reconstructions over structures × photon levels",
        description="Reconstruct held-out simulated sets (or BioSR data) with wide-field, "
        "Wiener-SIM and the DLSR models, score them against the ground truth (NRMSE, SSIM, "
        "MS-SSIM, PSNR, decorrelation and FRC resolution), and write OUT/NAME/sets.csv, "
        "matrix.csv, matrix.json, nrmse_heatmaps.png, decision_map.png and curves.png.",
    )
    parser.add_argument("config", help="evaluation config (YAML)")
    parser.add_argument("--out", help="output folder (default: the config's output_dir/name)")
    parser.add_argument("--summarise-only", action="store_true",
                        help="re-summarise the sets.csv already in the output folder with the "
                             "config's criteria and redraw the plots (no reconstruction)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run (or, with ``--summarise-only``, re-summarise) the matrix and write the report."""
    from inference.evaluation import run_matrix, write_report
    from inference.evaluation.report import read_result

    config = load_evaluation_config(args.config)
    out_dir = Path(args.out) if args.out else config.output_path()
    if args.summarise_only:
        result = read_result(config, out_dir)
        previous = json.loads((out_dir / "matrix.json").read_text())
        command = previous.get("command") or f"livesr evaluate {args.config}"
    else:
        result = run_matrix(config, progress=not args.no_progress)
        command = f"livesr evaluate {args.config}"
    files = write_report(result, config, out_dir, command)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if not args.no_progress:
        print(f"{len(result.rows)} scores of {len(result.cells)} cells in "
              f"{result.seconds:.0f} s; wrote {', '.join(str(f) for f in files)}")
    return 0


def load_evaluation_config(path: str | Path) -> EvaluationConfig:
    """Read and validate an evaluation config.

    A :class:`ConfigError` lists every located error, a weights file or BioSR folder that does
    not exist among them.
    """
    from inference.evaluation.config import EvaluationConfig

    config, source = load_model(path, EvaluationConfig)
    config.relative_to(Path(path).resolve().parent)
    missing = []
    for method, value in config.weights.items():
        weights = config.resolve(Path(value)) if value != "demo" else None
        if weights is not None and not weights.is_file():
            missing.append(source.error(("weights", method), f"no such file: {weights}"))
    if config.data.kind == "biosr" and not config.resolve(config.data.root).is_dir():
        missing.append(source.error(("data", "root"), f"no such folder: "
                                                      f"{config.resolve(config.data.root)}"))
    if missing:
        raise ConfigError(missing)
    return config
