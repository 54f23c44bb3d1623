"""The demo weights shipped in the package: what they are, and that they beat the upsampled WF
on held-out simulated cells by the margins that demo_weights.json and the README state.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.models.weights import load_model
from inference.training.demo_weights import DEMO_WEIGHTS, SUMMARY, demo_weights_path
from inference.training.heldout import evaluate_weights

README = Path(__file__).resolve().parent.parent / "README.md"
MAX_BYTES = 5 * 2**20


@pytest.fixture(scope="module")
def summary() -> dict:
    return json.loads(SUMMARY.read_text())


def test_files_rebuild_their_models() -> None:
    expected_channels = {"dfcan-sisr": 1, "dfcan-sim": 9, "dfgan": 1}
    for name in DEMO_WEIGHTS:
        path = demo_weights_path(name)
        assert path.stat().st_size < MAX_BYTES
        model = load_model(path)
        assert model.config.in_channels == expected_channels[name]
        assert model.config.scale == 2
    assert "sisr" in demo_weights_path("dfcan-sisr").name
    with pytest.raises(ValueError, match="unknown demo weights"):
        demo_weights_path("dfcan-nl-sim")


def test_stored_heldout_scores_beat_upsampled_wf(summary: dict) -> None:
    means = summary["heldout"]["mean_nrmse"]
    assert len(means) == 3
    for level, scores in means.items():
        for name in DEMO_WEIGHTS:
            assert scores[name] < scores["wf"], (level, name, scores)


def test_recomputed_heldout_scores_match_the_stored_ones(summary: dict) -> None:
    """A fresh evaluation of the first cells (one per structure) gives the stored numbers."""
    heldout = summary["heldout"]
    n_cells = 4
    paths = {name: demo_weights_path(name) for name in DEMO_WEIGHTS}
    fresh = evaluate_weights(paths, heldout["photon_levels"], n_cells=n_cells,
                             seed=heldout["seed"], size=heldout["size"], mode=heldout["mode"])
    stored = heldout["per_cell"][: n_cells * len(heldout["photon_levels"])]
    assert len(fresh["per_cell"]) == len(stored)
    for new, old in zip(fresh["per_cell"], stored, strict=True):
        assert (new["structure"], new["photons"], new["sample_seed"]) == (
            old["structure"], old["photons"], old["sample_seed"])
        for key in ("wf", *DEMO_WEIGHTS):
            assert new[key] == pytest.approx(old[key], abs=2e-3), (key, new, old)
    for scores in fresh["mean_nrmse"].values():
        for name in DEMO_WEIGHTS:
            assert scores[name] < scores["wf"]


def test_readme_states_the_stored_numbers(summary: dict) -> None:
    text = README.read_text()
    for level, s in summary["heldout"]["mean_nrmse"].items():
        row = (f"| {level} | {s['wf']:.3f} | {s['dfcan-sisr']:.3f} | {s['dfcan-sim']:.3f} | "
               f"{s['dfgan']:.3f} |")
        assert row in text, row
    for name, entry in summary["weights"].items():
        assert entry["command"] in text, name
