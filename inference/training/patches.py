"""Image pairs in memory and the training crops drawn from them.

Every dataset (BioSR, TIFF folders, the simulator) yields :class:`ImagePair` objects: the input
``(C, H, W)`` (one WF image or the raw SIM frames) and its target ``(H·s, W·s)``, with the cell
or sample they come from, so that validation is split by cell, never by crop.
:class:`PatchSampler` draws the training batches as the official data loader does: a crop,
``prctile_norm`` of the input (a raw stack jointly) and of the target, here centred on the
foreground and randomly flipped and rotated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from inference.predict.processing import prctile_norm

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ImagePair",
    "PatchSampler",
    "foreground_pixels",
    "normalise_pair",
    "random_rot_flip",
    "split_by_group",
]


@dataclass
class ImagePair:
    """One input image (or raw stack) and its super-resolved target."""

    input: np.ndarray  # (C, H, W)
    target: np.ndarray  # (H·s, W·s)
    group: str  # the cell or sample: the unit of the train/validation split
    photons: float | None = None
    source: str = ""
    _foreground: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Give a 2-D input its channel axis; check the shapes and the integer scale."""
        if self.input.ndim == 2:
            self.input = self.input[None]
        if self.input.ndim != 3 or self.target.ndim != 2:
            raise ValueError(f"{self.source or self.group}: expected input (C, H, W) and target "
                             f"(H·s, W·s), got {self.input.shape} and {self.target.shape}")
        scale = self.target.shape[0] / self.input.shape[1]
        if scale != self.target.shape[1] / self.input.shape[2] or scale != int(scale):
            raise ValueError(f"{self.source or self.group}: target {self.target.shape} is not an "
                             f"integer multiple of input {self.input.shape[1:]}")

    @property
    def scale(self) -> int:
        """The SR factor: target pixels per input pixel."""
        return self.target.shape[0] // self.input.shape[1]

    def foreground(self) -> np.ndarray:
        """Input pixels whose target area is above the target's mean (computed once)."""
        if self._foreground is None:
            self._foreground = foreground_pixels(self.target, self.scale)
        return self._foreground


def foreground_pixels(target: np.ndarray, scale: int) -> np.ndarray:
    """Return the ``(N, 2)`` input-grid pixels where training crops are centred.

    These are the pixels whose ``scale``×``scale`` target area is brighter than the target's
    mean.
    """
    h, w = target.shape[0] // scale, target.shape[1] // scale
    binned = np.asarray(target).reshape(h, scale, w, scale).mean(axis=(1, 3))
    return np.argwhere(binned > binned.mean())


def random_rot_flip(x: np.ndarray, y: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the input ``(C, h, w)`` and target ``(H, W)`` by the same random multiple of 90°.

    At random, both are also flipped left–right. The results are views.
    """
    k = int(rng.integers(4))
    x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
    if rng.integers(2):
        x, y = x[:, :, ::-1], y[:, ::-1]
    return x, y


def normalise_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``prctile_norm`` (0–100 %) of the input (all channels jointly) and of the target."""
    return (prctile_norm(x.astype(np.float32)).astype(np.float32),
            prctile_norm(y.astype(np.float32)).astype(np.float32))


def split_by_group(pairs: Sequence[ImagePair], val_groups: set[str]
                   ) -> tuple[list[ImagePair], list[ImagePair]]:
    """Training and validation pairs, by cell or sample."""
    train = [p for p in pairs if p.group not in val_groups]
    val = [p for p in pairs if p.group in val_groups]
    return train, val


class PatchSampler:
    """Random foreground-centred crops with flips and 90° rotations, normalised per crop."""

    def __init__(self, pairs: Sequence[ImagePair], patch_size: int) -> None:
        if not pairs:
            raise ValueError("no training images")
        small = [p for p in pairs if min(p.input.shape[1:]) < patch_size]
        if small:
            raise ValueError(f"{small[0].source or small[0].group}: image {small[0].input.shape} "
                             f"is smaller than the patch size {patch_size}")
        channels = {p.input.shape[0] for p in pairs}
        scales = {p.scale for p in pairs}
        if len(channels) > 1 or len(scales) > 1:
            raise ValueError(f"mixed input channels {sorted(channels)} or scales {sorted(scales)}")
        self.pairs = list(pairs)
        self.patch_size = patch_size
        self.scale = scales.pop()
        self.in_channels = channels.pop()

    def crop(self, pair: ImagePair, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Crop ``pair`` around a random foreground pixel; rotate, flip and normalise the crop."""
        p, s = self.patch_size, self.scale
        h, w = pair.input.shape[1:]
        fg = pair.foreground()
        if len(fg):
            cy, cx = fg[rng.integers(len(fg))]
        else:
            cy, cx = rng.integers(h), rng.integers(w)
        top = int(np.clip(cy - p // 2, 0, h - p))
        left = int(np.clip(cx - p // 2, 0, w - p))
        x = pair.input[:, top:top + p, left:left + p]
        y = pair.target[top * s:(top + p) * s, left * s:(left + p) * s]
        x, y = random_rot_flip(x, y, rng)
        return normalise_pair(np.ascontiguousarray(x), np.ascontiguousarray(y))

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` crops from randomly chosen images: ``(B, C, p, p)`` and ``(B, 1, p·s, p·s)``."""
        crops = [self.crop(self.pairs[int(rng.integers(len(self.pairs)))], rng)
                 for _ in range(size)]
        x = torch.from_numpy(np.stack([c[0] for c in crops]))
        y = torch.from_numpy(np.stack([c[1] for c in crops]))[:, None]
        return x, y
