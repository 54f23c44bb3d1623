"""A bank of noiseless simulated scenes on disk, and crops recorded from it afresh every time.

The fixed pool of :mod:`inference.training.simulated` (every cell at ten photon levels, one
noise realisation each) is memorised once training runs long enough. Here each cell is
rendered once, noiselessly, with its own SIM pattern (frequency, angles, phases, modulation,
background drawn per cell) and a ground truth of one fixed resolution, and stored as
memory-mapped ``.npy`` arrays. A training crop is then recorded at a photon level drawn
log-uniformly, with fresh camera noise (Poisson + read noise through the camera's pixel maps),
randomly rotated and flipped, and, for raw SIM input, with its orientations permuted and its
phase steps reversed at random: the frames stay grouped by orientation, as every raw set is,
but no fixed order of angles or phase direction can be learnt. Rendering leaves the loop; a
64² raw-set crop costs about 5 ms (a rendered 128² cell: 180 ms).

Bank folder: ``raw.npy`` (cells, frames, S, S) expected photons at an average photon count of
1, ``gt.npy`` (cells, S·s, S·s) on the same scale, ``cells.json`` (structure and pattern of
every cell, and the key of the settings that made them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from inference.training.config import SceneBankData
from inference.training.patches import (
    ImagePair,
    foreground_pixels,
    normalise_pair,
    random_rot_flip,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["BankSampler", "SceneBank", "bank_data", "build_bank", "pattern_for_cell"]

_FORMAT = 1
SENSOR = 512  # camera pixel maps are cropped at random from a sensor this size


def _key(data: SceneBankData, seed: int, n_cells: int) -> str:
    fields = data.model_dump(mode="json", include={
        "mode", "structures", "image_size", "frequency_fraction", "gt_frequency_fraction",
        "modulation", "background_fraction", "random_angles"})
    fields.update(seed=seed, n_cells=n_cells, format=_FORMAT)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def pattern_for_cell(data: SceneBankData, rng: np.random.Generator) -> Any:
    """Draw the cell's SIM pattern from the config's ranges."""
    from simulators.illumination import default_patterns

    base = default_patterns(data.mode)
    angle = rng.uniform(0, np.pi) if data.random_angles else base.base_angle_rad
    return base.model_copy(update={
        "frequency_fraction": float(rng.uniform(*data.frequency_fraction)),
        "modulation": float(rng.uniform(*data.modulation)),
        "background_fraction": float(rng.uniform(*data.background_fraction)),
        "base_angle_rad": float(angle),
    })


class SceneBank:
    """The arrays of one bank folder, memory-mapped."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.raw = np.load(self.folder / "raw.npy", mmap_mode="r")
        self.gt = np.load(self.folder / "gt.npy", mmap_mode="r")
        self.cells: list[dict[str, Any]] = json.loads(
            (self.folder / "cells.json").read_text())["cells"]

    def __len__(self) -> int:
        """Return the number of cells."""
        return len(self.raw)

    @property
    def scale(self) -> int:
        """The SR factor: ground-truth pixels per camera pixel."""
        return self.gt.shape[-1] // self.raw.shape[-1]

    @staticmethod
    def key_of(folder: Path) -> str | None:
        """Return the settings key the bank in ``folder`` was made from (``None``: no bank)."""
        try:
            return str(json.loads((Path(folder) / "cells.json").read_text())["key"])
        except (OSError, ValueError, KeyError):
            return None


def build_bank(data: SceneBankData, seed: int, n_cells: int, folder: Path,
               progress: Callable[[int, int], None] | None = None,
               workers: int = 1) -> SceneBank:
    """Return the bank in ``folder`` if it was made from the same settings, else render it there.

    It is written to a temporary folder, then renamed: a half-written bank is never read.
    """
    folder = Path(folder)
    key = _key(data, seed, n_cells)
    if SceneBank.key_of(folder) == key:
        return SceneBank(folder)
    from simulators.pairs import sample_seeds

    seeds = sample_seeds(seed, n_cells)
    if progress is not None:
        progress(0, n_cells)
    jobs = [(data.model_dump(mode="json"), i, s) for i, s in enumerate(seeds)]
    rendered = []
    with ExitStack() as stack:
        results: Iterator[Any] = map(_render_cell, jobs)
        if workers > 1 and _can_spawn():
            import multiprocessing as mp

            pool = stack.enter_context(mp.get_context("spawn").Pool(workers))
            results = pool.imap(_render_cell, jobs)
        for item in results:
            rendered.append(item)
            if progress is not None:
                progress(len(rendered), n_cells)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "raw.npy", np.stack([r[0] for r in rendered]))
    np.save(tmp / "gt.npy", np.stack([r[1] for r in rendered]))
    (tmp / "cells.json").write_text(json.dumps({"key": key, "seed": seed,
                                                "cells": [r[2] for r in rendered]}, indent=0))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return SceneBank(folder)


def _can_spawn() -> bool:
    """Spawned workers re-import ``__main__``: impossible for a script read from stdin."""
    main_file = getattr(sys.modules["__main__"], "__file__", None)
    return isinstance(main_file, str) and Path(main_file).is_file()


def _render_cell(job: tuple[dict[str, Any], int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                 dict[str, Any]]:
    from simulators.render import render_set

    settings, index, sample_seed = job
    data = SceneBankData.model_validate(settings)
    structure = data.structures[index % len(data.structures)]
    patterns = pattern_for_cell(data, np.random.default_rng([sample_seed, 7]))
    scene = render_set(structure, data.mode, data.image_size, sample_seed, patterns=patterns,
                       gt_frequency_fraction=data.gt_frequency_fraction)
    p = scene.params["pattern"]
    cell = {"structure": structure, "sample_seed": sample_seed,
            "frequency_per_um": p["frequency_per_um"], "angles_rad": p["angles_rad"],
            "modulation": p["modulation"], "background_fraction": p["background_fraction"]}
    return scene.raw_photons, scene.gt, cell


class BankSampler:
    """Training batches recorded from a :class:`SceneBank`.

    It follows the trainer's sampler protocol: ``batch(rng, size)``, ``in_channels``, ``scale``.
    """

    def __init__(self, bank: SceneBank, data: SceneBankData, patch_size: int,
                 n_phases: int = 3) -> None:
        from simulators.camera import CameraModel

        size = bank.raw.shape[-1]
        if size < patch_size:
            raise ValueError(f"{bank.folder}: scenes of {size}² are smaller than the patch "
                             f"size {patch_size}")
        self.bank, self.data, self.patch_size = bank, data, patch_size
        self.scale = bank.scale
        self.frames = bank.raw.shape[1]
        self.n_phases = n_phases if self.frames % n_phases == 0 else 1
        self.in_channels = 1 if data.input_kind == "wf" else self.frames
        self.maps = CameraModel().pixel_maps((SENSOR, SENSOR))
        self.foreground = [foreground_pixels(gt, self.scale) for gt in bank.gt]

    def crop(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One normalised ``(input, target)`` crop of a random cell at a random dose."""
        p, s = self.patch_size, self.scale
        index = int(rng.integers(len(self.bank)))
        size = self.bank.raw.shape[-1]
        fg = self.foreground[index]
        cy, cx = fg[rng.integers(len(fg))] if len(fg) else rng.integers(size, size=2)
        top = int(np.clip(cy - p // 2, 0, size - p))
        left = int(np.clip(cx - p // 2, 0, size - p))
        low, high = self.data.photons
        photons = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        expected = np.asarray(self.bank.raw[index, :, top:top + p, left:left + p]) * photons
        my, mx = rng.integers(SENSOR - p + 1, size=2)
        maps = self.maps.crop(int(my), int(mx), p, p)
        raw = np.stack([maps.expose(f, rng) for f in expected]).astype(np.float32)
        y = np.asarray(self.bank.gt[index, top * s:(top + p) * s, left * s:(left + p) * s])
        x = raw.mean(axis=0, keepdims=True) if self.in_channels == 1 else self._reorder(raw, rng)
        x, y = random_rot_flip(x, y, rng)
        return normalise_pair(np.ascontiguousarray(x), np.ascontiguousarray(y))

    def _reorder(self, raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.data.shuffle_pattern_order or self.n_phases == 1:
            return raw
        grouped = raw.reshape(-1, self.n_phases, *raw.shape[1:])
        grouped = grouped[rng.permutation(len(grouped))]
        if rng.integers(2):  # phase steps the other way round: 0, 2, 1 for three phases
            grouped = grouped[:, (-np.arange(self.n_phases)) % self.n_phases]
        return grouped.reshape(raw.shape)

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` crops: ``(B, C, p, p)`` and ``(B, 1, p·s, p·s)``."""
        crops = [self.crop(rng) for _ in range(size)]
        x = torch.from_numpy(np.stack([c[0] for c in crops]))
        y = torch.from_numpy(np.stack([c[1] for c in crops]))[:, None]
        return x, y


def validation_pairs(bank: SceneBank, data: SceneBankData) -> list[ImagePair]:
    """Every validation cell, whole, at every validation level, with fixed noise."""
    from simulators.camera import CameraModel
    from simulators.pairs import noise_seed

    size = bank.raw.shape[-1]
    maps = CameraModel().pixel_maps((size, size))
    pairs = []
    for i in range(len(bank)):
        cell = bank.cells[i]
        for level in data.val_photon_levels:
            rng = np.random.default_rng(noise_seed(cell["sample_seed"], level))
            raw = np.stack([maps.expose(f * level, rng) for f in np.asarray(bank.raw[i])])
            x = raw.astype(np.float32)
            if data.input_kind == "wf":
                x = x.mean(axis=0, keepdims=True)
            pairs.append(ImagePair(x, np.asarray(bank.gt[i], np.float32) * level,
                                   group=f"val-cell{i}", photons=float(level),
                                   source=f"val-cell{i} ({cell['structure']}, {level:g} photons)"))
    return pairs


def bank_data(data: SceneBankData, run_dir: Path, patch_size: int,
              progress: Callable[[str, int, int], None] | None = None,
              workers: int | None = None) -> tuple[BankSampler, list[ImagePair]]:
    """Return the training sampler and the validation pairs of a ``scene_bank`` config.

    A bank not on disk yet is rendered by ``workers`` processes (default one per core; at most
    one per 8 cells).
    """
    root = Path(data.bank) if data.bank is not None else Path(run_dir) / "bank"
    banks = {}
    for part, seed, n in (("train", data.seed, data.train_cells),
                          ("val", data.seed + 1, data.val_cells)):
        def report(i: int, total: int, part: str = part) -> None:
            if progress is not None:
                progress(part, i, total)

        processes = max(1, min(workers or len(os.sched_getaffinity(0)), n // 8))
        banks[part] = build_bank(data, seed, n, root / part, report, processes)
    return BankSampler(banks["train"], data, patch_size), validation_pairs(banks["val"], data)
