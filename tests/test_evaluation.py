"""``livesr evaluate``: a small matrix end to end, its config errors, its classification."""

from __future__ import annotations

import csv
import json
import textwrap
from typing import TYPE_CHECKING

import pytest

from acquisition.cli import main
from inference.cli.evaluate import load_evaluation_config
from inference.evaluation.matrix import classify
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DLSR methods run on a live run's backend: its exported graphs go to the test's
    folder, not the user's cache.
    """
    monkeypatch.setenv("LIVESR_CACHE_DIR", str(tmp_path / "cache"))


def _config(folder: Path, text: str) -> Path:
    path = folder / "evaluate.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_small_matrix_through_the_cli_has_every_cell(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, """
        name: small
        output_dir: out
        data: {kind: simulated, structures: [microtubules, ccp], photon_levels: [15, 100, 600],
               sets_per_cell: 1, image_size: 64}
        methods: [wf, wiener-sim, dfcan-sisr, dfcan-sim, dfgan]
        weights: {dfcan-sisr: demo, dfcan-sim: demo}
        metrics: {frc: true, frc_sets_per_cell: 1}
        """)
    assert main(["evaluate", str(path), "--no-progress"]) == 0
    assert "dfgan: skipped" in capsys.readouterr().err
    out = tmp_path / "out" / "small"
    with open(out / "matrix.csv") as f:
        rows = list(csv.DictReader(f))
    methods = ["wf", "wiener-sim", "dfcan-sisr", "dfcan-sim"]
    cells = {(r["structure"], float(r["level"]), r["method"]) for r in rows}
    assert cells == {(s, lv, m) for s in ("microtubules", "ccp") for lv in (15.0, 100.0, 600.0)
                     for m in methods}
    for row in rows:
        assert row["n"] == "1"
        for metric in ("nrmse", "ssim", "ms_ssim", "psnr", "resolution_nm"):
            assert float(row[metric]) > 0, (row["method"], metric)
        assert row["sim_applicable"] in ("True", "False")
        assert row["dlsr_priority"] in ("True", "False")
    # the upsampled wide field is the worst reconstruction at 600 photons
    at_600 = {r["method"]: float(r["nrmse"]) for r in rows
              if r["structure"] == "microtubules" and r["level"] == "600.0"}
    assert at_600["wf"] == max(at_600.values())
    summary = json.loads((out / "matrix.json").read_text())
    assert summary["format"].startswith("livesr-evaluation-matrix/")
    assert summary["methods"] == methods and len(summary["cells"]) == 6
    assert any("dfgan: skipped" in n for n in summary["notes"])
    assert any("fewer than the 20" in n for n in summary["notes"])
    with open(out / "sets.csv") as f:
        sets = list(csv.DictReader(f))
    assert len(sets) == 6 * 4
    assert all(s["frc_nm"] == "" or float(s["frc_nm"]) > 0 for s in sets)
    assert any(s["frc_nm"] for s in sets if s["method"] == "wf")
    for name in ("nrmse_heatmaps.png", "decision_map.png", "curves.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"

    # other criteria, the same sets: re-summarised without reconstructing
    text = path.read_text().replace("metrics:", "criteria: {sim_tolerance_nrmse: 10}\nmetrics:")
    path.write_text(text)
    (out / "curves.png").unlink()
    assert main(["evaluate", str(path), "--summarise-only", "--no-progress"]) == 0
    with open(out / "matrix.csv") as f:
        again = list(csv.DictReader(f))
    assert all(r["sim_applicable"] == "True" for r in again)
    assert [r["nrmse"] for r in again] == [r["nrmse"] for r in rows]
    assert (out / "curves.png").is_file()


def test_config_errors_are_located_all_at_once(tmp_path: Path) -> None:
    path = _config(tmp_path, """
        name: bad
        data: {kind: simulated, seed: 0, sets_per_cell: 0}
        methods: [wf, wiener-sim, dfcan-9000]
        """)
    with pytest.raises(ConfigError) as info:
        load_evaluation_config(path)
    messages = info.value.messages
    assert any(m.startswith(f"{path}:2:") and "sets_per_cell" in m for m in messages)
    assert any(f"{path}:3:" in m and "methods" in m for m in messages)
    path = _config(tmp_path, """
        data: {kind: simulated, seed: 1}
        """)
    with pytest.raises(ConfigError, match="seed 1 draws the training cells"):
        load_evaluation_config(path)
    path = _config(tmp_path, """
        weights: {dfcan-sim: missing.safetensors}
        """)
    with pytest.raises(ConfigError, match=r"evaluate.yaml:1:\d+: weights.dfcan-sim: no such file"):
        load_evaluation_config(path)


def test_cells_are_classified_as_in_the_paper() -> None:
    def scores(**nrmse: float) -> dict[str, dict[str, float]]:
        return {m.replace("_", "-"): {"nrmse": v} for m, v in nrmse.items()}

    low_dose = classify(scores(wiener_sim=0.7, dfcan_sim=0.5, dfcan_sisr=0.6), 0.3, 0.0)
    assert low_dose == {"sim_applicable": False, "dlsr_priority": True, "best_dlsr": "dfcan-sim"}
    high_dose = classify(scores(wiener_sim=0.1, dfcan_sim=0.4), 0.3, 0.0)
    assert high_dose == {"sim_applicable": True, "dlsr_priority": False,
                         "best_dlsr": "dfcan-sim"}
    # a margin lets a DLSR model that nearly matches SIM count as matching it
    assert classify(scores(wiener_sim=0.2, dfcan_sisr=0.21), 0.3, 0.1)["dlsr_priority"]
    assert classify(scores(wf=1.0), 0.3, 0.0) == {"sim_applicable": None, "dlsr_priority": None,
                                                   "best_dlsr": None}


def test_biosr_layout_data_is_evaluated_by_level(tmp_path: Path) -> None:
    import mrcfile
    import numpy as np

    from simulators.render import simulate

    for cell in (1, 2):
        folder = tmp_path / "BioSR" / "CCPs" / f"Cell_{cell:03d}"
        folder.mkdir(parents=True)
        for level, photons in ((1, 20.0), (2, 200.0)):
            recorded = simulate("ccp", "tirf-sim", photons, 64, cell)
            with mrcfile.new(folder / f"RawSIMData_level_{level:02d}.mrc") as mrc:
                mrc.set_data(recorded.raw)
        gt = np.clip(recorded.gt / recorded.gt.max() * 65535, 0, 65535).astype(np.uint16)
        with mrcfile.new(folder / "SIM_gt.mrc") as mrc:
            mrc.set_data(gt[None])
    path = _config(tmp_path, """
        name: biosr
        output_dir: out
        data: {kind: biosr, root: BioSR, structures: [CCPs]}
        methods: [wf, wiener-sim, dfcan-sisr]
        weights: {dfcan-sisr: demo}
        """)
    assert main(["evaluate", str(path), "--no-progress"]) == 0
    with open(tmp_path / "out" / "biosr" / "matrix.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["level"], r["method"], r["n"]) for r in rows} == {
        (lv, m, "2") for lv in ("1.0", "2.0") for m in ("wf", "wiener-sim", "dfcan-sisr")}
    measured = {r["level"]: float(r["measured_photons"]) for r in rows}
    assert measured["1.0"] == pytest.approx(20, rel=0.2)
    assert measured["2.0"] == pytest.approx(200, rel=0.2)
    summary = json.loads((tmp_path / "out" / "biosr" / "matrix.json").read_text())
    assert any("frc: skipped" in n for n in summary["notes"])


def test_wiener_sim_is_estimated_per_set_and_flags_low_confidence() -> None:
    """The evaluation's Wiener-SIM estimates each set's pattern itself (low confidence
    allowed), reconstructs with it, and notes the estimate's doubts.
    """
    pytest.importorskip("inference.wiener_sim.wiener_reconstructor")
    import numpy as np

    from inference.evaluation.methods import MethodOutput, build_methods
    from inference.wiener_sim.estimation import estimate_calibration
    from inference.wiener_sim.wiener_reconstructor import WienerSIMReconstructor
    from simulators.render import simulate

    reconstruct = build_methods({"wiener-sim": None})["wiener-sim"]
    raw = simulate("ccp", "tirf-sim", 5, 64, 3).raw.astype(np.float32)
    out = reconstruct(raw)
    wiener = WienerSIMReconstructor(frames_per_set=9)
    calibration = estimate_calibration(raw, wiener.optics, otf=wiener.otf,
                                       taper_px=wiener.settings.taper_px, strict=False)
    wiener.use_calibration(calibration)
    assert isinstance(out, MethodOutput) and out.note == "; ".join(calibration.notes)
    assert out.note and "too little signal" in out.note
    assert np.array_equal(out.image, wiener.reconstruct(raw))
