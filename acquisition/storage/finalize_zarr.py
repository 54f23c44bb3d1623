"""A frame journal as OME-Zarr (NGFF 0.5, Zarr v3): one full-resolution level, one chunk per plane.

Needs the ``zarr`` package (``pip install "livesr[zarr]"``).

Axes ``t, c, z, y, x`` for raw SIM frames, where **z is the SIM pattern index** (NGFF allows one
axis between channel and space only if it is a spatial one; the ``livesr`` attributes say what it
is), and ``t, c, y, x`` for WF and SR images. The scale carries the pixel size in micrometres
(SR: camera pixel / scale) and the time-lapse interval; channel names, excitation wavelengths
and the per-frame metadata's location are in the ``livesr`` and ``omero`` attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["write_ome_zarr"]


def write_ome_zarr(path: Path, header: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, planes: Iterable[np.ndarray]) -> None:
    """Write ``planes`` (in T, C[, Z] order) as an OME-Zarr image at ``path``."""
    import zarr

    sim_axes = len(shape) == 5
    px = float(header["pixel_size_um"])
    dt = float(header.get("interval_s") or 1.0)
    axes: list[dict[str, str]] = [{"name": "t", "type": "time", "unit": "second"},
                                  {"name": "c", "type": "channel"}]
    scale = [dt, 1.0]
    if sim_axes:
        axes.append({"name": "z", "type": "space"})  # the SIM pattern index
        scale.append(1.0)
    axes += [{"name": "y", "type": "space", "unit": "micrometer"},
             {"name": "x", "type": "space", "unit": "micrometer"}]
    scale += [px, px]
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    array = root.create_array("0", shape=shape, dtype=dtype,
                              chunks=(1,) * (len(shape) - 2) + shape[-2:],
                              dimension_names=[a["name"] for a in axes])
    lead = shape[:-2]
    for k, plane in enumerate(planes):
        array[tuple(int(i) for i in np.unravel_index(k, lead))] = plane
    channels = header["channels"]
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{
            "name": header.get("name", header["stream"]),
            "axes": axes,
            "datasets": [{"path": "0", "coordinateTransformations": [
                {"type": "scale", "scale": scale}]}],
        }],
        "omero": {"channels": [{"label": c["name"], "active": True} for c in channels]},
    }
    root.attrs["livesr"] = {
        "description": header.get("description", ""),
        "axes": header["axes"],
        "z": "SIM pattern index" if sim_axes else None,
        "channels": channels,
        "pixel_size_um": px,
        "interval_s": float(header.get("interval_s") or 0.0),
        "per_frame_metadata": path.name.replace(".ome.zarr.partial", ".jsonl")
        .replace(".ome.zarr", ".jsonl"),
        **{k: v for k, v in header.get("annotation", {}).items()},
    }
