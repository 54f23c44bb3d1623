"""The official pre- and post-processing (:mod:`inference.predict.processing`) in PyTorch.

Same arithmetic as the NumPy originals (percentiles 0 and 100 are the minimum and maximum), so a
backend can normalise raw camera frames and clean its output where the model runs. With an
anchored :class:`~inference.predict.normalisation.Normalisation`, its fixed scalings instead
(the same as its NumPy path); the set's range is read back only while the anchors are taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from inference.predict.normalisation import Normalisation

__all__ = ["normalise_frames", "postprocess_t", "prctile_norm_t", "remove_hot_pixels_t",
           "rm_outliers_t"]


def prctile_norm_t(x: Tensor) -> Tensor:
    """``prctile_norm(x, 0, 100)``: minimum → 0, maximum → 1 (+1e-7 in the denominator)."""
    low = x.amin()
    return ((x - low) / (x.amax() - low + 1e-7)).clamp(0, 1)


def _diffxy_t(img: Tensor, order: int) -> Tensor:
    for _ in range(order):
        img = prctile_norm_t(img)
        d = torch.zeros_like(img)
        dx = (img[1:-1, 0:-2] + img[1:-1, 2:]) / 2
        dy = (img[0:-2, 1:-1] + img[2:, 1:-1]) / 2
        d[1:-1, 1:-1] = img[1:-1, 1:-1] - (dx + dy) / 2
        img = d.clamp(min=0)
    return img


def remove_hot_pixels_t(img: Tensor, order: int = 3, thresh: float = 0.2) -> Tensor:
    """:func:`inference.predict.processing.remove_hot_pixels` for a 2-D tensor (not rescaled)."""
    mask = _diffxy_t(img, order) > thresh
    mean = torch.zeros_like(img)
    for shift in (-1, 1):
        for axis in (0, 1):
            mean = mean + torch.roll(img, shift, dims=axis)
    return torch.where(mask, mean / 4, img)


def rm_outliers_t(img: Tensor, order: int = 3, thresh: float = 0.2) -> Tensor:
    """:func:`inference.predict.processing.rm_outliers` for a 2-D tensor."""
    return prctile_norm_t(remove_hot_pixels_t(img, order, thresh))


def postprocess_t(raw: Tensor, normalisation: Normalisation | None = None) -> Tensor:
    """:func:`inference.predict.processing.postprocess`: ``rm_outliers(prctile_norm(raw))``, 2-D.

    Anchored ``normalisation``: hot pixels removed, then its fixed output scaling, clipped.
    """
    if normalisation is None or not normalisation.anchored:
        return rm_outliers_t(prctile_norm_t(raw))
    cleaned = remove_hot_pixels_t(raw)
    anchor = normalisation.output_anchor(lambda: _range(cleaned))
    return ((cleaned - anchor.offset) / anchor.scale).clamp(0, 1)


def normalise_frames(frames: Tensor, sisr: bool,
                     normalisation: Normalisation | None = None) -> Tensor:
    """Turn raw frames ``(N, H, W)`` (any real dtype, uint16 included) into the network input.

    The result is ``(1, C, H, W)`` float32: averaged to wide-field for SISR, normalised jointly
    (as :func:`inference.predict.official.prepare_input`), or by an anchored
    ``normalisation``'s fixed input scaling, clipped.
    """
    if frames.dtype == torch.uint16:  # widen through int32: uint16 kernels are few
        data = frames.view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).to(torch.float32)
    else:
        data = frames.to(torch.float32)
    if sisr:
        data = data.mean(dim=0, keepdim=True)
    if normalisation is None or not normalisation.anchored:
        return prctile_norm_t(data)[None]
    anchor = normalisation.input_anchor(lambda: _range(data))
    return ((data - anchor.offset) / anchor.scale).clamp(0, 1)[None]


def _range(x: Tensor) -> tuple[float, float]:
    """``(min, max)`` of ``x`` as Python floats (one device synchronisation)."""
    low, high = torch.stack([x.amin(), x.amax()]).double().tolist()
    return low, high
