"""Fourier channel attention (FCA), as in the official DFCAN (qc17-THU/DL-SR, ``common.py``).

The attention weights come from the amplitude spectrum of each feature map:
``(|FFT2(x)| + 1e-8) ** gamma``, centred, resized to ``size_psc`` × ``size_psc`` with TF1's
*legacy* bilinear sampling, then conv3×3 + ReLU, global mean, 1×1 down + ReLU, 1×1 up + sigmoid.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "FCALayer",
    "fftshift2d",
    "legacy_bilinear_indices",
    "resize_bilinear_tf1_legacy",
    "spectrum_amplitude",
]


def spectrum_amplitude(x: Tensor, gamma: float) -> Tensor:
    """``(|FFT2(x)| + 1e-8) ** gamma`` over the last two axes, in complex64 as TF does."""
    spectrum = torch.fft.fft2(x.float())
    return torch.pow(torch.abs(spectrum) + 1e-8, gamma)


def fftshift2d(x: Tensor) -> Tensor:
    """Centre the spectrum exactly as the official slicing does.

    The official code puts rows ``[-h//2:]`` (Python floor division) before rows ``[:h//2]``:
    the element at ``h//2`` comes first. For even sizes that is ``fftshift``; for odd sizes it is
    ``ifftshift`` (``numpy.fft.fftshift`` would start one element later).
    """
    h, w = x.shape[-2], x.shape[-1]
    return torch.roll(x, shifts=(-(h // 2), -(w // 2)), dims=(-2, -1))


def legacy_bilinear_indices(
    in_size: int, out_size: int, device: torch.device | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Lower and upper source indices and weights of TF1 legacy bilinear sampling along one axis.

    TF1 ``resize_bilinear`` with ``align_corners=False`` and no half-pixel centres: the source
    coordinate of output ``i`` is ``i * (in/out)`` in float32; lower ``floor``, upper
    ``min(ceil, in - 1)``, weight the fractional part.
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lower_f = torch.floor(src)
    lower = lower_f.long().clamp(0, in_size - 1)
    upper = torch.ceil(src).long().clamp(max=in_size - 1)
    lerp = src - lower_f
    return lower.to(device), upper.to(device), lerp.to(device)


def resize_bilinear_tf1_legacy(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize the last two axes of ``x`` to ``size`` as TF1 ``tf.image.resize_images(x, size, 0)``.

    Per output pixel, TF's own expression (so that rounding matches):
    ``top = tl + (tr - tl) * x_lerp``, ``bottom = bl + (br - bl) * x_lerp``,
    ``out = top + (bottom - top) * y_lerp``. Rows are gathered first (cheap when shrinking).
    """
    out_h, out_w = size
    in_h, in_w = x.shape[-2], x.shape[-1]
    if (in_h, in_w) == (out_h, out_w):
        return x
    y0, y1, y_lerp = legacy_bilinear_indices(in_h, out_h, x.device)
    x0, x1, x_lerp = legacy_bilinear_indices(in_w, out_w, x.device)
    x_lerp = x_lerp.to(x.dtype)

    def along_width(rows: Tensor) -> Tensor:
        left, right = rows.index_select(-1, x0), rows.index_select(-1, x1)
        return left + (right - left) * x_lerp

    top = along_width(x.index_select(-2, y0))
    bottom = along_width(x.index_select(-2, y1))
    return top + (bottom - top) * y_lerp.to(x.dtype)[:, None]


class FCALayer(nn.Module):
    """Fourier channel attention: rescale each channel by a weight learnt from its spectrum.

    Args:
        channel: number of feature channels.
        reduction: channel reduction of the 1×1 bottleneck.
        size_psc: side of the resized power spectrum (None: keep the input's size).
        gamma: exponent applied to the amplitude spectrum (0.8 in DFCAN, 0.1 in DFGAN).
    """

    def __init__(
        self, channel: int = 64, reduction: int = 16, size_psc: int | None = 128, gamma: float = 0.8
    ) -> None:
        super().__init__()
        self.size_psc = size_psc
        self.gamma = gamma
        self.conv = nn.Conv2d(channel, channel, kernel_size=3, padding=1)
        self.down = nn.Conv2d(channel, channel // reduction, kernel_size=1)
        self.up = nn.Conv2d(channel // reduction, channel, kernel_size=1)

    def attention(self, x: Tensor) -> Tensor:
        """Return each channel's attention weight (from its spectrum), ``(N, C, 1, 1)``."""
        spectrum = fftshift2d(spectrum_amplitude(x, self.gamma)).to(x.dtype)
        if self.size_psc is not None:
            spectrum = resize_bilinear_tf1_legacy(spectrum, (self.size_psc, self.size_psc))
        weights = torch.relu(self.conv(spectrum)).mean(dim=(-2, -1), keepdim=True)
        return torch.sigmoid(self.up(torch.relu(self.down(weights))))

    def forward(self, x: Tensor) -> Tensor:
        """Scale the channels of ``x`` by attention weights from its spectrum (same shape)."""
        return x * self.attention(x)
