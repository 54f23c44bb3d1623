"""The evaluation matrix: every structure × photon level, every reconstruction, every metric.

Each raw set is reconstructed by each method and scored against its ground truth with the
official metrics (:mod:`inference.metrics.quality`: NRMSE, SSIM, MS-SSIM, PSNR),
the NRMSE after the best affine fit ``a·x + b`` to the truth over the truth's spread
(:func:`inference.metrics.affine.nrmse_affine`: a dark background earns nothing),
its resolution by decorrelation analysis, and, where a second noise realisation exists, by FRC.
Wide-field resolutions are measured on the camera grid (interpolation would colour the noise
that both resolution measures assume white); the rest on the SR grid.

Per cell (structure × level) the means classify it as in Qiao et al.'s Fig. 1c: *SIM
applicable* where Wiener-SIM's NRMSE to the ground truth is within ``sim_tolerance_nrmse``,
*DLSR priority* where the best deep-learning model's NRMSE matches or beats Wiener-SIM's.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.progress import track

from inference.evaluation.config import DLSR_METHODS, EvaluationConfig
from inference.evaluation.methods import build_methods
from inference.evaluation.sources import EvalSet, count_sets, iter_sets

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["METRICS", "MatrixResult", "classify", "run_matrix", "score_set"]

#: metric name -> (label, lower is better)
METRICS: dict[str, tuple[str, bool]] = {
    "nrmse": ("NRMSE", True),
    "nrmse_affine": ("NRMSE, affine-fitted", True),
    "ssim": ("SSIM", False),
    "ms_ssim": ("MS-SSIM", False),
    "psnr": ("PSNR (dB)", False),
    "resolution_nm": ("resolution, decorrelation (nm)", True),
    "frc_nm": ("resolution, FRC 1/7 (nm)", True),
}


@dataclass
class MatrixResult:
    """Per-set scores, per-cell summaries, and what was skipped or noticed."""

    rows: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    methods: list[str]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_matrix(config: EvaluationConfig, progress: bool = True) -> MatrixResult:
    """Evaluate every set of the config's data with every method it names."""
    notes: list[str] = []
    chosen: dict[str, Path | None] = {}
    for method in config.methods:
        if method in DLSR_METHODS:
            weights = config.weights_path(method)
            if weights is None:
                notes.append(f"{method}: skipped, no weights given (weights: {{{method}: FILE}})")
                continue
            chosen[method] = weights
        else:
            chosen[method] = None
    if not chosen:
        raise ValueError("no method left to evaluate")
    source = config.data
    if source.kind == "biosr":
        source = source.model_copy(update={"root": config.resolve(source.root)})
    repeats = (config.metrics.frc_sets_per_cell
               if config.metrics.frc and source.kind == "simulated" else 0)
    if config.metrics.frc and source.kind == "biosr":
        notes.append("frc: skipped, BioSR holds one realisation per set")
    scale = 2
    methods = build_methods(chosen, scale, config.device)
    total = count_sets(source)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for item in track(iter_sets(source, repeats), "evaluating", total=total,
                      disable=not progress):
        if item.scale != scale:
            raise ValueError(f"{item.structure} {item.cell}: ground truth {item.scale}× "
                             f"the raw frames; the methods here give {scale}×")
        rows += score_set(item, methods, config.metrics.decorrelation)
    cells = summarise(rows, list(methods), config.criteria.sim_tolerance_nrmse,
                      config.criteria.dlsr_margin)
    return MatrixResult(rows, cells, list(methods), notes, time.perf_counter() - t0)


def score_set(item: EvalSet, methods: dict[str, Any], decorrelation: bool = True
              ) -> list[dict[str, Any]]:
    """One row per method: the set's scores against its ground truth."""
    from inference.metrics.affine import nrmse_affine
    from inference.metrics.decorrelation import decorrelation_resolution
    from inference.metrics.frc import frc
    from inference.metrics.quality import ms_ssim, nrmse, psnr, ssim

    rows = []
    sr_pixel = item.camera_pixel_nm / item.scale
    for name, reconstruct in methods.items():
        result = reconstruct(item.raw)
        image = result.image
        row: dict[str, Any] = {
            "structure": item.structure, "level": item.level, "cell": item.cell,
            "measured_photons": round(item.measured_photons, 3), "method": name,
            "nrmse": nrmse(item.gt, image), "nrmse_affine": nrmse_affine(image, item.gt),
            "ssim": ssim(item.gt, image),
            "ms_ssim": ms_ssim(item.gt, image), "psnr": psnr(item.gt, image),
            "resolution_nm": math.nan, "frc_nm": math.nan, "note": result.note or "",
        }
        # resolution of the wide field on its own grid: interpolation colours the noise
        native, pixel = ((item.raw.mean(axis=0), item.camera_pixel_nm) if name == "wf"
                         else (image, sr_pixel))
        if decorrelation:
            row["resolution_nm"] = decorrelation_resolution(native, pixel).resolution_nm
        if item.repeat is not None:
            second = (item.repeat.mean(axis=0) if name == "wf"
                      else reconstruct(item.repeat).image)
            curve = frc(native, second, pixel)
            # a curve that never falls below 1/7 gives no resolution (blank), not Nyquist
            row["frc_nm"] = curve.resolution_nm if curve.crossed else math.nan
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]], methods: list[str], sim_tolerance: float,
              dlsr_margin: float) -> list[dict[str, Any]]:
    """Summarise the rows per structure × level (one cell each).

    A cell holds each method's mean, spread and count of every metric, and the cell's
    classification (:func:`classify`).
    """
    groups: dict[tuple[str, float], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    for row in rows:
        groups[(row["structure"], row["level"])][row["method"]].append(row)
    cells = []
    for (structure, level), by_method in groups.items():
        scores: dict[str, dict[str, Any]] = {}
        for method in methods:
            method_rows = by_method.get(method, [])
            entry: dict[str, Any] = {"n": len(method_rows)}
            for metric in METRICS:
                values = np.array([r[metric] for r in method_rows], dtype=float)
                finite = values[np.isfinite(values)]
                entry[metric] = float(finite.mean()) if finite.size else None
                entry[f"{metric}_std"] = float(finite.std()) if finite.size > 1 else None
            entry["flagged"] = sum(bool(r["note"]) for r in method_rows)
            scores[method] = entry
        all_rows = [r for rs in by_method.values() for r in rs]
        cell = {"structure": structure, "level": level,
                "measured_photons": float(np.mean([r["measured_photons"] for r in all_rows])),
                "methods": scores}
        cell.update(classify(scores, sim_tolerance, dlsr_margin))
        cells.append(cell)
    cells.sort(key=lambda c: (c["structure"], c["level"]))
    return cells


def classify(scores: dict[str, dict[str, Any]], sim_tolerance: float, dlsr_margin: float
             ) -> dict[str, Any]:
    """Classify one cell: ``sim_applicable``, ``dlsr_priority`` and the best DLSR model.

    Each is ``None`` where the methods it needs were not evaluated.
    """
    sim = scores.get("wiener-sim", {}).get("nrmse")
    dlsr = {m: s["nrmse"] for m, s in scores.items()
            if m in DLSR_METHODS and s.get("nrmse") is not None}
    best = min(dlsr, key=dlsr.__getitem__) if dlsr else None
    return {
        "sim_applicable": None if sim is None else bool(sim <= sim_tolerance),
        "dlsr_priority": (None if sim is None or best is None
                          else bool(dlsr[best] <= sim * (1 + dlsr_margin))),
        "best_dlsr": best,
    }
