"""Pairs of TIFF folders: ``inputs/NAME.tif`` and ``targets/NAME.tif``, paired by file name.

An input is a 2-D image or a stack of raw frames, a target the SR image. Each file is one
sample; validation takes separate folders, or the last ``val_fraction`` of the sorted names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.predict.image_io import read_image
from inference.training.patches import ImagePair

if TYPE_CHECKING:
    from inference.training.config import TiffPairsData

__all__ = ["read_tiff_pairs", "tiff_pairs"]

_SUFFIXES = (".tif", ".tiff")


def _tiffs(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"TIFF folder not found: {folder}")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in _SUFFIXES}


def read_tiff_pairs(inputs: Path, targets: Path) -> list[ImagePair]:
    """Read the pairs of two folders, sorted by name; every input needs its target."""
    found_inputs, found_targets = _tiffs(Path(inputs)), _tiffs(Path(targets))
    if not found_inputs:
        raise FileNotFoundError(f"{inputs}: no .tif files")
    missing = sorted(set(found_inputs) - set(found_targets))
    if missing:
        raise FileNotFoundError(f"{targets}: no target for {missing[0]} "
                                f"({len(missing)} inputs without a target)")
    pairs = []
    for name, path in found_inputs.items():
        x = read_image(path).astype(np.float32)
        y = np.squeeze(read_image(found_targets[name])).astype(np.float32)
        pairs.append(ImagePair(x, y, group=name, source=str(path)))
    return pairs


def tiff_pairs(data: TiffPairsData) -> tuple[list[ImagePair], list[ImagePair]]:
    """Training and validation pairs."""
    pairs = read_tiff_pairs(data.inputs, data.targets)
    if data.val_inputs is not None and data.val_targets is not None:
        return pairs, read_tiff_pairs(data.val_inputs, data.val_targets)
    n_val = max(1, round(len(pairs) * data.val_fraction))
    if n_val >= len(pairs):
        raise ValueError(f"{data.inputs}: {len(pairs)} files are too few to split off "
                         f"{n_val} for validation")
    return pairs[:-n_val], pairs[-n_val:]
