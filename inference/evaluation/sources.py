"""Where the evaluated raw sets come from: held-out simulated cells, or BioSR on disk.

Simulated cells are drawn by :func:`simulators.pairs.sample_scenes` from a seed of their own
(never one that drew training cells); each cell is recorded at every photon level with the very
noise :func:`simulators.pairs.training_pairs` gives it (so the first cells are those of
:mod:`inference.training.heldout`), and, for FRC, once more with independent noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inference.evaluation.config import BioSRSource, SimulatedSource

if TYPE_CHECKING:
    from collections.abc import Iterator

    from inference.training.biosr import BioSRItem

__all__ = ["EvalSet", "count_sets", "iter_sets"]

BIOSR_PIXEL_NM = 62.6


@dataclass
class EvalSet:
    """One raw set with its ground truth and where it belongs in the matrix."""

    structure: str
    level: float  # photon level (simulated) or BioSR noise level
    cell: str
    raw: np.ndarray  # (n, H, W) float32 camera counts
    gt: np.ndarray  # (H·s, W·s)
    measured_photons: float  # BioSR's average photon count of ``raw``
    camera_pixel_nm: float
    scale: int
    repeat: np.ndarray | None = None  # the same exposure with independent noise (for FRC)


def count_sets(source: SimulatedSource | BioSRSource) -> int:
    """How many sets :func:`iter_sets` yields (for a progress bar)."""
    if isinstance(source, SimulatedSource):
        return len(source.structures) * source.sets_per_cell * len(source.photon_levels)
    return len(_biosr_items(source))


def iter_sets(source: SimulatedSource | BioSRSource, repeats: int = 0) -> Iterator[EvalSet]:
    """Yield every set of the source.

    The first ``repeats`` cells of each structure (simulated data) also carry an independent
    second noise realisation.
    """
    if isinstance(source, SimulatedSource):
        yield from _simulated(source, repeats)
    else:
        yield from _biosr(source)


def _simulated(source: SimulatedSource, repeats: int) -> Iterator[EvalSet]:
    from simulators.pairs import noise_seed, sample_scenes

    n_samples = source.sets_per_cell * len(source.structures)
    for i, (structure, sample_seed, scene) in enumerate(sample_scenes(
            source.structures, source.mode, source.image_size, source.seed, n_samples)):
        index = i // len(source.structures)
        for photons in source.photon_levels:
            recorded = scene.at_photons(photons, None,
                                        np.random.default_rng(noise_seed(sample_seed, photons)))
            repeat = None
            if index < repeats:
                again = scene.at_photons(photons, None, np.random.default_rng(
                    noise_seed(sample_seed, photons, realisation=1)))
                repeat = again.raw.astype(np.float32)
            yield EvalSet(structure, float(photons), f"{index:03d} (seed {sample_seed})",
                          recorded.raw.astype(np.float32), recorded.gt,
                          float(recorded.params["measured_photons"]),
                          float(scene.params["camera_pixel_nm"]),
                          int(scene.params["sr_factor"]), repeat)


def _biosr_items(source: BioSRSource) -> list[BioSRItem]:
    from inference.training.biosr import find_biosr

    items = find_biosr(source.root, source.structures, source.levels)
    return [i for i in items if not source.cells or i.cell in source.cells]


def _biosr(source: BioSRSource) -> Iterator[EvalSet]:
    from inference.metrics.photons import average_photon_count
    from inference.predict.image_io import read_image
    from simulators.camera import CameraModel

    camera = CameraModel(**source.camera.model_dump())

    for item in _biosr_items(source):
        raw = np.asarray(read_image(item.raw), dtype=np.float32)
        raw = raw[None] if raw.ndim == 2 else raw
        gt = np.squeeze(np.asarray(read_image(item.gt), dtype=np.float32))
        scale = gt.shape[0] // raw.shape[1]
        if gt.ndim != 2 or scale < 1 or gt.shape != (raw.shape[1] * scale, raw.shape[2] * scale):
            raise ValueError(f"{item.gt}: ground truth of shape {gt.shape} is not an integer "
                             f"multiple of the raw frames {raw.shape[1:]}")
        yield EvalSet(item.structure, float(item.level), f"Cell_{item.cell:03d}", raw, gt,
                      average_photon_count(raw, camera), BIOSR_PIXEL_NM, scale)
