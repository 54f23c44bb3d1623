"""Open LiveSR output in napari at its scale.

A run folder, or one of its OME-TIFF or OME-Zarr images, becomes one image layer per stream
(raw, WF, SR), channel and position. Layers are placed in µm with pixel edges at 0, so an SR
image lies on its finer grid exactly over the WF and raw images. The SIM pattern index is an
axis of its own, and each channel is coloured by its excitation line. Raw layers of a run
folder start hidden.

napari finds this reader through the ``livesr`` plugin manifest
(``acquisition/storage/napari.yaml``). The layer data needs neither napari nor Qt.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["StoredImage", "get_reader", "layer_data", "read", "read_image"]

LayerData = tuple[Any, dict[str, Any], str]
STREAMS = ("raw", "wf", "sr")
STREAM_LABELS = {"raw": "raw", "wf": "WF", "sr": "SR"}
LINE_COLORMAPS = {405: "blue", 488: "green", 560: "magenta"}


@dataclass(frozen=True)
class StoredImage:
    """One LiveSR image on disk: its data as ``T C [Z] Y X`` and what places it in space."""

    path: Path
    stream: str
    data: Any  # numpy memmap (OME-TIFF) or zarr array (OME-Zarr), T C [Z] Y X
    pixel_um: float
    interval_s: float
    channels: list[tuple[str, float]]  # name, excitation wavelength (nm)
    annotation: dict[str, str]
    #: the time points whose plane was kept when only some were (SR of the sets shown live),
    #: else ``None``; with ``aligned`` the planes sit at their time points (zeros between),
    #: else (files of older versions) T counts the kept planes
    time_points: list[int] | None = None
    aligned: bool = True

    @property
    def has_patterns(self) -> bool:
        """Whether the data has the SIM pattern axis (``T C Z Y X``)."""
        return len(self.data.shape) == 5


def read_image(path: str | Path) -> StoredImage | None:
    """Open the LiveSR image at ``path`` (``.ome.tif`` or ``.ome.zarr``).

    ``None`` if it is not one LiveSR wrote.
    """
    path = Path(path)
    if path.name.endswith((".ome.tif", ".ome.tiff")) and path.is_file():
        return _read_ome_tiff(path)
    if path.name.endswith(".ome.zarr") and path.is_dir():
        return _read_ome_zarr(path)
    return None


def _read_ome_tiff(path: Path) -> StoredImage | None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.is_ome or tif.ome_metadata is None:
            return None
        ome = tifffile.xml2dict(tif.ome_metadata)["OME"]
    annotation = _livesr_annotation(ome.get("StructuredAnnotations", {}))
    if "livesr.stream" not in annotation:
        return None
    image = ome["Image"][0] if isinstance(ome["Image"], list) else ome["Image"]
    pixels = image["Pixels"]
    channels = pixels["Channel"] if isinstance(pixels["Channel"], list) else [pixels["Channel"]]
    size = {axis: int(pixels[f"Size{axis}"]) for axis in "TCZYX"}
    shape = tuple(size[axis] for axis in ("TCZYX" if size["Z"] > 1 else "TCYX"))
    try:
        data = tifffile.memmap(path, mode="r").reshape(shape)
    except ValueError:  # not memory-mappable (compressed, tiled): read it whole
        data = tifffile.imread(path).reshape(shape)
    return StoredImage(path, annotation["livesr.stream"], data, float(pixels["PhysicalSizeX"]),
                       float(pixels.get("TimeIncrement") or 0.0),
                       [(str(c["Name"]), float(c.get("ExcitationWavelength", 0.0)))
                        for c in channels], annotation, *_time_points(path, annotation))


def _livesr_annotation(annotations: dict[str, Any]) -> dict[str, str]:
    maps = annotations.get("MapAnnotation", [])
    for entry in maps if isinstance(maps, list) else [maps]:
        if entry.get("Namespace") == "livesr":
            pairs = entry["Value"]["M"]
            return {str(p["K"]): str(p["value"]) for p in
                    (pairs if isinstance(pairs, list) else [pairs])}
    return {}


def _read_ome_zarr(path: Path) -> StoredImage | None:
    try:
        import zarr
    except ImportError:
        return None
    root = zarr.open_group(str(path), mode="r")
    livesr = root.attrs.get("livesr")
    if not isinstance(livesr, dict) or "livesr.stream" not in livesr:
        return None
    annotation = {k: str(v) for k, v in livesr.items() if k.startswith("livesr.")}
    return StoredImage(path, annotation["livesr.stream"], root["0"],
                       float(livesr["pixel_size_um"]),
                       float(livesr.get("interval_s") or 0.0),
                       [(str(c["name"]), float(c["wavelength_nm"])) for c in livesr["channels"]],
                       annotation, *_time_points(path, annotation))


def _time_points(path: Path, annotation: dict[str, str]) -> tuple[list[int] | None, bool]:
    """Return the kept time points of a stream that kept only some, and whether aligned.

    SR of the sets shown live (``livesr.sr_sets: displayed``) has its planes at their time
    points: the kept ones are those with a line in ``STEM.jsonl``. Files of older versions
    list them as ``livesr.time_points``, one plane each.
    """
    text = annotation.get("livesr.time_points")  # "0,3" (tifffile may hand it as "(0, 3)")
    if text:
        return [int(t) for t in re.findall(r"\d+", text)], False
    if annotation.get("livesr.sr_sets") != "displayed":
        return None, True
    log = path.with_name(path.name.split(".")[0] + ".jsonl")
    if not log.exists():
        return None, True
    kept = set()
    for line in log.read_text(encoding="utf-8").splitlines()[1:]:
        with suppress(ValueError, KeyError):
            kept.add(int(json.loads(line)["t"]))
    return sorted(kept), True


def layer_data(image: StoredImage, visible: bool = True,
               position: str | None = None) -> list[LayerData]:
    """One napari image layer per channel of ``image``: data, layer keywords, ``"image"``."""
    px = image.pixel_um
    # napari lines layers up from the last axis: the pattern axis goes first, so that the time
    # axes of raw (pattern, t, y, x) and WF/SR (t, y, x) coincide
    pattern_axes = ("pattern",) if image.has_patterns else ()
    n_pattern = len(pattern_axes)
    axis_labels = (*pattern_axes, "t", "y", "x")
    scale = (*(1.0,) * n_pattern, image.interval_s or 1.0, px, px)
    translate = (*(0.0,) * n_pattern, 0.0, px / 2, px / 2)
    units = (*("pixel",) * n_pattern, "s" if image.interval_s else "pixel",
             "micrometer", "micrometer")
    label = STREAM_LABELS.get(image.stream, image.stream)
    plane_of_t = _plane_of_time_point(image.time_points, image.aligned)
    layers: list[LayerData] = []
    for c, (name, wavelength) in enumerate(image.channels):
        title = f"{label} {name}" + (f" {position}" if position else "") + \
            (" (sets shown live)" if plane_of_t is not None else "")
        meta = {"livesr": dict(image.annotation), "path": str(image.path), "channel": name,
                "excitation_nm": wavelength, "pixel_size_um": px,
                "time_points": image.time_points}
        data = _channel(image.data, c)  # T [Z] Y X
        if plane_of_t is not None:
            data = _lazy(data)[plane_of_t]  # the plane shown at each time point
        if n_pattern:
            data = data.transpose(1, 0, 2, 3)  # pattern, t, y, x (a view)
        layers.append((data, {
            "name": title, "scale": scale, "translate": translate, "units": units,
            "axis_labels": axis_labels, "colormap": LINE_COLORMAPS.get(round(wavelength), "gray"),
            "blending": "additive", "visible": visible, "metadata": meta}, "image"))
    return layers


def _plane_of_time_point(time_points: list[int] | None, aligned: bool = True
                         ) -> np.ndarray | None:
    """Map each time point to a plane, for a stream that kept only some time points.

    At each time point up to the last kept one, the newest plane kept by then (what the live
    display showed), so the stream lines up in time with the raw and WF layers. ``aligned``:
    the planes sit at their time points; else the k-th plane is the k-th kept time point.
    """
    if not time_points:
        return None
    kept = np.asarray(time_points)
    at = np.arange(int(kept.max()) + 1)
    rank = np.clip(np.searchsorted(kept, at, side="right") - 1, 0, None)
    return kept[rank] if aligned else rank


def _channel(data: Any, c: int) -> Any:
    """Take channel ``c`` of ``T C …`` data without reading it.

    A view of a memmap, a dask slice of a Zarr array.
    """
    if isinstance(data, np.ndarray):
        return data[:, c]
    return _lazy(data)[:, c]


def _lazy(data: Any) -> Any:
    """Wrap ``data`` as a dask array (one chunk per time point), or read it whole without dask."""
    try:
        import dask.array as da
    except ImportError:
        return np.asarray(data)
    if isinstance(data, np.ndarray):
        return da.from_array(data, chunks=(1, *data.shape[1:]))  # type: ignore[no-untyped-call]
    return da.from_zarr(data)  # type: ignore[no-untyped-call]


def _images_of_run(folder: Path) -> list[StoredImage]:
    images = []
    for stream in STREAMS:
        for path in sorted((folder / stream).glob(f"{stream}_p*.ome.*")):
            if path.suffix != ".partial" and (image := read_image(path)) is not None:
                images.append(image)
    return images


def run_status(path: Path) -> str | None:
    """Return the ``status`` in the ``run.json`` of a folder a LiveSR run wrote, else ``None``."""
    try:
        run = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(run.get("status", "")) if isinstance(run, dict) and "livesr_run" in run else None


def read(path: str | Path | list[str]) -> list[LayerData]:
    """Napari layers of a LiveSR run folder or image (``[]`` if there is nothing to show).

    In a folder with several positions, each position's layers are named after it and only
    the first position's are shown (the others lie on the same pixels).
    """
    path = Path(path[0] if isinstance(path, list) else path)
    if path.is_dir() and (status := run_status(path)) is not None:
        if any(path.glob("*/*.bin")):
            raise ValueError(
                f"{path}: the run holds frame journals of an older LiveSR (run.json says "
                f"{status!r}): recover it with the version that wrote it")
        images = _images_of_run(path)
        positions = sorted({_position(im.path) for im in images})
        return [layer for im in images
                for layer in layer_data(
                    im, visible=im.stream != "raw" and _position(im.path) == positions[0],
                    position=_position(im.path) if len(positions) > 1 else None)]
    image = read_image(path)
    return layer_data(image) if image is not None else []


def _position(path: Path) -> str:
    """``p000`` from ``raw_p000.ome.tif`` or ``sr_p000_488.ome.tif``."""
    return path.name.split(".")[0].split("_")[1]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Napari's reader hook: :func:`read` for LiveSR output, ``None`` for anything else.

    Files it cannot parse also give ``None``: they are left to other readers.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    target = Path(path)
    if target.is_dir() and run_status(target) is not None:
        return read
    try:
        return read if read_image(target) is not None else None
    except Exception:  # a foreign or damaged file: not ours to open
        return None
