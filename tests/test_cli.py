"""The ``livesr`` command line: simulate and demo, and clean errors for wrong input."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import tifffile

from acquisition.cli import main

if TYPE_CHECKING:
    from pathlib import Path


def _livesr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acquisition.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_help_lists_the_subcommands() -> None:
    result = _livesr("--help")
    assert result.returncode == 0
    for command in ("simulate", "demo"):
        assert command in result.stdout


def test_simulate_writes_raw_wf_gt_and_params(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    assert main(["simulate", "--structure", "microtubules", "--mode", "tirf-sim", "--photons",
                 "80", "--size", "64", "--seed", "3", "--out", str(out)]) == 0
    raw = tifffile.imread(out / "raw.tif")
    assert raw.shape == (9, 64, 64) and raw.dtype == "uint16"
    assert tifffile.imread(out / "wf.tif").shape == (64, 64)
    assert tifffile.imread(out / "gt.tif").shape == (128, 128)
    params = json.loads((out / "params.json").read_text())
    assert params["photons"] == 80 and params["camera_pixel_nm"] == 62.6
    assert len(params["pattern"]["k_vectors_per_um"]) == 3
    assert {"qe", "gain", "offset", "read_noise_e"} <= set(params["camera"])
    with tifffile.TiffFile(out / "raw.tif") as tif:  # the pixel size travels with the file
        page = tif.pages.first
        x_res = page.tags["XResolution"].value
        assert x_res[1] / x_res[0] == pytest.approx(0.0626, rel=1e-3)
        assert (tif.imagej_metadata or {}).get("unit") == "um"


@pytest.mark.parametrize(("args", "message"), [
    (["--structure", "mitochondria"], "invalid choice: 'mitochondria'"),
    (["--structure", "er", "--photons", "-5"], "--photons: must be > 0"),
    (["--structure", "er", "--size", "101"], "--size: size must be an even number"),
    (["--structure", "er", "--mode", "sted"], "invalid choice: 'sted'"),
    (["--structure", "er", "--seed", "x"], "--seed: not an integer"),
])
def test_simulate_refuses_wrong_input_without_a_traceback(tmp_path: Path, args: list[str],
                                                         message: str) -> None:
    result = _livesr("simulate", *args, "--out", str(tmp_path / "o"))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_simulate_refuses_an_out_path_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = _livesr("simulate", "--structure", "er", "--size", "32", "--out", str(target))
    assert result.returncode == 2
    assert "not a folder" in result.stderr and "Traceback" not in result.stderr


def test_demo_acquires_and_saves_a_sim_time_lapse(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from acquisition.demo import bundled_weights

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--timepoints", "2", "--roi", "64",
                 "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    if not bundled_weights():
        assert "does NOT super-resolve" in stdout  # it says plainly what it does not do
    raw = tifffile.imread(out / "raw" / "raw_p000.ome.tif")
    assert raw.shape == (2, 2, 9, 64, 64)  # T, channels 488 and 560, SIM patterns, Y, X
    assert raw.mean() > 110  # lit: above the 100 ADU offset
    assert tifffile.imread(out / "wf" / "wf_p000.ome.tif").shape == (2, 2, 64, 64)
    assert json.loads((out / "run.json").read_text())["summary"]["frames_written"] == 36
