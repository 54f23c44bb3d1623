"""What ``livesr evaluate`` writes: CSV (per set and per cell), JSON, PNG heat-maps and curves.

- ``sets.csv``: one row per set and method, every metric.
- ``matrix.csv``: one row per structure × level × method: mean and spread of every metric, the
  number of sets, and the cell's classification (``sim_applicable``, ``dlsr_priority``).
- ``matrix.json``: the config, the notes, and every cell (what the dose advisor reads).
- ``nrmse_heatmaps.png`` (one heat-map per method), ``decision_map.png`` (the paper's Fig. 1c:
  where SIM is applicable, where DLSR has priority), ``curves.png`` (NRMSE, MS-SSIM and
  resolution against the photon count, per structure).
"""

from __future__ import annotations

import csv
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.evaluation.matrix import METRICS, MatrixResult

if TYPE_CHECKING:
    from pathlib import Path

    from inference.evaluation.config import EvaluationConfig

__all__ = ["MATRIX_FORMAT", "read_result", "write_report"]

MATRIX_FORMAT = "livesr-evaluation-matrix/1"
METHOD_COLOURS = {"wf": "#888888", "wiener-sim": "#1f77b4", "dfcan-sisr": "#ff7f0e",
                  "dfcan-sim": "#d62728", "dfgan": "#2ca02c"}


def write_report(result: MatrixResult, config: EvaluationConfig, out_dir: Path,
                 command: str = "") -> list[Path]:
    """Write every output into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [_write_sets_csv(result, out_dir / "sets.csv"),
             _write_matrix_csv(result, out_dir / "matrix.csv"),
             _write_json(result, config, out_dir / "matrix.json", command)]
    files += _plots(result, config, out_dir)
    return files


def read_result(config: EvaluationConfig, out_dir: Path) -> MatrixResult:
    """Read the result written to ``out_dir`` before (``sets.csv``, ``matrix.json``).

    It is summarised afresh with the config's criteria: new plots and classes without
    reconstructing again.
    """
    from inference.evaluation.matrix import summarise

    path = out_dir / "sets.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no earlier evaluation to summarise")
    with open(path, newline="") as f:
        rows: list[dict[str, Any]] = list(csv.DictReader(f))
    for row in rows:
        row["level"] = float(row["level"])
        row["measured_photons"] = float(row["measured_photons"])
        for metric in METRICS:
            row[metric] = float(row[metric]) if row[metric] else math.nan
    previous = json.loads((out_dir / "matrix.json").read_text())
    methods = [m for m in previous["methods"] if any(r["method"] == m for r in rows)]
    cells = summarise(rows, methods, config.criteria.sim_tolerance_nrmse,
                      config.criteria.dlsr_margin)
    notes = [n for n in previous["notes"] if "sets per cell" not in n]
    return MatrixResult(rows, cells, methods, notes, float(previous["seconds"]))


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


def _write_sets_csv(result: MatrixResult, path: Path) -> Path:
    fields = ["structure", "level", "cell", "measured_photons", "method", *METRICS, "note"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: _blank(_clean(row[k])) for k in fields})
    return path


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _write_matrix_csv(result: MatrixResult, path: Path) -> Path:
    metric_fields = [f for m in METRICS for f in (m, f"{m}_std")]
    fields = ["structure", "level", "measured_photons", "method", "n", *metric_fields,
              "flagged", "sim_applicable", "dlsr_priority", "best_dlsr"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for cell in result.cells:
            for method in result.methods:
                scores = cell["methods"][method]
                row = {"structure": cell["structure"], "level": cell["level"],
                       "measured_photons": round(cell["measured_photons"], 3),
                       "method": method, "n": scores["n"], "flagged": scores["flagged"],
                       "sim_applicable": cell["sim_applicable"],
                       "dlsr_priority": cell["dlsr_priority"], "best_dlsr": cell["best_dlsr"]}
                row.update({k: _clean(scores[k]) for k in metric_fields})
                writer.writerow({k: _blank(v) for k, v in row.items()})
    return path


def _write_json(result: MatrixResult, config: EvaluationConfig, path: Path,
                command: str) -> Path:
    sets = len({(r["structure"], r["level"], r["cell"]) for r in result.rows})
    per_cell = sorted({c["methods"][result.methods[0]]["n"] for c in result.cells})
    notes = list(result.notes)
    if per_cell and per_cell[0] < 20:
        notes.append(f"{per_cell[0]} sets per cell (fewer than the 20 asked for)")
    data = {
        "format": MATRIX_FORMAT,
        "name": config.name,
        "command": command,
        "config": config.model_dump(mode="json"),
        "methods": result.methods,
        "metrics": {k: {"label": label, "lower_is_better": low}
                    for k, (label, low) in METRICS.items()},
        "criteria": {
            "sim_applicable": f"Wiener-SIM mean NRMSE ≤ {config.criteria.sim_tolerance_nrmse}",
            "dlsr_priority": f"best DLSR mean NRMSE ≤ Wiener-SIM's × "
                             f"(1 + {config.criteria.dlsr_margin})",
        },
        "sets": sets,
        "sets_per_cell": per_cell,
        "seconds": round(result.seconds, 1),
        "notes": notes,
        "cells": _clean_tree(result.cells),
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def _clean_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_tree(v) for v in value]
    return _clean(value)


def _grid(result: MatrixResult) -> tuple[list[str], list[float]]:
    structures = sorted({c["structure"] for c in result.cells})
    levels = sorted({c["level"] for c in result.cells})
    return structures, levels


def _cell(result: MatrixResult, structure: str, level: float) -> dict[str, Any] | None:
    for c in result.cells:
        if c["structure"] == structure and c["level"] == level:
            return c
    return None


def _plots(result: MatrixResult, config: EvaluationConfig, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    structures, levels = _grid(result)
    level_name = "photons" if config.data.kind == "simulated" else "BioSR level"
    files = []

    # NRMSE heat-maps, one per method, one colour scale
    n = len(result.methods)
    fig, axes = plt.subplots(1, n, figsize=(2.2 + 0.55 * len(levels) * n, 1.4 +
                                            0.45 * len(structures)), squeeze=False)
    values = {m: np.full((len(structures), len(levels)), np.nan) for m in result.methods}
    for i, s in enumerate(structures):
        for j, lv in enumerate(levels):
            c = _cell(result, s, lv)
            for m in result.methods:
                v = c["methods"][m]["nrmse"] if c else None
                values[m][i, j] = np.nan if v is None else v
    vmax = float(np.nanmax([np.nanmax(v) for v in values.values()]))
    for k, (ax, m) in enumerate(zip(axes[0], result.methods, strict=True)):
        image = ax.imshow(values[m], cmap="magma_r", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(m)
        ax.set_xticks(range(len(levels)), [f"{lv:g}" for lv in levels], rotation=90)
        ax.set_yticks(range(len(structures)), structures if k == 0 else [])
        ax.set_xlabel(level_name)
        for i in range(len(structures)):
            for j in range(len(levels)):
                v = values[m][i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if v > 0.6 * vmax else "black")
    fig.colorbar(image, ax=axes[0].tolist(), label="NRMSE (lower is better)")
    fig.suptitle(f"{config.name}: mean NRMSE against the ground truth", y=1.08)
    files.append(out_dir / "nrmse_heatmaps.png")
    fig.savefig(files[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    # decision map (Fig. 1c)
    if "wiener-sim" in result.methods:
        files.append(_decision_map(result, structures, levels, level_name, config, plt,
                                   out_dir / "decision_map.png"))

    # curves
    shown = [m for m in ("nrmse", "ms_ssim", "resolution_nm", "frc_nm")
             if any(r[m] is not None and np.isfinite(r[m]) for r in result.rows)]
    fig, axes = plt.subplots(len(shown), len(structures), squeeze=False,
                             figsize=(3.4 * len(structures), 2.6 * len(shown)))
    for j, s in enumerate(structures):
        cells = [c for c in result.cells if c["structure"] == s]
        x = [c["level"] for c in cells]
        for i, metric in enumerate(shown):
            ax = axes[i, j]
            for m in result.methods:
                y = [np.nan if c["methods"][m][metric] is None else c["methods"][m][metric]
                     for c in cells]
                err = [0.0 if c["methods"][m][f"{metric}_std"] is None
                       else c["methods"][m][f"{metric}_std"] for c in cells]
                ax.errorbar(x, y, yerr=err, label=m, color=METHOD_COLOURS.get(m), marker="o",
                            markersize=3, capsize=2, linewidth=1)
            ax.set_xscale("log")
            ax.set_xticks(levels, [f"{lv:g}" for lv in levels], rotation=90, fontsize=7)
            ax.minorticks_off()
            ax.set_ylabel(METRICS[metric][0])
            if i == 0:
                ax.set_title(s)
            if i == len(shown) - 1:
                ax.set_xlabel(level_name)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{config.name}: mean ± s.d. over the sets of each cell")
    fig.tight_layout()
    files.append(out_dir / "curves.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files


def _decision_map(result: MatrixResult, structures: list[str], levels: list[float],
                  level_name: str, config: EvaluationConfig, plt: Any, path: Path) -> Path:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    # 0: SIM applicable and not beaten; 1: SIM applicable, DLSR priority;
    # 2: SIM not applicable, DLSR priority; 3: neither
    colours = ["#4c78a8", "#9ecae9", "#f58518", "#d9d9d9"]
    labels = ["SIM applicable, SIM better", "SIM applicable, DLSR priority",
              "SIM not applicable, DLSR priority", "SIM not applicable, SIM better"]
    grid = np.full((len(structures), len(levels)), np.nan)
    for i, s in enumerate(structures):
        for j, lv in enumerate(levels):
            c = _cell(result, s, lv)
            if c is None or c["sim_applicable"] is None or c["dlsr_priority"] is None:
                continue
            grid[i, j] = (0 if c["sim_applicable"] else 2) + (
                (1 if c["dlsr_priority"] else 0) if c["sim_applicable"]
                else (0 if c["dlsr_priority"] else 1))
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(levels), 1.6 + 0.5 * len(structures)))
    ax.imshow(grid, cmap=ListedColormap(colours), vmin=-0.5, vmax=3.5, aspect="auto")
    for i, s in enumerate(structures):
        for j, lv in enumerate(levels):
            c = _cell(result, s, lv)
            if c is None or c["best_dlsr"] is None or np.isnan(grid[i, j]):
                continue
            sim = c["methods"]["wiener-sim"]["nrmse"]
            dlsr = c["methods"][c["best_dlsr"]]["nrmse"]
            ax.text(j, i, f"S {sim:.2f}\nD {dlsr:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(levels)), [f"{lv:g}" for lv in levels], rotation=90)
    ax.set_yticks(range(len(structures)), structures)
    ax.set_xlabel(level_name)
    ax.set_title(f"SIM applicable: Wiener-SIM NRMSE (S) ≤ {config.criteria.sim_tolerance_nrmse}"
                 f"\nDLSR priority: best DLSR NRMSE (D) ≤ Wiener-SIM's", fontsize=8)
    ax.legend(handles=[Patch(color=c, label=lab) for c, lab in zip(colours, labels,
                                                                     strict=True)],
              loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2, fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
