"""The training and validation pairs a data config names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inference.training.config import BioSRData, DataConfig, SimulatedData, TiffPairsData
from inference.training.patches import ImagePair

__all__ = ["load_pairs"]


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
    raise TypeError(f"unknown data config {type(data).__name__}")
