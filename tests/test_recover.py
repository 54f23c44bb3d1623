"""kill -9 during a run, then ``livesr recover``: every frame whose index line reached the disk
reads back from the OME-TIFF, the incomplete last time point is zero-filled and reported,
nothing is corrupt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from acquisition_support import small_cfg, write_protocol

from acquisition.cli import main
from acquisition.storage.journal import read_journal

ROOT = Path(__file__).resolve().parents[1]


def _frames_in_index(path: Path) -> int:
    if not path.exists():
        return 0
    return max(0, path.read_bytes().count(b"\n") - 1)  # minus the header


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_mid_run_then_recover(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = small_cfg(tmp_path, 64)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels:
          - {{preset: "488", power_mw: 10, exposure_ms: 1}}
          - {{preset: "560", power_mw: 10, exposure_ms: 1}}
        timelapse: {{count: 100000}}
        save: {{wf: true, sr: none}}
        output: run
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.Popen([sys.executable, "-m", "acquisition.cli", "run", str(path),
                             "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    index = tmp_path / "run" / "raw" / "raw_p000.jsonl"
    deadline = time.monotonic() + 120
    try:
        while _frames_in_index(index) < 300:  # mid-run: several hundred frames on disk
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not get going"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    stem = index.with_suffix("")
    journal = read_journal(stem)  # what the kill left: complete lines only
    data = journal.data()
    before = {(e["t"], e["c"], e["z"]): np.array(journal.frame(data, e))
              for e in journal.frames}
    del data
    assert len(before) >= 300
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"

    assert main(["recover", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"raw_p000.ome.tif: {len(before)} frames" in out

    raw = tifffile.imread(tmp_path / "run" / "raw" / "raw_p000.ome.tif")
    n_t = max(t for t, _, _ in before) + 1
    assert raw.shape == (n_t, 2, 9, 64, 64)
    for (t, c, z), frame in before.items():
        np.testing.assert_array_equal(raw[t, c, z], frame)
        assert frame.max() > 0  # a real camera frame (offset ≈ 100), not a zero-filled hole
    missing = [(t, c, z) for t in range(n_t) for c in range(2) for z in range(9)
               if (t, c, z) not in before]
    assert all(t == n_t - 1 for t, _, _ in missing)  # holes only in the last time point
    for key in missing:
        assert not raw[key].any()
    if missing:
        assert "missing planes zero-filled" in out

    wf = tifffile.imread(tmp_path / "run" / "wf" / "wf_p000.ome.tif")
    assert wf.shape[1:] == (2, 64, 64) and wf.shape[0] in (n_t - 1, n_t)
    np.testing.assert_allclose(wf[0, 0], raw[0, 0].mean(axis=0, dtype=np.float32), rtol=1e-6)

    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_json["status"] == "recovered"
    assert run_json["recovered"]["frames"]["raw_p000.ome.tif"] == len(before)
    assert not list((tmp_path / "run").glob("*/*.bin"))
    assert main(["recover", str(tmp_path / "run")]) == 2  # nothing left to recover
    assert "no journal to recover" in capsys.readouterr().err
