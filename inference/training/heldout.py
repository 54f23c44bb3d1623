"""Held-out evaluation of trained weights on simulated cells they never saw.

Cells come from :func:`simulators.pairs.training_pairs` with a seed of their own (training used
seeds 0 and 1), each recorded at several photon levels. Each network's output (the shared
:class:`~inference.reconstructor.DFCANReconstructor`, official post-processing included) and the
bicubically upsampled wide-field image are scored against the ground truth with the official
NRMSE (``prctile_norm`` of both, then ``‖gt − x‖ / ‖gt‖``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from inference.training.metrics import nrmse, upsample_wf

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

__all__ = ["HELDOUT_SEED", "evaluate_weights"]

HELDOUT_SEED = 2024
HELDOUT_LEVELS: tuple[float, ...] = (15, 100, 600)


def evaluate_weights(weights: Mapping[str, str | Path],
                     photon_levels: Sequence[float] = HELDOUT_LEVELS, n_cells: int = 16,
                     seed: int = HELDOUT_SEED, size: int = 128,
                     mode: str = "tirf-sim") -> dict[str, Any]:
    """Per-cell NRMSE of each named weights file and of the upsampled WF, per photon level."""
    from inference.reconstructor import DFCANReconstructor
    from simulators.pairs import training_pairs

    models = {name: DFCANReconstructor.from_file(path) for name, path in weights.items()}
    rows: list[dict[str, Any]] = []
    for pair in training_pairs(photon_levels=photon_levels, mode=mode,  # type: ignore[arg-type]
                               size=size, input_kind="sim", seed=seed, n_samples=n_cells):
        raw = pair.input
        wf = raw.mean(axis=0)
        row: dict[str, Any] = {"structure": pair.structure, "photons": pair.photons,
                               "sample_seed": pair.sample_seed,
                               "wf": nrmse(pair.target, upsample_wf(wf, 2))}
        for name, model in models.items():
            frames = raw if model.frames_per_set is not None else wf[None]
            row[name] = nrmse(pair.target, model.reconstruct(frames))
        rows.append(row)
    summary: dict[str, dict[str, float]] = {}
    for level in photon_levels:
        level_rows = [r for r in rows if r["photons"] == float(level)]
        summary[f"{level:g}"] = {key: float(np.mean([r[key] for r in level_rows]))
                                 for key in ("wf", *models)}
    return {"seed": seed, "n_cells": n_cells, "size": size, "mode": mode,
            "photon_levels": [float(v) for v in photon_levels], "mean_nrmse": summary,
            "per_cell": rows}
