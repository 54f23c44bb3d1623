"""BioSR-like training and test pairs: (WF or raw SIM set, ground truth) across photon levels.

As in BioSR, every sample (a "cell") is recorded at several photon levels; each level gets its
own noise. Inputs are float32 camera counts; targets the noiseless SR-grid ground truth.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from .render import NoiselessSet, render_set
from .samples import STRUCTURES

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from .camera import CameraModel
    from .illumination import Mode
    from .optics import Optics

# BioSR's test levels span about 15–600 photons
PHOTON_LEVELS: tuple[float, ...] = (15, 25, 40, 60, 100, 150, 220, 320, 450, 600)

InputKind = Literal["wf", "sim"]


@dataclass
class TrainingPair:
    """One input/target pair and where it came from."""

    input: np.ndarray  # (H, W) WF, or (n, H, W) raw SIM set; float32 ADU
    target: np.ndarray  # (H·s, W·s) float32 ground truth
    structure: str
    photons: float
    sample_seed: int


def training_pairs(
    structures: Sequence[str] = STRUCTURES,
    photon_levels: Sequence[float] = PHOTON_LEVELS,
    mode: Mode = "tirf-sim",
    size: int = 128,
    input_kind: InputKind = "wf",
    seed: int = 0,
    n_samples: int | None = None,
    optics: Optics | None = None,
    camera: CameraModel | None = None,
) -> Iterator[TrainingPair]:
    """Yield pairs for ``n_samples`` samples (forever if ``None``), cycling through ``structures``.

    Each sample yields one pair per photon level. Reproducible from ``seed``.
    """
    if input_kind not in ("wf", "sim"):
        raise ValueError(f"input_kind must be 'wf' or 'sim', got {input_kind!r}")
    if not photon_levels or min(photon_levels) <= 0:
        raise ValueError(f"photon levels must be positive, got {list(photon_levels)}")
    for structure, sample_seed, scene in sample_scenes(structures, mode, size, seed, n_samples,
                                                       optics):
        for photons in photon_levels:
            recorded = scene.at_photons(photons, camera,
                                        np.random.default_rng(noise_seed(sample_seed, photons)))
            x = recorded.wf if input_kind == "wf" else recorded.raw.astype(np.float32)
            yield TrainingPair(x, recorded.gt, structure, float(photons), sample_seed)


def sample_scenes(
    structures: Sequence[str] = STRUCTURES,
    mode: Mode = "tirf-sim",
    size: int = 128,
    seed: int = 0,
    n_samples: int | None = None,
    optics: Optics | None = None,
) -> Iterator[tuple[str, int, NoiselessSet]]:
    """Yield the noiseless scenes behind :func:`training_pairs`.

    Each is ``(structure, sample_seed, scene)``, for ``n_samples`` samples (forever if
    ``None``), cycling through ``structures``.
    """
    for i, sample_seed in enumerate(_sample_seeds(seed, n_samples)):
        structure = structures[i % len(structures)]
        yield structure, sample_seed, render_set(structure, mode, size, sample_seed, optics)


def _sample_seeds(seed: int, n_samples: int | None) -> Iterator[int]:
    root = np.random.SeedSequence(seed)
    counter = itertools.count() if n_samples is None else range(n_samples)
    for _ in counter:
        yield int(root.spawn(1)[0].generate_state(1)[0])


def sample_seeds(seed: int, n_samples: int) -> list[int]:
    """Return the seeds of the first ``n_samples`` samples that :func:`sample_scenes` draws."""
    return list(_sample_seeds(seed, n_samples))


def noise_seed(sample_seed: int, photons: float, realisation: int = 0) -> list[int]:
    """Return the seed of a sample's camera noise at a photon level.

    Realisation 0 is the one :func:`training_pairs` records; others are independent repeats of
    the same exposure.
    """
    seed = [sample_seed, *np.frombuffer(np.float64(photons).tobytes(), np.uint32)]
    return [*seed, realisation] if realisation else seed

