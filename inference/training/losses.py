"""Training losses of the official code (``utils/loss.py``, ``train_DFGAN.py``).

- :func:`dfcan_loss`: both tensors min–max normalised over the whole batch, then
  ``MSE + 0.1 · (1 − SSIM)`` with ``tf.image.ssim``'s settings (11×11 Gaussian, σ 1.5, k1 0.01,
  k2 0.03, valid filtering, max value 1).
- DFGAN: generator ``0.1 · BCE(D(G(x)), 1) + dfcan_loss``; discriminator
  ``(BCE(D(y), 1) + BCE(D(G(x)), 0)) / 2``, with Keras' clipped binary cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "binary_crossentropy",
    "dfcan_loss",
    "dfgan_discriminator_loss",
    "dfgan_generator_loss",
    "gaussian_window",
    "minmax_normalise",
    "ssim",
]

_KERAS_EPSILON = 1e-7


def minmax_normalise(x: Tensor, eps: float = 0.0) -> Tensor:
    """``(x − min) / (max − min)`` over the whole batch (the official code has no ``eps``)."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo + eps)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """TF's ``_fspecial_gauss``: a normalised ``size``×``size`` Gaussian (float32)."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
    g = coords.square() * (-0.5 / sigma**2)
    return torch.softmax((g[None, :] + g[:, None]).reshape(-1), dim=0).reshape(size, size)


def ssim(
    x: Tensor,
    y: Tensor,
    max_val: float = 1.0,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """``tf.image.ssim`` for NCHW tensors: one value per image (mean over pixels and channels)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two NCHW tensors of one shape, got {x.shape} and {y.shape}")
    if min(x.shape[-2:]) < filter_size:
        raise ValueError(f"ssim needs images of at least {filter_size}×{filter_size}")
    channels = x.shape[1]
    window = gaussian_window(filter_size, filter_sigma).to(x)
    kernel = window.expand(channels, 1, filter_size, filter_size)

    def reducer(t: Tensor) -> Tensor:
        return F.conv2d(t, kernel, groups=channels)

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mean_x, mean_y = reducer(x), reducer(y)
    num0 = mean_x * mean_y * 2.0
    den0 = mean_x.square() + mean_y.square()
    luminance = (num0 + c1) / (den0 + c1)
    num1 = reducer(x * y) * 2.0
    den1 = reducer(x.square() + y.square())
    contrast_structure = (num1 - num0 + c2) / (den1 - den0 + c2)
    return (luminance * contrast_structure).mean(dim=(-2, -1)).mean(dim=-1)


def dfcan_loss(
    prediction: Tensor, target: Tensor, ssim_weight: float = 0.1, mse_weight: float = 1.0
) -> Tensor:
    """Compute the official ``loss_mse_ssim``: ``mse_weight · MSE + ssim_weight · (1 − SSIM)``.

    Both tensors are min–max normalised over the batch first (the official order of arguments,
    ``(y_true, y_pred)``, does not matter: every term is symmetric).
    """
    x, y = minmax_normalise(target), minmax_normalise(prediction)
    ssim_loss = ssim_weight * (1.0 - ssim(x, y, 1.0).mean())
    mse_loss = mse_weight * (y - x).square().mean()
    return mse_loss + ssim_loss


def binary_crossentropy(probability: Tensor, target: float | Tensor) -> Tensor:
    """Keras' binary cross-entropy on probabilities, clipped to [1e-7, 1 − 1e-7], averaged."""
    p = probability.clamp(_KERAS_EPSILON, 1.0 - _KERAS_EPSILON)
    t = torch.as_tensor(target, dtype=p.dtype, device=p.device).expand_as(p)
    return -(t * torch.log(p) + (1.0 - t) * torch.log1p(-p)).mean()


def dfgan_generator_loss(
    prediction: Tensor, target: Tensor, judged_fake: Tensor, adversarial_weight: float = 0.1
) -> Tensor:
    """``adversarial_weight · BCE(D(G(x)), 1) + dfcan_loss(G(x), y)`` (``train_DFGAN.py``)."""
    return adversarial_weight * binary_crossentropy(judged_fake, 1.0) + dfcan_loss(
        prediction, target
    )


def dfgan_discriminator_loss(judged_real: Tensor, judged_fake: Tensor) -> Tensor:
    """``(BCE(D(y), 1) + BCE(D(G(x)), 0)) / 2``, as the official training loop averages them."""
    return 0.5 * (binary_crossentropy(judged_real, 1.0) + binary_crossentropy(judged_fake, 0.0))
