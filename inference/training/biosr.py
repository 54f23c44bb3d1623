"""BioSR on disk (Qiao et al., 2021; figshare 13264793), as the dataset is distributed.

Layout followed::

    ROOT/<Structure>/Cell_NNN/RawSIMData_level_LL.mrc   raw SIM set at noise level LL (N, H, W)
    ROOT/<Structure>/Cell_NNN/SIM_gt.mrc                 the high-SNR SIM ground truth (H·s, W·s)
    ROOT/<Structure>/Cell_NNN/RawSIMData_gt.mrc          the high-SNR raw set (not used here)

ER comes per level instead: ``Cell_NNN/RawSIMData/RawSIMData_level_LL.mrc`` with
``Cell_NNN/GTSIM/GTSIM_level_LL.mrc``; both forms are read. Structures are the folder names
(``CCPs``, ``ER``, ``F-actin``, ``Microtubules``, ``F-actin_Nonlinear``). A raw set is N frames
(9 for linear SIM, 25 for nonlinear SIM); the wide-field input is their mean. Validation takes
the last ``val_cells`` cells of each structure (by cell, never by crop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.predict.image_io import read_image
from inference.training.patches import ImagePair

if TYPE_CHECKING:
    from inference.training.config import BioSRData

__all__ = ["BioSRItem", "biosr_pairs", "find_biosr"]

_LEVEL = re.compile(r"^RawSIMData_level_(\d+)\.mrc$", re.IGNORECASE)
_CELL = re.compile(r"^Cell_(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class BioSRItem:
    """One raw set and its ground truth."""

    structure: str
    cell: int
    level: int
    raw: Path
    gt: Path


def _cell_items(structure: str, cell_dir: Path, cell: int) -> list[BioSRItem]:
    items = []
    flat_gt = cell_dir / "SIM_gt.mrc"
    for folder, per_level in ((cell_dir, False), (cell_dir / "RawSIMData", True)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = _LEVEL.match(path.name)
            if not match:
                continue
            level = int(match.group(1))
            gt = cell_dir / "GTSIM" / f"GTSIM_level_{level:02d}.mrc" if per_level else flat_gt
            if not gt.is_file():
                raise FileNotFoundError(f"{path}: no ground truth {gt}")
            items.append(BioSRItem(structure, cell, level, path, gt))
    return items


def find_biosr(root: Path, structures: tuple[str, ...], levels: tuple[int, ...] = ()
               ) -> list[BioSRItem]:
    """Every (structure, cell, level) under ``root``, sorted; ``levels`` empty: all."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"BioSR root not found: {root}")
    items: list[BioSRItem] = []
    for structure in structures:
        folder = root / structure
        if not folder.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise FileNotFoundError(f"{folder}: no such structure folder (found: {found})")
        cells = sorted((int(m.group(1)), p) for p in folder.iterdir()
                       if p.is_dir() and (m := _CELL.match(p.name)))
        if not cells:
            raise FileNotFoundError(f"{folder}: no Cell_NNN folders")
        for cell, cell_dir in cells:
            items += [i for i in _cell_items(structure, cell_dir, cell)
                      if not levels or i.level in levels]
    if not items:
        raise FileNotFoundError(f"{root}: no RawSIMData_level_*.mrc for {list(structures)}"
                                + (f" at levels {list(levels)}" if levels else ""))
    return items


def _read(item: BioSRItem, input_kind: str) -> ImagePair:
    raw = read_image(item.raw)
    if raw.ndim == 2:
        raw = raw[None]
    gt = np.squeeze(read_image(item.gt))
    if gt.ndim != 2:
        raise ValueError(f"{item.gt}: expected one SR image, got shape {gt.shape}")
    x = raw.astype(np.float32).mean(axis=0, keepdims=True) if input_kind == "wf" else raw
    return ImagePair(x, gt.astype(np.float32), group=f"{item.structure}/Cell_{item.cell:03d}",
                     source=f"{item.raw} (level {item.level})")


def biosr_pairs(data: BioSRData) -> tuple[list[ImagePair], list[ImagePair]]:
    """Training and validation pairs (the last ``val_cells`` cells of each structure)."""
    items = find_biosr(data.root, data.structures, data.levels)
    val_groups = set()
    for structure in data.structures:
        cells = sorted({i.cell for i in items if i.structure == structure})
        if len(cells) <= data.val_cells:
            raise ValueError(f"{data.root / structure}: {len(cells)} cells, need more than "
                             f"val_cells = {data.val_cells} to keep some for training")
        val_groups |= {(structure, c) for c in cells[-data.val_cells:]}
    train: list[ImagePair] = []
    val: list[ImagePair] = []
    for item in items:
        pair = _read(item, data.input_kind)
        (val if (item.structure, item.cell) in val_groups else train).append(pair)
    return train, val
