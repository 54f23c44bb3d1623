"""kill -9 during a run: the images open as they are with the ordinary readers, every complete
set equals what was acquired, and ``livesr recover`` finishes the metadata without rewriting a
pixel.
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

import acquisition
from acquisition.cli import main
from acquisition.storage.streams import image_path, read_metadata_log

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = """
    microscope: {{config: {cfg}}}
    mode: tirf-sim
    channels:
      - {{preset: "488", power_mw: 10, exposure_ms: 1}}
      - {{preset: "560", power_mw: 10, exposure_ms: 1}}
    timelapse: {{count: {count}}}
    save: {{wf: true, sr: none, format: {fmt}}}
    output: {output}
    """


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    return max(0, path.read_bytes().count(b"\n") - 1)  # minus the header


def _read(path: Path, n_t: int | None = None) -> tuple[tuple[int, ...], np.ndarray]:
    """The image's shape, and its first ``n_t`` time points (all: ``None``)."""
    if path.is_dir():
        import zarr

        array = zarr.open_group(str(path), mode="r")["0"]
        return tuple(array.shape), np.asarray(array[:n_t])
    with tifffile.TiffFile(path) as tif:
        data = tif.series[0].asarray(out="memmap")
        return data.shape, np.array(data[:n_t])


def _pixel_state(path: Path, n_bytes: int) -> object:
    if path.is_dir():
        return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted((path / "0" / "c").rglob("*")) if p.is_file()}
    with tifffile.TiffFile(path) as tif:
        offset = int(tif.series[0].dataoffset)
    return offset, hash(path.read_bytes()[offset:offset + n_bytes])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize(("fmt", "count"), [("ome-zarr", 100_000), ("ome-tiff", 2_000)])
def test_kill_9_mid_run_then_recover(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     fmt: str, count: int) -> None:
    cfg = small_cfg(tmp_path, 64)
    path = write_protocol(tmp_path, PROTOCOL.format(cfg=cfg.name, count=count, fmt=fmt,
                                                    output="run"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.Popen([sys.executable, "-m", "acquisition.cli", "run", str(path),
                             "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = tmp_path / "run" / "raw" / "raw_p000.jsonl"
    deadline = time.monotonic() + 120
    try:
        while _lines(log) < 300:  # mid-run: several hundred frames on disk
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not get going"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"

    raw_path = image_path(log.with_suffix(""), fmt)
    complete = read_metadata_log(log).complete_time_points()
    assert complete >= 300 // 18 - 1
    # as the kill left it, with the ordinary reader: the planned length, every complete set
    # as acquired (the simulated microscope is deterministic: the same run again, that long)
    shape, killed = _read(raw_path, complete)
    assert shape == (count, 2, 9, 64, 64)
    reference_protocol = write_protocol(tmp_path, PROTOCOL.format(
        cfg=cfg.name, count=complete, fmt=fmt, output="reference"), name="reference.yaml")
    acquisition.run(reference_protocol, progress=False)
    _, reference = _read(image_path(tmp_path / "reference" / "raw" / "raw_p000", fmt))
    np.testing.assert_array_equal(killed, reference)
    assert reference.min() > 0  # real camera frames (offset ≈ 100), not holes
    del killed

    n_bytes = complete * 2 * 9 * 64 * 64 * 2
    before = _pixel_state(raw_path, n_bytes)
    assert main(["recover", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "metadata only: no pixel was rewritten" in out
    assert _pixel_state(raw_path, n_bytes) == before
    shape, raw = _read(raw_path)
    assert shape == (complete, 2, 9, 64, 64)
    np.testing.assert_array_equal(raw, reference)
    shape, wf = _read(image_path(tmp_path / "run" / "wf" / "wf_p000", fmt))
    assert shape == (complete, 2, 64, 64)
    np.testing.assert_allclose(wf[0, 0], raw[0, 0].mean(axis=0, dtype=np.float32), rtol=1e-6)

    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_json["status"] == "recovered"
    assert run_json["recovered"]["frames"][raw_path.name] >= complete * 18
    assert main(["recover", str(tmp_path / "run")]) == 2  # nothing left to recover
    assert "already" in capsys.readouterr().err
