"""Frame journals and their OME-TIFF: what is flushed reads back, torn ends are ignored, missing
planes are zero-filled and reported, the OME-XML carries axes, pixel size and per-plane times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile

from acquisition.storage.finalize import finalize_journal, ome_path
from acquisition.storage.journal import JournalWriter, read_journal

if TYPE_CHECKING:
    from pathlib import Path


def _header(axes: str = "TCZYX", z: int = 3, channels: int = 2) -> dict:
    return {"stream": "raw", "dtype": "uint16", "shape": [8, 6], "axes": axes, "z": z,
            "channels": [{"name": str(488 + 72 * c), "wavelength_nm": 488 + 72 * c}
                         for c in range(channels)],
            "pixel_size_um": 0.0626, "interval_s": 2.0, "description": "test",
            "annotation": {"livesr.z": "SIM pattern index"}}


def _write(stem: Path, n_t: int, z: int = 3, channels: int = 2, stop_after: int | None = None
           ) -> dict[tuple[int, int, int], np.ndarray]:
    rng = np.random.default_rng(0)
    writer = JournalWriter(stem, _header(z=z, channels=channels))
    written = {}
    for t in range(n_t):
        for c in range(channels):
            for k in range(z):
                if stop_after is not None and len(written) == stop_after:
                    writer.close()
                    return written
                frame = rng.integers(100, 4000, (8, 6), dtype=np.uint16)
                writer.append(frame, {"t": t, "c": c, "z": k, "timestamp_ms": 10.0 * len(written),
                                      "exposure_ms": 5.0})
                written[(t, c, k)] = frame
    writer.close()
    return written


def test_journal_reads_back_every_frame(tmp_path: Path) -> None:
    written = _write(tmp_path / "raw_p000", n_t=2)
    journal = read_journal(tmp_path / "raw_p000")
    data = journal.data()
    assert len(journal.frames) == len(written) == 12
    for entry in journal.frames:
        key = (entry["t"], entry["c"], entry["z"])
        np.testing.assert_array_equal(journal.frame(data, entry), written[key])


def test_journal_refuses_a_second_writer_and_a_wrong_shape(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "j", _header())
    with pytest.raises(ValueError, match="frame shape"):
        writer.append(np.zeros((4, 4), np.uint16), {})
    with pytest.raises(FileExistsError):
        JournalWriter(tmp_path / "j", _header())
    writer.close()


def test_torn_line_and_orphan_bytes_are_ignored(tmp_path: Path) -> None:
    stem = tmp_path / "raw_p000"
    written = _write(stem, n_t=1)
    # a kill while writing: half an index line, and half a frame of bytes after the last one
    with open(stem.with_suffix(".jsonl"), "a") as f:
        f.write('{"i": 6, "offset": 576, "t": 1, "c"')
    with open(stem.with_suffix(".bin"), "ab") as f:
        f.write(b"\x01" * 40)
    journal = read_journal(stem)
    assert len(journal.frames) == len(written) and journal.torn_lines == 1
    report = finalize_journal(stem)
    assert report.frames == 6 and report.torn_lines == 1 and not report.missing


def test_a_line_whose_bytes_are_short_is_dropped(tmp_path: Path) -> None:
    stem = tmp_path / "raw_p000"
    _write(stem, n_t=1)
    bin_path = stem.with_suffix(".bin")
    size = bin_path.stat().st_size
    with open(bin_path, "r+b") as f:
        f.truncate(size - 10)
    journal = read_journal(stem)
    assert len(journal.frames) == 5 and journal.short_frames == 1


def test_finalized_ome_tiff_has_axes_scale_channels_and_plane_times(tmp_path: Path) -> None:
    stem = tmp_path / "raw_p000"
    written = _write(stem, n_t=2)
    report = finalize_journal(stem)
    assert report.path == ome_path(stem) and not stem.with_suffix(".bin").exists()
    assert stem.with_suffix(".jsonl").exists()  # per-frame metadata stays beside the image
    with tifffile.TiffFile(report.path) as tif:
        series = tif.series[0]
        assert series.axes == "TCZYX" and series.shape == (2, 2, 3, 8, 6)
        data = series.asarray()
        xml = tif.ome_metadata
        assert tif.pages[0].tags["XResolution"].value  # TIFF resolution tags too
    for (t, c, k), frame in written.items():
        np.testing.assert_array_equal(data[t, c, k], frame)
    assert 'PhysicalSizeX="0.0626"' in xml and 'PhysicalSizeXUnit="µm"' in xml
    assert 'Name="488"' in xml and 'ExcitationWavelength="560.0"' in xml
    assert 'DeltaT="0.11"' in xml and 'ExposureTime="0.005"' in xml
    assert "SIM pattern index" in xml and 'TimeIncrement="2.0"' in xml


def test_incomplete_last_time_point_is_zero_filled_and_reported(tmp_path: Path) -> None:
    stem = tmp_path / "raw_p000"
    written = _write(stem, n_t=3, stop_after=14)  # 2 full time points + 2 frames of the third
    report = finalize_journal(stem)
    assert report.frames == 14 and report.shape == (3, 2, 3, 8, 6)
    assert report.missing == [(2, 0, 2), (2, 1, 0), (2, 1, 1), (2, 1, 2)]
    assert "4 missing planes" in report.describe()
    data = tifffile.imread(report.path)
    for key in report.missing:
        assert not data[key].any()
    for (t, c, k), frame in written.items():
        np.testing.assert_array_equal(data[t, c, k], frame)


def test_a_journal_without_header_is_refused_clearly(tmp_path: Path) -> None:
    stem = tmp_path / "raw_p000"
    stem.with_suffix(".jsonl").write_text('{"livesr_jour')
    stem.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(ValueError, match="no journal header"):
        read_journal(stem)


def test_journal_finalized_as_ome_zarr(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    stem = tmp_path / "raw_p000"
    header = {**_header(), "format": "ome-zarr"}
    writer = JournalWriter(stem, header)
    rng = np.random.default_rng(1)
    written = {}
    for t in range(2):
        for c in range(2):
            for k in range(3):
                frame = rng.integers(100, 4000, (8, 6), dtype=np.uint16)
                writer.append(frame, {"t": t, "c": c, "z": k, "timestamp_ms": 1.0,
                                      "exposure_ms": 5.0})
                written[(t, c, k)] = frame
    writer.close()
    report = finalize_journal(stem)
    assert report.path == ome_path(stem, "ome-zarr") and report.path.is_dir()
    root = zarr.open_group(str(report.path), mode="r")
    data = root["0"][:]
    assert data.shape == (2, 2, 3, 8, 6)
    for (t, c, k), frame in written.items():
        np.testing.assert_array_equal(data[t, c, k], frame)
    multiscale = root.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["t", "c", "z", "y", "x"]
    scale = multiscale["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [2.0, 1.0, 1.0, 0.0626, 0.0626]
    assert root.attrs["livesr"]["z"] == "SIM pattern index"
    assert [c["label"] for c in root.attrs["ome"]["omero"]["channels"]] == ["488", "560"]
