"""The dose advisor: photon count of a raw set, advice from an evaluation matrix, and the
advice in an acquisition's result.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from acquisition_support import small_cfg, write_protocol

import acquisition
from inference.evaluation.dose_advisor import DEFAULT_MATRIX, DoseAdvisor

if TYPE_CHECKING:
    from pathlib import Path


def _matrix(path: Path) -> Path:
    """Wiener-SIM poor at low dose and excellent at high dose; DFCAN flat in between."""
    table = {15: (0.8, 0.5), 100: (0.25, 0.45), 600: (0.1, 0.44)}
    cells = [{"structure": "microtubules", "level": float(level),
              "methods": {"wiener-sim": {"nrmse": sim}, "dfcan-sim": {"nrmse": dlsr},
                          "wf": {"nrmse": 1.0}}}
             for level, (sim, dlsr) in table.items()]
    path.write_text(json.dumps({
        "format": "livesr-evaluation-matrix/1", "methods": ["wf", "wiener-sim", "dfcan-sim"],
        "config": {"data": {"kind": "simulated"},
                   "criteria": {"sim_tolerance_nrmse": 0.3, "dlsr_margin": 0.0}},
        "cells": cells}))
    return path


def test_advice_follows_the_matrix(tmp_path: Path) -> None:
    advisor = DoseAdvisor(_matrix(tmp_path / "matrix.json"))
    low = advisor.advise_photons(15, "microtubules")
    assert (low.recommended, low.trustworthy, low.dlsr_priority) == ("dfcan", True, True)
    high = advisor.advise_photons(600, "microtubules")
    assert (high.recommended, high.trustworthy, high.sim_applicable) == ("wiener-sim", True, True)
    # between levels, log-interpolated: at 40 photons Wiener-SIM 0.516, DFCAN 0.474
    assert advisor.advise_photons(40).nrmse["wiener-sim"] == pytest.approx(0.516, abs=0.002)
    assert advisor.advise_photons(40).recommended == "dfcan"
    # at 60, Wiener-SIM (0.40) beats DFCAN (0.46) but is not within tolerance: not trustworthy
    middle = advisor.advise_photons(60, "microtubules")
    assert (middle.recommended, middle.trustworthy) == ("wiener-sim", False)
    assert "raise the dose" in middle.message
    outside = advisor.advise_photons(5, "microtubules")
    assert not outside.within_levels and outside.recommended == "dfcan"
    with pytest.raises(ValueError, match="not in the matrix"):
        advisor.advise_photons(100, "ccp")


def test_photon_count_of_a_raw_set_is_biosr_s(tmp_path: Path) -> None:
    from simulators import simulate

    advisor = DoseAdvisor(_matrix(tmp_path / "matrix.json"))
    s = simulate("er", photons=100, size=128, seed=3)
    assert advisor.photons(s.raw) == pytest.approx(s.params["measured_photons"], rel=1e-6)
    assert advisor.photons(s.raw) == pytest.approx(100, rel=0.15)
    assert advisor.advise(s.raw, "microtubules").photons == advisor.photons(s.raw)


def test_the_committed_matrix_advises_every_structure() -> None:
    advisor = DoseAdvisor()
    assert advisor.path == DEFAULT_MATRIX
    assert advisor.structures == ["ccp", "er", "factin", "microtubules"]
    for structure in advisor.structures:
        for photons in (15, 600):
            advice = advisor.advise_photons(photons, structure)
            assert advice.recommended in ("dfcan", "wiener-sim")
            assert set(advice.nrmse) >= {"wiener-sim", "dfcan-sisr", "dfcan-sim"}


def test_a_bad_matrix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="livesr evaluate"):
        DoseAdvisor(tmp_path / "none.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a livesr evaluation matrix"):
        DoseAdvisor(tmp_path / "other.json")


def test_acquisition_result_carries_the_dose_advice(tmp_path: Path) -> None:
    cfg = small_cfg(tmp_path, 128)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels: [{{preset: "488", power_mw: 20, exposure_ms: 5, structure: microtubules}}]
        timelapse: {{count: 2}}
        save: {{sr: none}}
        output: run
        """)
    result = acquisition.run(path, progress=False)
    advice = result.dose_advice["488"]
    for key in ("first_set", "last_set"):
        assert advice[key]["structure"] == "microtubules"
        assert advice[key]["photons"] > 0
        assert advice[key]["recommended"] in ("dfcan", "wiener-sim")
    summary = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]
    assert summary["dose_advice"]["488"]["last_set"]["message"] == advice["last_set"]["message"]


def test_a_protocol_names_only_known_structures(tmp_path: Path) -> None:
    from acquisition.protocol import load_protocol
    from yamlconfig.located import ConfigError

    path = write_protocol(tmp_path, """
        channels: [{preset: "488", power_mw: 20, exposure_ms: 5, structure: mitochondria}]
        """)
    with pytest.raises(ConfigError, match=r"protocol.yaml:1:\d+: channels.0.structure"):
        load_protocol(path, check=False)
