"""Image streams: raw, WF and SR images written straight into their OME-TIFF or OME-Zarr file.

A stream's file is created at its full size when its first set arrives (the protocol fixes the
time points, channels and pattern count), so that it is a valid, readable image from the first
moment on; each set then fills its own block in place, and nothing is copied at the end:

- **OME-TIFF** (:class:`TiffStream`): tifffile writes the OME-XML and every page's IFD up front,
  the pixel data one contiguous, sparse region (holes cost no disk); each set is one ``pwrite``
  of its frames at their offset. A block never written reads as zeros.
- **OME-Zarr** (:class:`ZarrStream`, NGFF 0.5 / Zarr v3, zarr-python): one chunk per set and
  channel (``1 × 1 × [Z ×] H × W``), each written atomically (a temporary file renamed into
  place), so a chunk on disk is always whole; a chunk never written reads as zeros.

Beside each image, ``STEM.jsonl`` (:class:`MetadataLog`) holds a header line and one JSON line
per frame (time point, channel, pattern, timestamp, exposure, powers, camera metadata…),
written and flushed *after* the set's pixels: a line means its frame is on disk. When the run
ends (or :mod:`~acquisition.storage.recover` after a crash), only metadata is rewritten: the time
axis is cut to the sets acquired and, for OME-TIFF, the OME-XML gains per-plane DeltaT and
exposure. Pixel data is never rewritten.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "METADATA_VERSION",
    "ImageStream",
    "MetadataContents",
    "MetadataLog",
    "StreamLayout",
    "StreamReport",
    "TiffStream",
    "ZarrStream",
    "image_path",
    "open_stream",
    "read_metadata_log",
    "rewrite_metadata",
]

METADATA_VERSION = 2
#: room kept in an OME-TIFF's description per plane, for its Plane element at the end
PLANE_XML_BYTES = 192


@dataclass(frozen=True)
class StreamLayout:
    """What one image holds: its axes and full shape, and the metadata that describes it."""

    stream: str  # raw, wf or sr
    name: str
    axes: str  # "TCZYX" (raw SIM frames, Z = pattern index) or "TCYX"
    shape: tuple[int, ...]
    dtype: str
    channels: list[dict[str, Any]]  # name, wavelength_nm
    pixel_size_um: float
    interval_s: float
    description: str
    annotation: dict[str, Any] = field(default_factory=dict)
    fmt: str = "ome-tiff"
    #: OME-Zarr chunks: ``lz4`` or ``zstd`` (Blosc, byte shuffle) or ``none``; OME-TIFF: none
    compression: str = "none"

    @property
    def block_shape(self) -> tuple[int, ...]:
        """The shape of one set of one channel: ``(Z, H, W)`` or ``(H, W)``."""
        return self.shape[2:]

    @property
    def planes_per_block(self) -> int:
        """Planes in one block (the pattern count, or 1)."""
        return self.shape[2] if len(self.shape) == 5 else 1

    def to_header(self) -> dict[str, Any]:
        """JSON-ready, as the metadata log's first line holds it."""
        return {"livesr_metadata": METADATA_VERSION, "stream": self.stream, "name": self.name,
                "axes": self.axes, "shape": list(self.shape), "dtype": self.dtype,
                "channels": self.channels, "pixel_size_um": self.pixel_size_um,
                "interval_s": self.interval_s, "description": self.description,
                "annotation": self.annotation, "format": self.fmt,
                "compression": self.compression}

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> StreamLayout:
        """Read back :meth:`to_header`."""
        return cls(str(header["stream"]), str(header["name"]), str(header["axes"]),
                   tuple(int(v) for v in header["shape"]), str(header["dtype"]),
                   list(header["channels"]), float(header["pixel_size_um"]),
                   float(header.get("interval_s") or 0.0), str(header.get("description", "")),
                   dict(header.get("annotation", {})), str(header.get("format", "ome-tiff")),
                   str(header.get("compression", "none")))


def image_path(stem: Path, fmt: str) -> Path:
    """Where the image of ``stem`` lives: ``STEM.ome.tif`` or ``STEM.ome.zarr``."""
    return stem.with_name(stem.name + (".ome.zarr" if fmt == "ome-zarr" else ".ome.tif"))


class ImageStream(Protocol):
    """A preallocated image that sets are written into in place."""

    path: Path
    layout: StreamLayout

    def write(self, t: int, c: int, block: np.ndarray) -> None:
        """Write one set (``layout.block_shape``) at time point ``t`` and channel ``c``."""
        ...

    def close(self) -> None:
        """Release the file (its metadata is finished by :func:`rewrite_metadata`)."""
        ...


class TiffStream:
    """An OME-TIFF created at full size, each set written in place with one ``pwrite``."""

    def __init__(self, path: Path, layout: StreamLayout) -> None:
        import tifffile

        self.path, self.layout = path, layout
        if path.exists():
            raise FileExistsError(f"{path} exists already")
        tifffile.imwrite(path, shape=layout.shape, dtype=layout.dtype, bigtiff=True, ome=True,
                         photometric="minisblack", metadata=_tiff_metadata(layout, None),
                         resolution=_resolution(layout), resolutionunit="CENTIMETER")
        with tifffile.TiffFile(path) as tif:
            offset = tif.series[0].dataoffset
            xml = tif.pages.first.description.encode("utf-8")
        if offset is None:
            raise RuntimeError(f"{path}: tifffile did not write contiguous data")
        # room for the final OME-XML with every plane's times, so that it is rewritten in
        # place (never appended: a full disk cannot leave the tag pointing past the end)
        n_planes = int(np.prod(layout.shape[:-2]))
        room = len(xml) + 4096 + PLANE_XML_BYTES * n_planes
        tifffile.tiffcomment(path, comment=xml + b" " * (room - len(xml)))
        self._offset = int(offset)
        self._block_bytes = int(np.prod(layout.block_shape)) * np.dtype(layout.dtype).itemsize
        self._fd: int | None = os.open(path, os.O_WRONLY)

    def write(self, t: int, c: int, block: np.ndarray) -> None:
        """Write the set at ``(t, c)`` into its place in the data region."""
        if self._fd is None:
            raise RuntimeError(f"{self.path.name} is closed")
        data = np.ascontiguousarray(block, dtype=self.layout.dtype)
        index = t * self.layout.shape[1] + c
        view = data.reshape(-1).view(np.uint8).data  # a memoryview of the contiguous bytes
        offset = self._offset + index * self._block_bytes
        while view:  # pwrite may write less than asked
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def close(self) -> None:
        """Close the file descriptor (safe twice)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ZarrStream:
    """An OME-Zarr (NGFF 0.5) array created at full size; one atomic chunk per set.

    zarr-python creates the group, the array and its metadata and reads the result; the chunks
    are encoded with the array's own codecs (little-endian bytes, then Blosc when
    ``layout.compression`` names one) and written as files the way zarr's local store writes
    them (a temporary file renamed into place), without its asynchronous machinery: that
    machinery held a 4.5 MB chunk for 7 ms where the write itself takes 0.2 ms, which on two
    cores shared with the camera was the difference between keeping up and falling behind.
    """

    def __init__(self, path: Path, layout: StreamLayout) -> None:
        import zarr
        from zarr.codecs import BloscCodec, BytesCodec

        self.path, self.layout = path, layout
        if path.exists():
            raise FileExistsError(f"{path} exists already")
        root = zarr.open_group(str(path), mode="w-", zarr_format=3)
        names = ["t", "c", "z", "y", "x"] if len(layout.shape) == 5 else ["t", "c", "y", "x"]
        self._dtype = np.dtype(layout.dtype).newbyteorder("<")
        compressors = None
        if layout.compression != "none":
            compressors = BloscCodec(cname=cast("Any", layout.compression), clevel=1,
                                     shuffle="shuffle", typesize=self._dtype.itemsize)
        self._array = root.create_array("0", shape=layout.shape, dtype=layout.dtype,
                                        chunks=(1, 1, *layout.block_shape), fill_value=0,
                                        compressors=compressors, dimension_names=names)
        root.attrs.update(_zarr_attrs(layout, path))
        codecs = self._array.metadata.codecs  # type: ignore[union-attr]
        endian = getattr(getattr(codecs[0], "endian", None), "value", None)
        if not isinstance(codecs[0], BytesCodec) or (
                self._dtype.itemsize > 1 and endian != "little"):
            raise RuntimeError(f"{path}: expected little-endian chunk bytes, got {codecs}")
        self._compressor: Any = None
        if len(codecs) == 2 and isinstance(codecs[1], BloscCodec):
            from numcodecs import Blosc

            blosc = codecs[1]  # the numcodecs configuration zarr's BloscCodec encodes with
            self._compressor = Blosc.from_config({
                "cname": blosc.cname.value, "clevel": blosc.clevel,
                "shuffle": {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[blosc.shuffle.value],
                "blocksize": blosc.blocksize, "typesize": blosc.typesize})
        elif len(codecs) != 1:
            raise RuntimeError(f"{path}: unexpected codecs {codecs}")
        self._folder = path / "0"
        self._made: set[Path] = set()

    def write(self, t: int, c: int, block: np.ndarray) -> None:
        """Encode the set at ``(t, c)`` and write it as its chunk file, atomically."""
        data = np.ascontiguousarray(block, dtype=self._dtype)
        if data.shape != self.layout.block_shape:
            raise ValueError(f"{self.path.name}: block {data.shape}, expected "
                             f"{self.layout.block_shape}")
        payload: Any = data.reshape(-1).view(np.uint8)
        if self._compressor is not None:
            payload = self._compressor.encode(payload)
        key = self._array.metadata.encode_chunk_key(
            (t, c) + (0,) * len(self.layout.block_shape))
        target = self._folder / key
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        with open(partial, "wb") as f:
            f.write(payload)
        os.replace(partial, target)

    def close(self) -> None:
        """Nothing to release: every chunk is on disk when :meth:`write` returns."""


def open_stream(stem: Path, layout: StreamLayout) -> ImageStream:
    """Create the image of ``stem`` in ``layout.fmt`` at its full size."""
    path = image_path(stem, layout.fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout.fmt == "ome-zarr":
        return ZarrStream(path, layout)
    return TiffStream(path, layout)


class MetadataLog:
    """``STEM.jsonl``: the stream's header line, then one line per frame, flushed per set."""

    def __init__(self, stem: Path, layout: StreamLayout) -> None:
        self.path = stem.with_suffix(".jsonl")
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists already")
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (held for the run)
        self._file.write(json.dumps(layout.to_header(), default=_jsonable) + "\n")
        self._file.flush()
        self.frames = 0

    def append(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Write the lines of one set (after its pixels are on disk) and flush them."""
        lines = []
        for entry in entries:
            lines.append(json.dumps({"i": self.frames, **entry}, default=_jsonable))
            self.frames += 1
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (safe twice)."""
        if not self._file.closed:
            self._file.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class MetadataContents:
    """A metadata log read back: its layout and the complete frames' lines."""

    layout: StreamLayout
    frames: list[dict[str, Any]]
    #: a line cut off by a kill while it was written
    torn_lines: int = 0

    def complete_time_points(self) -> int:
        """How many time points from the start have every block complete."""
        per_t = self.layout.shape[1] * self.layout.planes_per_block
        counts: dict[int, int] = {}
        for entry in self.frames:
            counts[int(entry["t"])] = counts.get(int(entry["t"]), 0) + 1
        t = 0
        while counts.get(t, 0) >= per_t:
            t += 1
        return t

    def last_time_point(self) -> int:
        """One past the last time point any frame was written for (0: none)."""
        return max((int(e["t"]) for e in self.frames), default=-1) + 1

    def plane_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Each plane's DeltaT and exposure (s) in T, C[, Z] order; NaN where none was written."""
        shape = self.layout.shape
        n_c, n_z = shape[1], self.layout.planes_per_block
        delta_t = np.full(shape[0] * n_c * n_z, np.nan)
        exposure = delta_t.copy()
        for e in self.frames:
            i = (int(e["t"]) * n_c + int(e["c"])) * n_z + int(e.get("z", 0))
            delta_t[i] = float(e["timestamp_ms"]) / 1000
            exposure[i] = float(e["exposure_ms"]) / 1000
        return delta_t, exposure


def read_metadata_log(path: Path) -> MetadataContents:
    """Read ``STEM.jsonl``: its header and every complete line (a torn last line is ignored)."""
    raw_lines = path.read_bytes().split(b"\n")
    torn = 1 if raw_lines and raw_lines[-1].strip() else 0
    lines = [line for line in raw_lines[:-1] if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no header line (the run stopped before its first frame)")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:1: corrupt header: {exc}") from None
    if header.get("livesr_metadata") != METADATA_VERSION:
        raise ValueError(f"{path}: not a LiveSR metadata log")
    frames = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            frames.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: corrupt line: {exc}") from None
    return MetadataContents(StreamLayout.from_header(header), frames, torn)


def rewrite_metadata(path: Path, layout: StreamLayout, n_t: int,
                     delta_t_s: np.ndarray | None = None,
                     exposure_s: np.ndarray | None = None) -> tuple[int, ...]:
    """Finish an image's metadata for ``n_t`` time points; return the shape it now has.

    The time axis is cut to ``n_t`` (metadata only: the OME-XML's SizeT, or the Zarr array's
    shape). An OME-TIFF's OME-XML gains each plane's DeltaT and exposure (seconds, in T, C[, Z]
    order; NaN: not written, 0 in the file). Pixel data is not touched.
    """
    n_t = max(1, min(n_t, layout.shape[0]))
    shape = (n_t, *layout.shape[1:])
    if layout.fmt == "ome-zarr":
        import zarr
        import zarr.api.asynchronous as zarr_async
        from zarr.core.sync import sync

        root = zarr.open_group(str(path), mode="r+")
        if tuple(cast("zarr.Array[Any]", root["0"]).shape) != shape:
            # only zarr.json changes: chunks beyond the new shape stay on disk, unread
            array = sync(zarr_async.open_array(store=str(path / "0"), mode="r+"))
            sync(array.resize(shape, delete_outside_chunks=False))
        attrs = dict(cast("dict[str, Any]", root.attrs.get("livesr", {})))
        attrs["time_points"] = n_t
        root.attrs["livesr"] = attrs
        return shape
    import tifffile

    n_planes = int(np.prod(shape[:-2]))
    times = _planes(delta_t_s, n_planes)
    exposures = _planes(exposure_s, n_planes)
    metadata = _tiff_metadata(layout, None)
    metadata["Plane"] = {"DeltaT": times, "DeltaTUnit": ["s"] * n_planes,
                         "ExposureTime": exposures, "ExposureTimeUnit": ["s"] * n_planes}
    ome = tifffile.OmeXml()
    axes = metadata.pop("axes")
    stored = (n_planes, 1, 1, int(shape[-2]), int(shape[-1]), 1)
    ome.addimage(np.dtype(layout.dtype), shape, stored, axes=axes, **metadata)
    tifffile.tiffcomment(path, comment=ome.tostring(declaration=True).encode("utf-8"))
    return shape


def _planes(values: np.ndarray | None, n: int) -> list[float]:
    """``n`` plane values as a list, NaN and missing ones as 0."""
    out = np.zeros(n)
    if values is not None:
        v = np.asarray(values, dtype=np.float64)[:n]
        out[:v.size] = np.nan_to_num(v, nan=0.0)
    return out.tolist()


@dataclass
class StreamReport:
    """What one image holds at the end of a run (or after :func:`~acquisition.storage.recover`)."""

    path: Path
    shape: tuple[int, ...]
    axes: str
    frames: int
    #: planes within the kept time points that no frame filled (zeros in the file)
    missing: int = 0
    torn_lines: int = 0

    def describe(self) -> str:
        """Return one line on the image: frames, axes, shape, planes left at zero."""
        text = f"{self.path.name}: {self.frames} frames, {self.axes} {self.shape}"
        if self.missing:
            text += f"; {self.missing} planes not written (zeros)"
        if self.torn_lines:
            text += f"; ignored {self.torn_lines} torn metadata line(s)"
        return text


def _resolution(layout: StreamLayout) -> tuple[float, float]:
    px_cm = layout.pixel_size_um * 1e-4
    return (1 / px_cm, 1 / px_cm)


def _tiff_metadata(layout: StreamLayout, planes: list[dict[str, Any] | None] | None
                   ) -> dict[str, Any]:
    """Tifffile's OME metadata of ``layout``; with ``planes``, each plane's DeltaT and exposure.

    Planes no frame filled read 0 s.
    """
    px = layout.pixel_size_um
    annotation = {str(k): str(v) for k, v in layout.annotation.items()}
    meta: dict[str, Any] = {
        "axes": layout.axes, "Name": layout.name, "Description": layout.description,
        "PhysicalSizeX": px, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": px, "PhysicalSizeYUnit": "µm",
        "Channel": {
            "Name": [c["name"] for c in layout.channels],
            "ExcitationWavelength": [float(c["wavelength_nm"]) for c in layout.channels],
            "ExcitationWavelengthUnit": ["nm"] * len(layout.channels),
        },
    }
    if planes is not None:
        meta["Plane"] = {
            "DeltaT": [float(e["timestamp_ms"]) / 1000 if e else 0.0 for e in planes],
            "DeltaTUnit": ["s"] * len(planes),
            "ExposureTime": [float(e["exposure_ms"]) / 1000 if e else 0.0 for e in planes],
            "ExposureTimeUnit": ["s"] * len(planes),
        }
    if layout.interval_s:
        meta["TimeIncrement"] = float(layout.interval_s)
        meta["TimeIncrementUnit"] = "s"
    if annotation:
        meta["MapAnnotation"] = {"Namespace": "livesr", "Value": annotation}
    return meta


def _zarr_attrs(layout: StreamLayout, path: Path) -> dict[str, Any]:
    """Return the NGFF 0.5 ``ome`` attributes and LiveSR's own of ``layout``."""
    sim_axes = len(layout.shape) == 5
    px = layout.pixel_size_um
    axes: list[dict[str, str]] = [{"name": "t", "type": "time", "unit": "second"},
                                  {"name": "c", "type": "channel"}]
    scale = [float(layout.interval_s or 1.0), 1.0]
    if sim_axes:
        axes.append({"name": "z", "type": "space"})  # the SIM pattern index
        scale.append(1.0)
    axes += [{"name": "y", "type": "space", "unit": "micrometer"},
             {"name": "x", "type": "space", "unit": "micrometer"}]
    scale += [px, px]
    return {
        "ome": {
            "version": "0.5",
            "multiscales": [{
                "name": layout.name, "axes": axes,
                "datasets": [{"path": "0", "coordinateTransformations": [
                    {"type": "scale", "scale": scale}]}],
            }],
            "omero": {"channels": [_omero_channel(c, layout.dtype) for c in layout.channels]},
        },
        "livesr": {
            "description": layout.description, "axes": layout.axes,
            "z": "SIM pattern index" if sim_axes else None, "channels": layout.channels,
            "pixel_size_um": px, "interval_s": float(layout.interval_s or 0.0),
            "per_frame_metadata": path.name.replace(".ome.zarr", ".jsonl"),
            **{k: v for k, v in layout.annotation.items()},
        },
    }


#: display colour of each excitation line (as the napari reader colours them)
LINE_COLORS = {405: "0000FF", 488: "00FF00", 560: "FF00FF"}


def _omero_channel(channel: Mapping[str, Any], dtype: str) -> dict[str, Any]:
    """Return the NGFF ``omero`` entry of one channel: label, colour by line, window."""
    if np.dtype(dtype).kind == "f":
        low, high = 0.0, 1.0
    else:
        info = np.iinfo(np.dtype(dtype))
        low, high = float(info.min), float(info.max)
    return {"label": str(channel["name"]), "active": True,
            "color": LINE_COLORS.get(int(channel.get("wavelength_nm", 0)), "FFFFFF"),
            "window": {"min": low, "max": high, "start": low, "end": high}}
