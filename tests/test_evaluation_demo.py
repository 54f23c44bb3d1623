"""The committed evaluation matrix of the demo weights: reproducible, and what it says about
the paper's finding (DLSR ahead of conventional SIM at low dose, SIM ahead at high dose)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from inference.dose_advisor import DEFAULT_MATRIX

CONFIG = Path(__file__).resolve().parent.parent / "inference/evaluation/configs/demo_matrix.yaml"
DFCAN = ("dfcan-sisr", "dfcan-sim")


def _cells() -> list[dict]:
    return json.loads(DEFAULT_MATRIX.read_text())["cells"]


def _at(level: str) -> dict[str, tuple[float, float]]:
    """Per structure at the lowest or highest level: (best DFCAN NRMSE, Wiener-SIM NRMSE)."""
    cells = _cells()
    levels = sorted({c["level"] for c in cells})
    chosen = levels[0] if level == "lowest" else levels[-1]
    return {c["structure"]: (min(c["methods"][m]["nrmse"] for m in DFCAN),
                             c["methods"]["wiener-sim"]["nrmse"])
            for c in cells if c["level"] == chosen}


def test_wiener_sim_beats_dfcan_at_the_highest_level() -> None:
    for structure, (dfcan, wiener) in _at("highest").items():
        assert wiener < dfcan, structure


@pytest.mark.xfail(strict=True, reason=(
    "not met with the demo weights: at 15 photons the better DFCAN's NRMSE against Wiener-SIM's "
    "(20 held-out sets per structure) is ccp 0.530 vs 0.303, ER 0.429 vs 0.279, F-actin 0.387 "
    "vs 0.357, microtubules 0.506 vs 0.299; the small CPU-trained demo DFCANs stay at NRMSE "
    "≈ 0.38–0.62 at every dose while Wiener-SIM, estimating the pattern from each set, stays "
    "≤ 0.36 even at 15 photons"))
def test_dfcan_beats_wiener_sim_at_the_lowest_level() -> None:
    for structure, (dfcan, wiener) in _at("lowest").items():
        assert dfcan < wiener, f"{structure}: DFCAN {dfcan:.3f}, Wiener-SIM {wiener:.3f}"


def test_the_committed_matrix_is_reproduced() -> None:
    """The first held-out set, evaluated afresh, scores what sets.csv recorded."""
    from acquisition.evaluate_cli import load_evaluation_config
    from inference.evaluation.matrix import score_set
    from inference.evaluation.methods import build_methods
    from inference.evaluation.sources import iter_sets

    config = load_evaluation_config(CONFIG)
    item = next(iter_sets(config.data))
    methods = build_methods({m: config.weights_path(m) for m in
                             ("wf", "wiener-sim", "dfcan-sisr", "dfcan-sim")})
    fresh = {r["method"]: r for r in score_set(item, methods)}
    with open(DEFAULT_MATRIX.parent / "sets.csv") as f:
        recorded = [r for r in csv.DictReader(f)
                    if r["structure"] == item.structure and float(r["level"]) == item.level
                    and r["cell"] == item.cell]
    assert {r["method"] for r in recorded} == set(fresh)
    for row in recorded:
        for metric in ("nrmse", "ssim", "ms_ssim", "psnr", "resolution_nm"):
            assert fresh[row["method"]][metric] == pytest.approx(float(row[metric]), rel=1e-3), \
                (row["method"], metric)
