"""The GPU training recipe, run end to end at toy size on the CPU."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from inference.models.weights import load_model
from inference.training.recipe import RecipeSettings, calibrate_iterations, recipe_configs

if TYPE_CHECKING:
    from pathlib import Path


def test_official_sizes_and_the_dfgan_starts_from_the_sisr(tmp_path: Path) -> None:
    configs = recipe_configs(tmp_path, RecipeSettings())
    sim, sisr, gan = configs["dfcan_sim"], configs["dfcan_sisr"], configs["dfgan"]
    assert (sim.model.features, sim.model.n_groups, sim.model.n_blocks) == (64, 4, 4)
    assert sim.model.in_channels == 9 and sisr.model.in_channels == 1
    assert sim.optim.patch_size == 128 and sim.model.size_psc == 128
    assert gan.gan is not None and gan.init_weights == sisr.run_dir / "best.safetensors"
    assert sim.data.bank == sisr.data.bank  # type: ignore[union-attr]


def test_calibration_fills_the_budget(tmp_path: Path) -> None:
    config = recipe_configs(tmp_path, RecipeSettings(toy=True))["dfcan_sisr"]
    short, per_step = calibrate_iterations(config, 2.0, "cpu", steps=3)
    long, _ = calibrate_iterations(config, 200.0, "cpu", steps=3)
    assert per_step > 0 and long > 10 * short >= 3 * 10


@pytest.mark.slow
def test_the_toy_recipe_trains_evaluates_and_writes_its_record(tmp_path: Path) -> None:
    from inference.training.recipe import run_recipe

    summary = run_recipe(tmp_path, minutes=1.0, toy=True, device="cpu", workers=1)
    record = json.loads((tmp_path / "recipe.json").read_text())
    assert record["device"].startswith("CPU") and record == json.loads(json.dumps(summary))
    assert set(record["runs"]) == {"dfcan_sim", "dfcan_sisr", "dfgan"}
    for name, run in record["runs"].items():
        assert run["iterations"] >= 1 and run["best_validation_nrmse"] > 0, name
    sim = load_model(tmp_path / "weights/dfcan_sim_official_size.safetensors")
    assert sim.config.in_channels == 9
    methods = set(record["evaluation"]["cells"][0]["nrmse"])
    assert methods == {"wf", "wiener-sim", "dfcan-sisr", "dfcan-sim", "dfgan"}
    assert (tmp_path / "evaluation" / "matrix.json").is_file()
