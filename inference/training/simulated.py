"""Training data from the simulated microscope: a pool of pairs generated once, then cropped.

Rendering a cell takes a fraction of a second, far slower than a training step, so the pairs of
:func:`simulators.pairs.training_pairs` (every cell at every photon level) are written once to
an ``.npz`` cache, keyed by the data config, and the training crops are drawn from it with
random positions, flips and rotations. Validation cells come from another seed: other cells,
never other crops of the training cells.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.training.patches import ImagePair

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from inference.training.config import SimulatedData

__all__ = ["generate_pool", "load_pool", "simulated_pairs"]

_FORMAT = 1


def _key(data: SimulatedData, seed: int, n_samples: int) -> str:
    fields = data.model_dump(mode="json", exclude={"cache", "train_samples", "val_samples",
                                                   "seed"})
    fields.update(seed=seed, n_samples=n_samples, format=_FORMAT)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def generate_pool(data: SimulatedData, seed: int, n_samples: int,
                  progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Simulate every one of ``n_samples`` cells at every photon level, as arrays.

    There is one target per cell: the targets of one cell differ only in scale, which
    ``prctile_norm`` removes.
    """
    from simulators.pairs import training_pairs

    inputs, targets, sample_index, photons, structures = [], [], [], [], []
    levels = len(data.photon_levels)
    for i, pair in enumerate(training_pairs(structures=data.structures,
                                            photon_levels=data.photon_levels, mode=data.mode,
                                            size=data.image_size, input_kind=data.input_kind,
                                            seed=seed, n_samples=n_samples)):
        sample = i // levels
        if i % levels == 0:
            targets.append((pair.target / pair.photons).astype(np.float32))
            structures.append(pair.structure)
            if progress is not None:
                progress(sample)
        x = pair.input if pair.input.ndim == 3 else pair.input[None]
        inputs.append(x.astype(np.uint16) if data.input_kind == "sim" else x.astype(np.float32))
        sample_index.append(sample)
        photons.append(pair.photons)
    return {"inputs": np.stack(inputs), "targets": np.stack(targets),
            "sample_index": np.asarray(sample_index, np.int32),
            "photons": np.asarray(photons, np.float32), "structures": np.asarray(structures)}


def load_pool(data: SimulatedData, seed: int, n_samples: int, cache: Path,
              progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Load the pool from ``cache`` if made from the same settings, else generate and save it."""
    key = _key(data, seed, n_samples)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as f:
            if str(f["key"]) == key:
                return {k: f[k] for k in f.files if k != "key"}
    pool = generate_pool(data, seed, n_samples, progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    arrays: dict[str, Any] = {"key": np.asarray(key), **pool}
    np.savez(tmp, **arrays)
    tmp.replace(cache)
    return pool


def pool_pairs(pool: dict[str, np.ndarray], prefix: str) -> list[ImagePair]:
    """Return the pool as image pairs, grouped by cell."""
    pairs = []
    for x, sample, photons in zip(pool["inputs"], pool["sample_index"], pool["photons"],
                                  strict=True):
        structure = str(pool["structures"][sample])
        pairs.append(ImagePair(x, pool["targets"][sample], group=f"{prefix}{sample}",
                               photons=float(photons),
                               source=f"{prefix}{sample} ({structure}, {photons:g} photons)"))
    return pairs


def simulated_pairs(data: SimulatedData, cache_dir: Path,
                    progress: Callable[[str, int, int], None] | None = None
                    ) -> tuple[list[ImagePair], list[ImagePair]]:
    """Training and validation pairs (validation: other cells, from ``seed + 1``)."""
    cache = data.cache or cache_dir / "simulated_pool.npz"
    result = []
    for part, seed, n in (("train", data.seed, data.train_samples),
                          ("val", data.seed + 1, data.val_samples)):
        def report(i: int, part: str = part, n: int = n) -> None:
            if progress is not None:
                progress(part, i, n)

        path = cache.with_name(f"{cache.stem}_{part}{cache.suffix}")
        result.append(pool_pairs(load_pool(data, seed, n, path, report), f"{part}-cell"))
    return result[0], result[1]
