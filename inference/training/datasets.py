"""The training and validation pairs a data config names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference.training.config import (
    BioSRData,
    DataConfig,
    SceneBankData,
    SimulatedData,
    TiffPairsData,
)
from inference.training.patches import ImagePair, PatchSampler

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["load_data", "load_pairs"]


def load_data(data: DataConfig, run_dir: Path, patch_size: int,
              progress: Callable[[str, int, int], None] | None = None
              ) -> tuple[Any, list[ImagePair]]:
    """Return the training batch sampler and the validation pairs of a data config."""
    if isinstance(data, SceneBankData):
        from inference.training.bank import bank_data

        return bank_data(data, run_dir, patch_size, progress)
    train, val = load_pairs(data, run_dir, progress)
    return PatchSampler(train, patch_size), val


def load_pairs(data: DataConfig, run_dir: Path,
               progress: Callable[[str, int, int], None] | None = None
               ) -> tuple[list[ImagePair], list[ImagePair]]:
    """``(train, validation)`` pairs, split by cell or sample."""
    if isinstance(data, SimulatedData):
        from inference.training.simulated import simulated_pairs

        return simulated_pairs(data, run_dir, progress)
    if isinstance(data, BioSRData):
        from inference.training.biosr import biosr_pairs

        return biosr_pairs(data)
    if isinstance(data, TiffPairsData):
        from inference.training.tiff_pairs import tiff_pairs

        return tiff_pairs(data)
    if isinstance(data, SceneBankData):
        raise TypeError("a scene bank draws fresh crops: use load_data, not load_pairs")
    raise TypeError(f"unknown data config {type(data).__name__}")
