"""Write a simulated set to disk: ``raw.tif``, ``wf.tif``, ``gt.tif`` and ``params.json``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import tifffile

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from .render import SimulatedSet


def write_imagej_tiff(path: Path, data: np.ndarray, pixel_nm: float) -> None:
    """Write an ImageJ TIFF with its pixel size in µm, so Fiji and napari show the right scale."""
    axes = "ZYX" if data.ndim == 3 else "YX"
    px_um = pixel_nm / 1000.0
    tifffile.imwrite(path, data, imagej=True, resolution=(1.0 / px_um, 1.0 / px_um),
                     metadata={"axes": axes, "unit": "um", "spacing": 1.0})


def save_set(result: SimulatedSet, out_dir: Path) -> dict[str, Path]:
    """Save ``result`` into ``out_dir`` (created if needed); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    p = result.params
    paths = {name: out_dir / f"{name}.tif" for name in ("raw", "wf", "gt")}
    write_imagej_tiff(paths["raw"], result.raw, p["camera_pixel_nm"])
    write_imagej_tiff(paths["wf"], result.wf, p["camera_pixel_nm"])
    write_imagej_tiff(paths["gt"], result.gt, p["sr_pixel_nm"])
    paths["params"] = out_dir / "params.json"
    paths["params"].write_text(json.dumps(p, indent=2) + "\n")
    return paths
