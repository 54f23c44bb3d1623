"""A run's files open at their scale in the viewers microscopists use.

- Fiji reads OME-TIFF through Bio-Formats, which parses the OME-XML: every image a run writes
  must validate against the OME schema, with the pixel size, unit, channels and planes that
  Bio-Formats reads (checked with ome-types).
- napari opens a run folder or one of its images through the ``livesr`` reader plugin (checked
  with napari's own viewer model, which finds the plugin through its manifest as the desktop
  app does): SR lies over WF on its finer grid.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile
from acquisition_support import two_channel_sim_protocol

import acquisition
from acquisition.storage.napari_reader import _plane_of_time_point, get_reader
from acquisition.storage.writers import ChannelInfo, RunWriters
from hardware.frameset import FrameSet

if TYPE_CHECKING:
    from pathlib import Path

SENSOR = 48
PX = 0.0626


def _run(folder: Path, fmt: str) -> Path:
    path = two_channel_sim_protocol(folder, SENSOR, "{count: 2, interval_s: 0.05}",
                                    f"{{wf: true, sr: every, format: {fmt}}}")
    assert acquisition.run(path, progress=False).completed
    return folder / "run"


@pytest.fixture(scope="module", autouse=True)
def _napari_plugins() -> None:
    """Find installed napari plugins (``livesr`` among them) as the napari app does at start."""
    try:
        import npe2
    except ImportError:  # napari is not installed: its tests skip
        return
    npe2.PluginManager.instance().discover()


@pytest.fixture(scope="module")
def tiff_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("tiff"), "ome-tiff")


def test_every_ome_tiff_validates_against_the_ome_schema(tiff_run: Path) -> None:
    ome_types = pytest.importorskip("ome_types")
    pytest.importorskip("xmlschema")
    expected = {  # file: (pixel size, SizeZ, SizeC, channels)
        "raw/raw_p000.ome.tif": (PX, 9, 2, ["488", "560"]),
        "wf/wf_p000.ome.tif": (PX, 1, 2, ["488", "560"]),
        "sr/sr_p000_488.ome.tif": (PX / 2, 1, 1, ["488"]),
    }
    for name, (px, size_z, size_c, channels) in expected.items():
        ome = ome_types.from_tiff(tiff_run / name, validate=True)
        pixels = ome.images[0].pixels
        assert pixels.physical_size_x == pytest.approx(px, abs=1e-4), name
        assert pixels.physical_size_x_unit.value == "µm"
        assert pixels.physical_size_y == pixels.physical_size_x
        assert (pixels.size_z, pixels.size_c, pixels.size_t) == (size_z, size_c, 2)
        assert [c.name for c in pixels.channels] == channels
        assert len(pixels.planes) == size_z * size_c * 2
        assert pixels.planes[-1].delta_t is not None and pixels.planes[-1].delta_t > 0
        assert pixels.time_increment == pytest.approx(0.05)


def test_napari_opens_a_run_folder_at_scale(tiff_run: Path) -> None:
    components = pytest.importorskip("napari.components")
    viewer = components.ViewerModel()
    viewer.open(str(tiff_run), plugin="livesr")
    layers = {layer.name: layer for layer in viewer.layers}
    assert set(layers) == {"raw 488", "raw 560", "WF 488", "WF 560", "SR 488"}
    raw, wf, sr = layers["raw 488"], layers["WF 488"], layers["SR 488"]
    assert not raw.visible and wf.visible and sr.visible
    assert raw.data.shape == (9, 2, SENSOR, SENSOR) and raw.axis_labels[0] == "pattern"
    # napari lines layers up from their last axis: every layer's axes are the viewer's last
    assert tuple(viewer.dims.axis_labels) == ("pattern", "t", "y", "x")
    for layer in viewer.layers:
        assert tuple(layer.axis_labels) == tuple(viewer.dims.axis_labels[-layer.ndim:])
    np.testing.assert_allclose(raw.scale, (1, 0.05, PX, PX))
    np.testing.assert_allclose(wf.scale, (0.05, PX, PX))
    np.testing.assert_allclose(sr.scale, (0.05, PX / 2, PX / 2), atol=1e-4)
    assert str(sr.units[-1]) == "micrometer"
    # SR covers exactly the field of WF and raw: pixel edges at 0 µm, the same far edge
    for layer in (raw, wf, sr):
        extent = layer.extent.world
        low, high = extent[0][-2:] - layer.scale[-2:] / 2, extent[1][-2:] + layer.scale[-2:] / 2
        np.testing.assert_allclose(low, 0, atol=1e-9)
        np.testing.assert_allclose(high, SENSOR * PX, rtol=2e-3)
    assert wf.colormap.name == "green" and layers["WF 560"].colormap.name == "magenta"
    with tifffile.TiffFile(tiff_run / "wf" / "wf_p000.ome.tif") as tif:
        np.testing.assert_array_equal(np.asarray(layers["WF 560"].data),
                                      tif.series[0].asarray()[:, 1])
    assert sr.metadata["livesr"]["livesr.method"] == "dfcan"


def test_napari_opens_one_image_of_a_run(tiff_run: Path) -> None:
    components = pytest.importorskip("napari.components")
    viewer = components.ViewerModel()
    viewer.open(str(tiff_run / "sr" / "sr_p000_488.ome.tif"), plugin="livesr")
    (sr,) = viewer.layers
    assert sr.name == "SR 488" and sr.data.shape == (2, 2 * SENSOR, 2 * SENSOR)
    np.testing.assert_allclose(sr.scale[-2:], PX / 2, atol=1e-4)


def test_napari_opens_an_ome_zarr_run(tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    components = pytest.importorskip("napari.components")
    run = _run(tmp_path, "ome-zarr")
    viewer = components.ViewerModel()
    viewer.open(str(run), plugin="livesr")
    layers = {layer.name: layer for layer in viewer.layers}
    assert set(layers) == {"raw 488", "raw 560", "WF 488", "WF 560", "SR 488"}
    np.testing.assert_allclose(layers["raw 560"].scale, (1, 0.05, PX, PX))
    np.testing.assert_allclose(layers["SR 488"].scale[-2:], PX / 2, atol=1e-4)
    assert np.asarray(layers["raw 560"].data).shape == (9, 2, SENSOR, SENSOR)


def _frame_set(t: int, position: int) -> FrameSet:
    return FrameSet(t=t, channel="488", position=position, line_nm=488,
                    frames=np.full((9, 8, 8), 10 * position + t, np.uint16),
                    patterns=tuple("012345678"), timestamps_ms=np.arange(9.0) + 100 * t,
                    exposure_ms=1.0, laser_powers_mw={488: 1.0}, hardware_sequenced=True)


def test_sr_of_the_sets_shown_live_lines_up_in_time_and_positions_stay_apart(
        tmp_path: Path) -> None:
    """Written as a run does: 5 time points at 2 positions, SR kept for t = 0 and 3 only."""
    components = pytest.importorskip("napari.components")
    channel = ChannelInfo(0, "488", 488, {"method": "dfcan", "scale": 2})
    writers = RunWriters(tmp_path, [channel], 9, PX, 0.0, "tirf-sim", save_wf=True,
                         positions=[{"name": "A"}, {"name": "B"}], sr_every=False,
                         n_time_points=5)
    for t in range(5):
        for p in (0, 1):
            writers.write_set(_frame_set(t, p))
            if t in (0, 3):
                writers.write_sr(np.full((16, 16), (10 * p + t) / 100, np.float32),
                                 {"channel": "488", "t": t, "p": p, "timestamp_ms": 100.0 * t,
                                  "exposure_ms": 1.0})
    writers.finish()
    (tmp_path / "run.json").write_text(json.dumps({"livesr_run": 1, "status": "finished"}))

    viewer = components.ViewerModel()
    viewer.open(str(tmp_path), plugin="livesr")
    layers = {layer.name: layer for layer in viewer.layers}
    assert {"WF 488 p000", "WF 488 p001", "SR 488 p000 (sets shown live)"} <= set(layers)
    assert layers["WF 488 p000"].visible and not layers["WF 488 p001"].visible
    sr = layers["SR 488 p001 (sets shown live)"]
    assert sr.metadata["time_points"] == [0, 3] and not sr.visible
    shown = np.asarray(sr.data)[:, 0, 0] / 65535 * 100  # the value written: 10·p + t kept
    np.testing.assert_allclose(shown, [10, 10, 10, 13], atol=0.01)
    np.testing.assert_array_equal(np.asarray(layers["WF 488 p001"].data)[:, 0, 0],
                                  [10, 11, 12, 13, 14])


def test_each_time_point_shows_the_newest_kept_plane() -> None:
    np.testing.assert_array_equal(_plane_of_time_point([0, 4, 7]), [0, 0, 0, 0, 4, 4, 4, 7])
    # files of older versions: the k-th plane is the k-th kept time point
    np.testing.assert_array_equal(_plane_of_time_point([0, 4, 7], aligned=False),
                                  [0, 0, 0, 0, 1, 1, 1, 2])
    assert _plane_of_time_point(None) is None and _plane_of_time_point([]) is None


def test_a_run_still_acquiring_or_killed_opens_as_it_is(tmp_path: Path) -> None:
    """Written in place, the images are readable before the run ends (zeros not yet acquired)."""
    components = pytest.importorskip("napari.components")
    channel = ChannelInfo(0, "488", 488)
    writers = RunWriters(tmp_path, [channel], 9, PX, 0.0, "tirf-sim", save_wf=True,
                         n_time_points=6)
    for t in range(2):
        writers.write_set(_frame_set(t, 0))
    (tmp_path / "run.json").write_text(json.dumps({"livesr_run": 1, "status": "running"}))
    viewer = components.ViewerModel()
    viewer.open(str(tmp_path), plugin="livesr")
    wf = np.asarray({layer.name: layer for layer in viewer.layers}["WF 488"].data)
    np.testing.assert_array_equal(wf[:, 0, 0], [0, 1, 0, 0, 0, 0])
    writers.close()


def test_a_run_with_journals_of_an_older_version_says_so(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"livesr_run": 1, "status": "running"}))
    (tmp_path / "raw" / "raw_p000.bin").write_bytes(b"")
    reader = get_reader(str(tmp_path))
    assert reader is not None
    with pytest.raises(ValueError, match=r"older LiveSR"):
        reader(str(tmp_path))


def test_the_reader_leaves_other_files_to_other_readers(tmp_path: Path) -> None:
    plain = tmp_path / "plain.ome.tif"
    tifffile.imwrite(plain, np.zeros((4, 4), np.uint16), ome=True)
    assert get_reader(str(plain)) is None
    assert get_reader(str(tmp_path)) is None  # a folder without run.json
    assert get_reader(str(tmp_path / "missing.ome.tif")) is None
    (tmp_path / "damaged.ome.tif").write_bytes(b"II*\x00" + bytes(100))
    assert get_reader(str(tmp_path / "damaged.ome.tif")) is None
    (tmp_path / "empty.ome.zarr").mkdir()
    assert get_reader(str(tmp_path / "empty.ome.zarr")) is None
    other = tmp_path / "other"
    (other / "raw").mkdir(parents=True)
    (other / "run.json").write_text(json.dumps({"status": "finished"}))  # not LiveSR's
    assert get_reader(str(other)) is None
