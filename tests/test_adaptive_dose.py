"""Closed-loop dose: the power follows the trust signal within its bounds, set by set."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import TYPE_CHECKING

import pytest
from acquisition_support import small_cfg, tiny_dfcan, write_protocol

import acquisition
from acquisition.protocol import load_protocol
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from acquisition.protocol import Protocol


def _adaptive_run(tmp_path: Path, threshold: float, count: int) -> Path:
    cfg = small_cfg(tmp_path, 64)
    tiny_dfcan(tmp_path / "tiny.safetensors")
    return write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 2, structure: microtubules,
              reconstruction: {{method: dfcan, weights: tiny.safetensors,
                                trust: {{signal: spectrum, threshold: {threshold}}}}},
              dose: {{mode: adaptive, min_power_mw: 5, max_power_mw: 30}}}}
        timelapse: {{count: {count}, interval_s: 0.4}}
        save: {{wf: false, sr: every}}
        output: run
        inference: {{backend: torch, device: cpu}}
        """)


def test_adaptive_dose_is_checked(tmp_path: Path) -> None:
    tiny_dfcan(tmp_path / "tiny.safetensors")
    rec = "{method: dfcan, weights: tiny.safetensors}"
    trusted = "{method: dfcan, weights: tiny.safetensors, trust: {threshold: 1}}"
    with pytest.raises(ConfigError, match="needs trust"):
        _channel(tmp_path, rec, "{mode: adaptive}", interval=1)
    with pytest.raises(ConfigError, match="interval_s > 0"):
        _channel(tmp_path, trusted, "{mode: adaptive}")
    with pytest.raises(ConfigError, match="below min_power_mw"):
        _channel(tmp_path, trusted, "{mode: adaptive, min_power_mw: 5, max_power_mw: 2}",
                 interval=1)
    fixed = _channel(tmp_path, rec, "{mode: fixed}")
    assert fixed.channels[0].dose.mode == "fixed"


def _channel(tmp_path: Path, reconstruction: str, dose: str, interval: float = 0) -> Protocol:
    path = write_protocol(tmp_path, f"""
        microscope: {{config: demo, roi: 64}}
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 10, reconstruction: {reconstruction},
              dose: {dose}}}
        timelapse: {{count: 3, interval_s: {interval}}}
        output: out
        """)
    return load_protocol(path)


@pytest.mark.parametrize(("threshold", "direction"), [(-100.0, "down"), (100.0, "up")])
def test_the_power_follows_the_trust_within_its_bounds(tmp_path: Path, threshold: float,
                                                       direction: str) -> None:
    """Always trusted: the power falls set by set; never trusted: it rises.

    Within min_power_mw … max_power_mw; every raw frame is kept and run.json holds every set's
    power and dose.
    """
    result = acquisition.run(_adaptive_run(tmp_path, threshold, 8), progress=False)
    assert result.completed and result.frames_written == result.frames_requested == 72
    control = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]
    control = control["dose_control"]["488"]
    assert control["mode"] == "adaptive"
    assert (control["min_power_mw"], control["max_power_mw"]) == (5, 30)
    powers = control["sets"]["power_mw"]
    assert control["sets"]["t"] == list(range(8)) and powers[0] == 20
    assert all(5 <= p <= 30 for p in powers)  # the bounds, within the laser's limit
    steps = [b - a for a, b in pairwise(powers)]
    if direction == "down":
        assert all(s <= 0 for s in steps) and powers[-1] < 20
    else:
        assert all(s >= 0 for s in steps) and powers[-1] > 20
    # the dose per set: power × exposure × 9 frames
    assert control["sets"]["dose_mj"] == pytest.approx([p * 0.002 * 9 for p in powers])
    assert control["total_dose_mj"] == pytest.approx(sum(control["sets"]["dose_mj"]))
    assert result.dose_control["488"]["sets"]["power_mw"] == powers
