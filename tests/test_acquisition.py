"""``acquisition.run`` on small copies of the demo microscope: every raw frame on disk in order
with OME axes and pixel size, WF and SR beside it at their scale; a full writer queue or a
failing writer or a disk that fills stops the run instead of losing raw frames; a long WF
time-lapse loses nothing and does not grow in memory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile
from acquisition_support import small_cfg, tiny_dfcan, two_channel_sim_protocol, write_protocol

import acquisition
from acquisition.pipeline import Pipeline, sr_record
from acquisition.set_info import SetInfo
from acquisition.storage.writers import ChannelInfo, RunWriters
from hardware.frameset import FrameSet
from inference.streaming import StreamResult

if TYPE_CHECKING:
    from collections.abc import Iterator

SENSOR = 64
#: the keys of an SR journal line, in order (journal, set record, stream, writer)
SR_LINE_KEYS = ["i", "t", "p", "channel", "timestamp_ms", "exposure_ms", "seq",
                "latency_ms", "c"]


def _recorder(store: list[FrameSet]):  # type: ignore[no-untyped-def]
    """An ``on_pipeline`` hook that keeps a copy of every set the engine delivers."""

    def hook(pipeline: Pipeline) -> None:
        deliver = pipeline.on_set

        def on_set(frame_set: FrameSet) -> None:
            store.append(FrameSet(**{**frame_set.__dict__, "frames": frame_set.frames.copy()}))
            deliver(frame_set)

        pipeline.on_set = on_set  # type: ignore[method-assign]

    return hook


def test_ome_zarr_holds_what_the_engine_delivered(tmp_path: Path) -> None:
    """The same run as below in OME-Zarr: every raw set, WF and SR in place, frame by frame."""
    import zarr

    path = two_channel_sim_protocol(tmp_path, SENSOR, "{count: 3}",
                                    "{wf: true, sr: every, format: ome-zarr}")
    delivered: list[FrameSet] = []
    result = acquisition.run(path, progress=False, on_pipeline=_recorder(delivered))
    assert result.completed and result.sr_written == 3
    out = tmp_path / "run"
    raw = zarr.open_group(str(out / "raw" / "raw_p000.ome.zarr"), mode="r")["0"]
    wf = zarr.open_group(str(out / "wf" / "wf_p000.ome.zarr"), mode="r")["0"]
    assert raw.shape == (3, 2, 9, SENSOR, SENSOR) and wf.shape == (3, 2, SENSOR, SENSOR)
    assert len(delivered) == 6
    for s in delivered:
        c = ("488", "560").index(s.channel)
        np.testing.assert_array_equal(raw[s.t, c], s.frames)
        np.testing.assert_allclose(wf[s.t, c], s.widefield(), rtol=1e-6)
    sr = zarr.open_group(str(out / "sr" / "sr_p000_488.ome.zarr"), mode="r")
    assert sr["0"].shape == (3, 1, 2 * SENSOR, 2 * SENSOR) and np.asarray(sr["0"]).max() > 0
    assert sr.attrs["livesr"]["livesr.method"] == "dfcan"
    assert sorted(p.name for p in result.files) == [
        "raw_p000.ome.zarr", "sr_p000_488.ome.zarr", "wf_p000.ome.zarr"]


def test_sim_protocol_writes_raw_wf_and_sr_with_metadata(tmp_path: Path) -> None:
    path = two_channel_sim_protocol(tmp_path, SENSOR, "{count: 3}", "{wf: true, sr: every}")
    delivered: list[FrameSet] = []
    result = acquisition.run(path, progress=False, on_pipeline=_recorder(delivered))
    out = tmp_path / "run"
    assert result.completed and result.error is None
    assert (result.frames_acquired, result.frames_written, result.sets_written) == (54, 54, 6)
    assert (result.wf_written, result.sr_written, result.inferred) == (6, 3, 3)
    assert result.latency_p50_ms is not None and result.latency_p99_ms is not None

    # raw: every frame, in acquisition order, TCZYX, camera pixel size
    with tifffile.TiffFile(out / "raw" / "raw_p000.ome.tif") as tif:
        series = tif.series[0]
        assert series.axes == "TCZYX" and series.shape == (3, 2, 9, SENSOR, SENSOR)
        raw = series.asarray()
        xml = tif.ome_metadata
    assert 'PhysicalSizeX="0.0626"' in xml and 'PhysicalSizeXUnit="µm"' in xml
    assert 'Name="560"' in xml and 'ExcitationWavelength="488.0"' in xml
    assert [(s.t, s.channel) for s in delivered] == [(t, c) for t in range(3)
                                                     for c in ("488", "560")]
    for s in delivered:
        np.testing.assert_array_equal(raw[s.t, ("488", "560").index(s.channel)], s.frames)
    lines = (out / "raw" / "raw_p000.jsonl").read_text().splitlines()[1:]
    index = [json.loads(line) for line in lines]
    assert [(e["t"], e["c"], e["z"]) for e in index] == [
        (t, c, z) for t in range(3) for c in range(2) for z in range(9)]
    assert index[0]["pattern"] == "0" and index[0]["laser_powers_mw"] == {"488": 20.0,
                                                                          "560": 20.0}
    assert not list(out.glob("*/*.bin"))  # journals finalized

    # WF: the mean of each set, TCYX, camera pixel size
    with tifffile.TiffFile(out / "wf" / "wf_p000.ome.tif") as tif:
        assert tif.series[0].shape == (3, 2, SENSOR, SENSOR)
        wf = tif.series[0].asarray()
        assert 'PhysicalSizeX="0.0626"' in tif.ome_metadata
    np.testing.assert_allclose(wf, raw.mean(axis=2, dtype=np.float32), rtol=1e-6)

    # SR: the reconstructed channel only, 2× the pixels at half the pixel size
    with tifffile.TiffFile(out / "sr" / "sr_p000_488.ome.tif") as tif:
        assert tif.series[0].get_shape(False)[:2] == (3, 1)
        sr = tif.series[0].asarray()
        assert sr.shape == (3, 2 * SENSOR, 2 * SENSOR) and sr.dtype == np.uint16
        assert 'PhysicalSizeX="0.0313"' in tif.ome_metadata
        assert "livesr.weights_sha256" in tif.ome_metadata
    assert sr.max() > 0
    assert not (out / "sr" / "sr_p000_560.ome.tif").exists()
    # each SR plane's JSON line: its set's record as the SR journal has always had it
    sr_index = [json.loads(line) for line in
                (out / "sr" / "sr_p000_488.jsonl").read_text().splitlines()[1:]]
    assert [list(e) for e in sr_index] == [SR_LINE_KEYS] * 3
    assert [(e["t"], e["p"], e["channel"], e["c"]) for e in sr_index] == [
        (t, 0, "488", 0) for t in range(3)]
    assert [e["timestamp_ms"] for e in sr_index] == [
        s.timestamps_ms[0] for s in delivered if s.channel == "488"]
    assert all(e["exposure_ms"] == 2.0 and e["latency_ms"] > 0 for e in sr_index)

    run_json = json.loads((out / "run.json").read_text())
    assert run_json["status"] == "finished" and run_json["summary"]["frames_written"] == 54
    assert run_json["versions"]["pymmcore-plus"] and run_json["device_state_at_end"]["Camera"]
    assert (out / "protocol.yaml").read_text() == path.read_text()
    with pytest.raises(FileExistsError, match="already holds a run"):
        acquisition.run(path, progress=False)


def test_wf_mode_with_sisr_for_display_only(tmp_path: Path) -> None:
    cfg = small_cfg(tmp_path, SENSOR)
    tiny_dfcan(tmp_path / "tiny_sisr.safetensors", in_channels=1)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}, roi: 32}}
        mode: wf
        channels:
          - {{preset: "488", power_mw: 5, exposure_ms: 1,
              reconstruction: {{method: dfcan, weights: tiny_sisr.safetensors}}}}
        timelapse: {{count: 20}}
        save: {{sr: displayed}}
        output: run
        inference: {{backend: torch, device: cpu}}
        """)
    seen: list[Pipeline] = []
    result = acquisition.run(path, progress=False, on_pipeline=seen.append)
    assert result.frames_written == 20 and result.wf_written == 0  # WF mode: raw is WF
    # display mode: what was shown was saved; stale sets were dropped, none lost or failed
    assert result.sr_written == result.inferred >= 1
    assert result.inferred + result.dropped_for_display == 20
    shown = seen[0].display.latest("488")
    assert shown is not None and shown.kind == "sr" and shown.image.shape == (64, 64)
    with tifffile.TiffFile(tmp_path / "run" / "raw" / "raw_p000.ome.tif") as tif:
        assert tif.series[0].axes == "TYX" and tif.series[0].shape == (20, 32, 32)
        assert 'SizeT="20"' in tif.ome_metadata and 'SizeC="1"' in tif.ome_metadata
    # the displayed sets' SR on the run's time axis: their planes filled, the others zero
    sr = tifffile.imread(tmp_path / "run" / "sr" / "sr_p000_488.ome.tif")
    index = (tmp_path / "run" / "sr" / "sr_p000_488.jsonl").read_text().splitlines()[1:]
    times = [json.loads(line)["t"] for line in index]
    assert len(times) == result.sr_written and times == sorted(set(times))
    assert sr.shape[0] == 20
    filled = sr.reshape(len(sr), -1).max(axis=1) > 0
    assert sorted(np.nonzero(filled)[0].tolist()) == times


def test_wiener_sim_reconstructs_every_set(tmp_path: Path) -> None:
    pytest.importorskip("inference.wiener_sim.wiener_reconstructor")
    cfg = small_cfg(tmp_path, 128)  # the pattern estimate wants a few hundred pixels
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels: [{{preset: "488", power_mw: 20, exposure_ms: 5,
                     reconstruction: {{method: wiener-sim}}}}]
        timelapse: {{count: 2}}
        save: {{sr: every}}
        output: run
        """)
    result = acquisition.run(path, progress=False)
    assert result.completed and result.sr_written == result.inferred == 2
    assert result.inference_failed == 0
    with tifffile.TiffFile(tmp_path / "run" / "sr" / "sr_p000_488.ome.tif") as tif:
        assert tif.series[0].shape == (2, 256, 256)
        assert 'PhysicalSizeX="0.0313"' in tif.ome_metadata
        assert "wiener-sim" in tif.ome_metadata
        assert "Period-nm-488" in tif.ome_metadata  # the carriers the pattern device reported
    # the first set's pattern is estimated, the second's phase drift measured (none here)
    index = (tmp_path / "run" / "sr" / "sr_p000_488.jsonl").read_text().splitlines()[1:]
    records = [json.loads(line) for line in index]
    assert [r["pattern"] for r in records] == ["estimated", "tracked"]
    assert max(abs(d) for d in records[1]["phase_drift_rad"]) < 0.1
    summary = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]
    recorded = summary["reconstruction"]["488"]
    assert recorded["sets"] == {"estimated": 1, "tracked": 1}
    assert recorded["first"]["tracked"]["t"] == 1
    assert len(recorded["calibration"]["k_vectors_per_um"]) == 3


def test_ome_zarr_output(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    cfg = small_cfg(tmp_path, 32)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: gi-sim
        channels: [{{preset: "560", power_mw: 5, exposure_ms: 1}}]
        timelapse: {{count: 2}}
        save: {{format: ome-zarr}}
        output: run
        """)
    result = acquisition.run(path, progress=False)
    assert result.completed
    raw = zarr.open_group(str(tmp_path / "run" / "raw" / "raw_p000.ome.zarr"), mode="r")
    assert raw["0"].shape == (2, 1, 9, 32, 32) and raw["0"][:].min() > 0
    wf = zarr.open_group(str(tmp_path / "run" / "wf" / "wf_p000.ome.zarr"), mode="r")
    assert wf["0"].shape == (2, 1, 32, 32)
    state = json.loads((tmp_path / "run" / "run.json").read_text())["device_state_at_end"]
    assert state["Pattern"]["Illumination"] == "GI"  # gi-sim chose grazing incidence


def _frame_set(t: int) -> FrameSet:
    return FrameSet(t=t, channel="488", position=0, line_nm=488,
                    frames=np.full((9, 8, 8), t, np.uint16), patterns=tuple("012345678"),
                    timestamps_ms=np.arange(9.0), exposure_ms=1.0,
                    laser_powers_mw={488: 1.0}, hardware_sequenced=True)


def test_a_sets_info_makes_the_record_the_sr_journal_always_had() -> None:
    frame_set = _frame_set(3)
    frame_set.position, frame_set.timestamps_ms = 2, np.arange(9.0) + 41.5
    info = SetInfo.of(frame_set)
    # the dict Pipeline.on_set used to submit, key for key and in the same order
    before = {"t": frame_set.t, "p": frame_set.position, "channel": frame_set.channel,
              "timestamp_ms": float(frame_set.timestamps_ms[0]),
              "exposure_ms": frame_set.exposure_ms}
    record = info.to_record()
    assert record == before and list(record) == list(before)
    assert type(record["timestamp_ms"]) is float and type(record["t"]) is int
    result = StreamResult(seq=5, image=np.zeros((4, 4), np.float32), metadata=info,
                          latency_s=0.0123456)
    line = sr_record(result)
    assert line == {**before, "seq": 5, "latency_ms": 12.346}
    assert list(line) == [*before, "seq", "latency_ms"]
    json.dumps(line)  # plain JSON values
    # Live counts its sets across engine runs: another t, the rest of the set's
    assert SetInfo.of(frame_set, t=11) == SetInfo(11, 2, "488", 41.5, 1.0)
    with pytest.raises(AttributeError):
        info.t = 4  # type: ignore[misc]


def _writers(out: Path) -> RunWriters:
    return RunWriters(out, [ChannelInfo(0, "488", 488)], 9, 0.0626, 0.0, "tirf-sim", True)


def test_full_writer_queue_stops_the_run_instead_of_dropping_raw_frames(tmp_path: Path) -> None:
    stops: list[bool] = []
    pipeline = Pipeline(_writers(tmp_path), {}, "none", queue_sets=2,
                        stop_run=lambda: stops.append(True))
    for t in range(3):  # the writer thread is not started: the queue fills
        pipeline.on_set(_frame_set(t))
    assert stops == [True]
    assert pipeline.error is not None and "writer fell behind" in pipeline.error


def test_failing_writer_stops_the_run(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    stops: list[bool] = []
    pipeline = Pipeline(_writers(tmp_path / "not-a-folder"), {}, "none", queue_sets=8,
                        stop_run=lambda: stops.append(True))
    pipeline.start()
    pipeline.on_set(_frame_set(0))
    pipeline.finish_acquisition()
    pipeline.finish_inference()
    assert stops == [True] and pipeline.sets_written == 0
    assert pipeline.error is not None and "writing raw frames failed" in pipeline.error


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_long_wf_timelapse_loses_no_frame_and_keeps_memory_flat(tmp_path: Path) -> None:
    cfg = small_cfg(tmp_path, SENSOR)
    n = 2000
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: wf
        channels: [{{preset: "488", power_mw: 5, exposure_ms: 0.5}}]
        timelapse: {{count: {n}}}
        output: run
        """)
    rss: dict[int, float] = {}

    def hook(pipeline: Pipeline) -> None:
        deliver = pipeline.on_set

        def on_set(frame_set: FrameSet) -> None:
            if frame_set.t in (100, n - 1):  # after warm-up, and at the end
                rss[frame_set.t] = _rss_mb()
            deliver(frame_set)

        pipeline.on_set = on_set  # type: ignore[method-assign]

    result = acquisition.run(path, progress=False, on_pipeline=hook)
    assert result.frames_acquired == result.frames_written == n and result.completed
    raw = tifffile.imread(tmp_path / "run" / "raw" / "raw_p000.ome.tif")
    assert raw.shape == (n, SENSOR, SENSOR) and (raw.reshape(n, -1).max(axis=1) > 0).all()
    assert rss[n - 1] - rss[100] < 50, rss


def test_positions_without_an_xy_stage_are_refused_before_acquiring(tmp_path: Path) -> None:
    from yamlconfig.located import ConfigError

    cfg = small_cfg(tmp_path, 32)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: wf
        channels: [{{preset: "488", power_mw: 5, exposure_ms: 1}}]
        positions: [{{x: 0, y: 0}}, {{x: 10, y: 0}}]
        output: run
        """)
    with pytest.raises(ConfigError, match=rf"{path}:4:12: positions: .* no XY stage"):
        acquisition.run(path, progress=False)
    assert not (tmp_path / "run" / "run.json").exists()


def test_a_writer_failure_mid_run_stops_the_acquisition_and_keeps_what_was_written(
        tmp_path: Path) -> None:
    cfg = small_cfg(tmp_path, 32)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels: [{{preset: "488", power_mw: 5, exposure_ms: 1}}]
        timelapse: {{count: 2000}}
        output: run
        """)

    def hook(pipeline: Pipeline) -> None:  # the disk fails at the fourth set
        write_set = pipeline.writers.write_set

        def failing(frame_set: FrameSet) -> np.ndarray | None:
            if frame_set.t == 3:
                raise OSError(28, "No space left on device")
            return write_set(frame_set)

        pipeline.writers.write_set = failing  # type: ignore[method-assign]

    with pytest.raises(RuntimeError, match=r"writing raw frames failed: OSError.*No space"):
        acquisition.run(path, progress=False, on_pipeline=hook)
    raw = tifffile.imread(tmp_path / "run" / "raw" / "raw_p000.ome.tif")
    assert raw.shape == (3, 9, 32, 32)  # the three sets written before the failure
    summary = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]
    assert summary["frames_written"] == 27 and not summary["completed"]
    assert summary["sets_acquired"] < 2000  # the acquisition was stopped, not run to the end


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB file system of its own (tmpfs), or a skip where it cannot be mounted."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("fmt", ["ome-tiff", "ome-zarr"])
def test_a_disk_that_fills_mid_run_stops_it_with_lasers_off_and_readable_files(
        tmp_path: Path, small_disk: Path, fmt: str) -> None:
    from acquisition.storage.recover import recover
    from hardware.microscope import Microscope

    cfg = small_cfg(tmp_path, 64)
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels: [{{preset: "488", power_mw: 5, exposure_ms: 1}}]
        timelapse: {{count: 200}}
        save: {{format: {fmt}, sr: none}}
        output: {small_disk / "run"}
        """)

    def fill_the_disk(pipeline: Pipeline) -> None:  # another program takes the space
        free = shutil.disk_usage(small_disk).free
        (small_disk / "filler").write_bytes(bytes(max(0, free - 2 * 1024**2)))

    with Microscope.open(cfg) as scope:
        with pytest.raises(RuntimeError, match=r"writing raw frames failed: OSError.*No space"
                           r".*readable in "):
            acquisition.run(path, progress=False, on_pipeline=fill_the_disk, scope=scope)
        assert scope.emitting() == []  # every laser off, the AOTF blanked
    # what was written reads back with the ordinary reader as it is, before any repair
    log = small_disk / "run" / "raw" / "raw_p000.jsonl"
    written = log.read_text().count("\n") // 9  # complete sets (9 lines each, after the header)
    assert 0 < written < 200
    image = small_disk / "run" / "raw" / ("raw_p000.ome.zarr" if fmt == "ome-zarr"
                                         else "raw_p000.ome.tif")
    import zarr

    if fmt == "ome-zarr":
        raw = np.asarray(zarr.open_group(str(image), mode="r")["0"][:written])
    else:
        with tifffile.TiffFile(image) as tif:
            raw = tif.series[0].asarray()[:written]
    assert raw.reshape(written, -1).min(axis=1).all()  # camera frames, not holes
    (small_disk / "filler").unlink()  # space freed
    if json.loads((small_disk / "run" / "run.json").read_text())["status"] == "running":
        recover(small_disk / "run")  # run.json could not be written: recover finishes it
    if fmt == "ome-zarr":
        assert zarr.open_group(str(image), mode="r")["0"].shape[0] == written
    else:
        with tifffile.TiffFile(image) as tif:
            assert tif.series[0].shape[0] == written
