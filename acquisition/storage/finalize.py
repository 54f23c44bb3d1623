"""Turn a frame journal into an OME-TIFF that Fiji (Bio-Formats) and tifffile read at scale.

Raw SIM frames become ``TCZYX`` with Z = the SIM pattern index (orientation-major; said in the
image's Description and a MapAnnotation), WF and SR images ``TCYX``. The OME-XML carries the
pixel size with its unit (SR pixel = camera pixel / scale), channel names and excitation
wavelengths, and per plane its time (DeltaT, s from the run start) and exposure. Planes missing
from an incomplete last time point are written as zeros and reported. The journal's JSON lines
stay beside the image as the per-frame metadata (patterns, laser powers, camera metadata, …);
its ``.bin`` is removed once the OME-TIFF is complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from acquisition.storage.journal import JournalContents, read_journal

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["FinalizeReport", "finalize_journal", "ome_path"]


@dataclass
class FinalizeReport:
    """What finalizing one journal produced."""

    path: Path
    shape: tuple[int, ...]
    axes: str
    frames: int
    #: ``(t, c, z)`` planes that no complete frame filled (written as zeros)
    missing: list[tuple[int, int, int]] = field(default_factory=list)
    torn_lines: int = 0
    short_frames: int = 0

    def describe(self) -> str:
        """Return one line on the file: frames, axes, shape, zero-filled planes, ignored data."""
        text = f"{self.path.name}: {self.frames} frames, {self.axes} {self.shape}"
        if self.missing:
            text += (f"; {len(self.missing)} missing planes zero-filled "
                     f"(t, c, z): {_short_list(self.missing)}")
        if self.torn_lines or self.short_frames:
            text += (f"; ignored {self.torn_lines} torn index line(s) and "
                     f"{self.short_frames} frame(s) without all their bytes")
        return text


def _short_list(items: list[tuple[int, int, int]], n: int = 6) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f", … ({len(items) - n} more)" if len(items) > n else "")


def ome_path(stem: Path, fmt: str = "ome-tiff") -> Path:
    """Where the journal ``stem`` is finalized: ``STEM.ome.tif`` or ``STEM.ome.zarr``."""
    return stem.with_name(stem.name + (".ome.zarr" if fmt == "ome-zarr" else ".ome.tif"))


def finalize_journal(stem: Path, keep_bin: bool = False) -> FinalizeReport:
    """Write ``STEM.ome.tif`` (or ``STEM.ome.zarr``) from the journal ``STEM.bin``/``STEM.jsonl``.

    The format is the one the journal's header asks for. The file is written atomically (under a
    temporary name, then renamed into place), then ``STEM.bin`` is removed unless ``keep_bin``.
    """
    journal = read_journal(stem)
    header = journal.header
    n_channels = len(header["channels"])
    n_z = int(header.get("z", 1))
    planes: dict[tuple[int, int, int], dict[str, Any]] = {}
    if header.get("sparse_t"):
        # a stream of chosen time points (SR of the displayed sets): planes in the order
        # written; each one's acquisition time point stays in its JSON line and DeltaT
        for k, entry in enumerate(journal.frames):
            planes[(k, 0, 0)] = entry
        # and said once more in the image, for readers that place planes in time
        header = {**header, "annotation": {
            **header.get("annotation", {}),
            "livesr.time_points": ",".join(str(int(e["t"])) for e in journal.frames)}}
    else:
        for entry in journal.frames:
            planes[(int(entry["t"]), int(entry["c"]), int(entry.get("z", 0)))] = entry
    n_t = max((t for t, _, _ in planes), default=0) + 1
    h, w = journal.shape
    sim_axes = header["axes"] == "TCZYX"
    shape: tuple[int, ...] = (n_t, n_channels, n_z, h, w) if sim_axes else (n_t, n_channels, h, w)
    order = [(t, c, z) for t in range(n_t) for c in range(n_channels) for z in range(n_z)]
    missing = [key for key in order if key not in planes]
    data = journal.data()
    fmt = header.get("format", "ome-tiff")
    target = ome_path(stem, fmt)
    partial = target.with_name(target.name + ".partial")
    if fmt == "ome-zarr":
        from acquisition.storage.finalize_zarr import write_ome_zarr

        write_ome_zarr(partial, header, shape, journal.dtype,
                       _planes(journal, data, planes, order))
    else:
        import tifffile

        metadata = _ome_metadata(header, [planes.get(key) for key in order], n_z)
        tifffile.imwrite(partial, data=_planes(journal, data, planes, order), shape=shape,
                         dtype=journal.dtype, bigtiff=True, ome=True, photometric="minisblack",
                         metadata={"axes": header["axes"], **metadata},
                         resolution=_resolution(header), resolutionunit="CENTIMETER")
    os.replace(partial, target)
    del data
    if not keep_bin:
        stem.with_suffix(".bin").unlink(missing_ok=True)
    return FinalizeReport(target, shape, header["axes"], len(planes), missing,
                          journal.torn_lines, journal.short_frames)


def _planes(journal: JournalContents, data: np.ndarray,
            planes: dict[tuple[int, int, int], dict[str, Any]],
            order: list[tuple[int, int, int]]) -> Iterator[np.ndarray]:
    zeros = np.zeros(journal.shape, journal.dtype)
    for key in order:
        entry = planes.get(key)
        yield zeros if entry is None else np.array(journal.frame(data, entry))


def _resolution(header: dict[str, Any]) -> tuple[float, float]:
    px_cm = float(header["pixel_size_um"]) * 1e-4
    return (1 / px_cm, 1 / px_cm)


def _ome_metadata(header: dict[str, Any], entries: list[dict[str, Any] | None],
                  n_z: int) -> dict[str, Any]:
    px = float(header["pixel_size_um"])
    channels = header["channels"]
    annotation = {str(k): str(v) for k, v in header.get("annotation", {}).items()}
    meta: dict[str, Any] = {
        "Name": header.get("name", header["stream"]),
        "Description": header.get("description", ""),
        "PhysicalSizeX": px, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": px, "PhysicalSizeYUnit": "µm",
        "Channel": {
            "Name": [c["name"] for c in channels],
            "ExcitationWavelength": [float(c["wavelength_nm"]) for c in channels],
            "ExcitationWavelengthUnit": ["nm"] * len(channels),
        },
        "Plane": {
            "DeltaT": [float(e["timestamp_ms"]) / 1000 if e else 0.0 for e in entries],
            "DeltaTUnit": ["s"] * len(entries),
            "ExposureTime": [float(e["exposure_ms"]) / 1000 if e else 0.0 for e in entries],
            "ExposureTimeUnit": ["s"] * len(entries),
        },
    }
    if header.get("interval_s"):
        meta["TimeIncrement"] = float(header["interval_s"])
        meta["TimeIncrementUnit"] = "s"
    if annotation:
        meta["MapAnnotation"] = {"Namespace": "livesr", "Value": annotation}
    return meta
