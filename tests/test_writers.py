"""The run's images, written in place: what was delivered reads back, in each format, with its
metadata; the end of a run (or recover) rewrites metadata only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile

from acquisition.storage.recover import recover
from acquisition.storage.streams import StreamLayout, image_path, open_stream, read_metadata_log
from acquisition.storage.writers import ChannelInfo, RunWriters
from hardware.frameset import FrameSet

if TYPE_CHECKING:
    from pathlib import Path

PX = 0.0626
FORMATS = ["ome-tiff", "ome-zarr"]
CHANNELS = [ChannelInfo(0, "488", 488, {"method": "dfcan", "scale": 2}),
            ChannelInfo(1, "560", 560)]


def _set(t: int, channel: str, position: int, rng: np.random.Generator) -> FrameSet:
    return FrameSet(t=t, channel=channel, position=position,
                    line_nm=int(channel), frames=rng.integers(100, 4000, (9, 8, 6), np.uint16),
                    patterns=tuple("012345678"), timestamps_ms=np.arange(9.0) + 100 * t,
                    exposure_ms=5.0, laser_powers_mw={int(channel): 2.0},
                    hardware_sequenced=True)


def _write_run(out: Path, fmt: str, n_t: int, written_t: int | None = None
               ) -> tuple[RunWriters, list[FrameSet], dict[tuple[int, int], np.ndarray]]:
    """A 2-channel, 2-position SIM time-lapse of ``n_t`` time points, ``written_t`` written."""
    rng = np.random.default_rng(0)
    writers = RunWriters(out, CHANNELS, 9, PX, 2.0, "tirf-sim", save_wf=True,
                         positions=[{"name": "A"}, {"name": "B"}], fmt=fmt, n_time_points=n_t)
    delivered, sr = [], {}
    for t in range(n_t if written_t is None else written_t):
        for p in (0, 1):
            for channel in ("488", "560"):
                frame_set = _set(t, channel, p, rng)
                writers.write_set(frame_set)
                delivered.append(frame_set)
            image = rng.random((16, 12), dtype=np.float32)
            writers.write_sr(image, {"channel": "488", "t": t, "p": p,
                                     "timestamp_ms": 100.0 * t, "exposure_ms": 5.0})
            sr[(t, p)] = np.rint(image * 65535).astype(np.uint16)
    return writers, delivered, sr


def _read(path: Path) -> np.ndarray:
    if path.name.endswith(".ome.zarr"):
        import zarr

        return np.asarray(zarr.open_group(str(path), mode="r")["0"][:])
    with tifffile.TiffFile(path) as tif:
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        sizes = [int(pixels[f"Size{a}"]) for a in "TCZYX"]
        if sizes[2] == 1:
            del sizes[2]
        return tif.series[0].asarray().reshape(sizes)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_sim_time_lapse_reads_back_as_delivered(tmp_path: Path, fmt: str) -> None:
    writers, delivered, sr = _write_run(tmp_path, fmt, n_t=3)
    reports = writers.finish()
    assert [r.path.name for r in reports] == [
        image_path(tmp_path / s / n, fmt).name for s, n in
        (("raw", "raw_p000"), ("raw", "raw_p001"), ("wf", "wf_p000"), ("wf", "wf_p001"),
         ("sr", "sr_p000_488"), ("sr", "sr_p001_488"))]
    raw = {p: _read(image_path(tmp_path / "raw" / f"raw_p{p:03d}", fmt)) for p in (0, 1)}
    wf = {p: _read(image_path(tmp_path / "wf" / f"wf_p{p:03d}", fmt)) for p in (0, 1)}
    assert raw[0].shape == (3, 2, 9, 8, 6) and raw[0].dtype == np.uint16
    for s in delivered:
        c = ("488", "560").index(s.channel)
        np.testing.assert_array_equal(raw[s.position][s.t, c], s.frames)
        np.testing.assert_allclose(wf[s.position][s.t, c], s.widefield(), rtol=1e-6)
    for (t, p), image in sr.items():
        stored = _read(image_path(tmp_path / "sr" / f"sr_p{p:03d}_488", fmt))
        assert stored.shape == (3, 1, 16, 12)
        np.testing.assert_array_equal(stored[t, 0], image)
    lines = (tmp_path / "raw" / "raw_p001.jsonl").read_text().splitlines()
    header, first = json.loads(lines[0]), json.loads(lines[1])
    assert header["axes"] == "TCZYX" and header["shape"] == [3, 2, 9, 8, 6]
    assert (first["t"], first["c"], first["z"], first["p"]) == (0, 0, 0, 1)
    assert first["pattern"] == "0" and first["laser_powers_mw"] == {"488": 2.0}


def test_ome_tiff_metadata_is_valid_ome_with_scale_channels_and_plane_times(
        tmp_path: Path) -> None:
    ome_types = pytest.importorskip("ome_types")
    writers, _, _ = _write_run(tmp_path, "ome-tiff", n_t=2)
    writers.finish()
    with tifffile.TiffFile(tmp_path / "raw" / "raw_p000.ome.tif") as tif:
        series = tif.series[0]
        assert series.axes == "TCZYX" and series.shape == (2, 2, 9, 8, 6)
        xml = tif.ome_metadata
        assert tif.pages[0].tags["XResolution"].value  # TIFF resolution tags too
    ome = ome_types.from_xml(xml)  # validates against the OME schema
    pixels = ome.images[0].pixels
    assert pixels.physical_size_x == pytest.approx(PX) and pixels.size_t == 2
    assert [c.name for c in pixels.channels] == ["488", "560"]
    assert pixels.channels[1].excitation_wavelength == 560
    assert len(pixels.planes) == 2 * 2 * 9
    assert pixels.planes[9 * 2 + 1].delta_t == pytest.approx(0.101)  # t 1, c 0, z 1
    assert pixels.planes[0].exposure_time == pytest.approx(0.005)
    assert "SIM pattern index" in xml and 'TimeIncrement="2.0"' in xml
    with tifffile.TiffFile(tmp_path / "sr" / "sr_p000_488.ome.tif") as tif:
        assert f'PhysicalSizeX="{PX / 2}"' in tif.ome_metadata
        assert "livesr.method" in tif.ome_metadata


def test_ome_zarr_metadata_is_valid_ngff(tmp_path: Path) -> None:
    yaozarrs = pytest.importorskip("yaozarrs")
    zarr = pytest.importorskip("zarr")
    writers, _, _ = _write_run(tmp_path, "ome-zarr", n_t=2)
    writers.finish()
    path = tmp_path / "raw" / "raw_p000.ome.zarr"
    yaozarrs.validate_zarr_store(str(path))  # the NGFF 0.5 schema
    root = zarr.open_group(str(path), mode="r")
    multiscale = root.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["t", "c", "z", "y", "x"]
    scale = multiscale["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [2.0, 1.0, 1.0, PX, PX]
    assert root.attrs["livesr"]["z"] == "SIM pattern index"
    assert [c["label"] for c in root.attrs["ome"]["omero"]["channels"]] == ["488", "560"]
    assert root["0"].chunks == (1, 1, 9, 8, 6)  # one chunk per set and channel
    sr = zarr.open_group(str(tmp_path / "sr" / "sr_p000_488.ome.zarr"), mode="r")
    sr_scale = sr.attrs["ome"]["multiscales"][0]["datasets"][0]
    assert sr_scale["coordinateTransformations"][0]["scale"][-1] == pytest.approx(PX / 2)


def test_ome_zarr_opens_with_ome_zarr_py(tmp_path: Path) -> None:
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    writers, delivered, _ = _write_run(tmp_path, "ome-zarr", n_t=2)
    writers.finish()
    nodes = list(Reader(parse_url(str(tmp_path / "raw" / "raw_p000.ome.zarr")))())
    data = np.asarray(nodes[0].data[0])
    assert data.shape == (2, 2, 9, 8, 6)
    first = next(s for s in delivered if s.position == 0 and s.channel == "560")
    np.testing.assert_array_equal(data[0, 1], first.frames)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stopped_run_is_cut_to_its_complete_time_points(tmp_path: Path, fmt: str) -> None:
    writers, _, _ = _write_run(tmp_path, fmt, n_t=10, written_t=3)
    writers.write_set(_set(3, "488", 0, np.random.default_rng(5)))  # t 3 begun, not complete
    reports = writers.finish()
    raw = _read(image_path(tmp_path / "raw" / "raw_p000", fmt))
    assert raw.shape == (3, 2, 9, 8, 6)  # the complete time points of every position
    assert reports[0].frames == 3 * 2 * 9 and not reports[0].missing


@pytest.mark.parametrize("fmt", FORMATS)
def test_recover_after_a_kill_rewrites_metadata_only(tmp_path: Path, fmt: str) -> None:
    writers, delivered, _ = _write_run(tmp_path, fmt, n_t=10, written_t=4)
    writers.close()  # a kill: nothing finished
    (tmp_path / "run.json").write_text(json.dumps({"livesr_run": 1, "status": "running"}))
    path = image_path(tmp_path / "raw" / "raw_p000", fmt)
    # readable as it is, by the ordinary readers: the planned length, unacquired sets zero
    killed = _read(path)
    assert killed.shape == (10, 2, 9, 8, 6) and not killed[4:].any()
    pixels_before = _pixel_bytes(path, 4 * 2 * 9 * 8 * 6 * 2)
    with open(tmp_path / "raw" / "raw_p000.jsonl", "a") as f:
        f.write('{"i": 999, "t": 4, "c"')  # a line torn by the kill
    reports = recover(tmp_path)
    assert _pixel_bytes(path, 4 * 2 * 9 * 8 * 6 * 2) == pixels_before  # not a pixel rewritten
    raw = _read(path)
    assert raw.shape == (4, 2, 9, 8, 6)
    for s in delivered:
        if s.position == 0:
            np.testing.assert_array_equal(raw[s.t, ("488", "560").index(s.channel)], s.frames)
    report = next(r for r in reports if r.path == path)
    assert report.frames == 4 * 2 * 9 and report.torn_lines == 1
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "recovered" and run["recovered"]["frames"][path.name] == 72
    with pytest.raises(ValueError, match="already"):
        recover(tmp_path)


def _pixel_bytes(path: Path, n_bytes: int) -> dict[str, tuple[int, int]]:
    """Zarr: each chunk file's size and mtime (ns); TIFF: its first ``n_bytes`` of pixels.

    For a TIFF, where they lie and their hash.
    """
    if path.is_dir():
        return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted((path / "0" / "c").rglob("*")) if p.is_file()}
    with tifffile.TiffFile(path) as tif:
        offset = int(tif.series[0].dataoffset)
    return {"data": (offset, hash(path.read_bytes()[offset:offset + n_bytes]))}


def test_the_metadata_log_survives_a_torn_line_and_refuses_a_foreign_file(tmp_path: Path) -> None:
    layout = StreamLayout("wf", "wf p0", "TCYX", (2, 1, 4, 4), "float32",
                          [{"name": "488", "wavelength_nm": 488}], PX, 0.0, "test")
    stream = open_stream(tmp_path / "wf_p000", layout)
    stream.write(1, 0, np.ones((4, 4), np.float32))
    stream.close()
    with pytest.raises(FileExistsError):
        open_stream(tmp_path / "wf_p000", layout)
    foreign = tmp_path / "other.jsonl"
    foreign.write_text('{"livesr_journal": 1}\n')
    with pytest.raises(ValueError, match="not a LiveSR metadata log"):
        read_metadata_log(foreign)
    foreign.write_text('{"livesr_meta')
    with pytest.raises(ValueError, match="no header line"):
        read_metadata_log(foreign)
    np.testing.assert_array_equal(_read(image_path(tmp_path / "wf_p000", "ome-tiff"))[1, 0],
                                  np.ones((4, 4), np.float32))


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_ome_zarr_chunks_compressed_losslessly_read_back_with_zarr(
        tmp_path: Path, compression: str) -> None:
    zarr = pytest.importorskip("zarr")
    writers = RunWriters(tmp_path, CHANNELS[:1], 9, PX, 0.0, "tirf-sim", save_wf=True,
                         fmt="ome-zarr", n_time_points=2, compression=compression)
    rng = np.random.default_rng(3)
    sets = []
    for t in range(2):
        frames = (rng.poisson(20, (9, 8, 6)) + 100).astype(np.uint16)  # dim camera frames
        sets.append(FrameSet(t, "488", 0, 488, frames, tuple("012345678"),
                             np.arange(9.0), 1.0, {488: 1.0}, True))
        writers.write_set(sets[-1])
    writers.finish()
    array = zarr.open_group(str(tmp_path / "raw" / "raw_p000.ome.zarr"), mode="r")["0"]
    assert [type(c).__name__ for c in array.metadata.codecs] == ["BytesCodec", "BloscCodec"]
    for s in sets:
        np.testing.assert_array_equal(array[s.t, 0], s.frames)
    chunk = tmp_path / "raw" / "raw_p000.ome.zarr" / "0" / "c" / "1" / "0" / "0" / "0" / "0"
    assert chunk.stat().st_size < 0.8 * sets[1].frames.nbytes  # smaller on disk
