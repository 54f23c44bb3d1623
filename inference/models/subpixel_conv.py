"""The last convolution of DFCAN moved before ``depth_to_space``: the same result, no big shuffle.

DFCAN ends with ``conv3×3(depth_to_space(t))``: the ``s²·C``-channel tail output ``t`` is
rearranged into a ``C``-channel image ``s`` times larger, then convolved to one channel. A 3×3
kernel on the large grid reads, for each output sub-pixel ``(i, j)``, the neighbours
``(h + q, w + q′)`` of the small grid in the sub-channels ``(r, r′)`` with
``i + dy − 1 = q·s + r``; so the same output is a 3×3 convolution of ``t`` itself to ``s²``
channels, followed by a ``depth_to_space`` of those ``s²`` channels only. Zero padding agrees
(a neighbour is outside the large grid exactly when it is outside the small one).

At 256² → 512² that avoids rearranging a 256-channel 256² tensor (64 MB in float32) and a
convolution at 512²; the convolution at 256² costs 4× the multiply-adds of a 64 → 1 one at 512²,
which is small next to the tail's.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from inference.models.depth_to_space import DepthToSpace, depth_to_space

__all__ = ["SubpixelConv", "with_subpixel_conv"]


class SubpixelConv(nn.Module):
    """``conv(depth_to_space(x, s))`` computed as ``depth_to_space(conv′(x), s)``.

    Args:
        conv: the 3×3, stride-1, padding-1 convolution applied after the upsampling.
        block_size: ``s`` of the ``depth_to_space`` before it.
    """

    def __init__(self, conv: nn.Conv2d, block_size: int) -> None:
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) \
                or conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError("SubpixelConv needs a 3×3 convolution, stride 1, padding 1")
        s = self.block_size = block_size
        c_in, c_out = conv.in_channels, conv.out_channels
        self.conv = nn.Conv2d(c_in * s * s, c_out * s * s, kernel_size=3, padding=1,
                              bias=conv.bias is not None).to(conv.weight.device)
        kernel = torch.zeros_like(self.conv.weight, dtype=torch.float64)
        source = conv.weight.detach().double()
        for i in range(s):
            for j in range(s):
                for dy in range(3):
                    q, r = divmod(i + dy - 1, s)
                    for dx in range(3):
                        q2, r2 = divmod(j + dx - 1, s)
                        sub = (r * s + r2) * c_in  # TF order: input channel (r·s + r′)·C + c
                        out = (i * s + j) * c_out
                        taps = source[:, :, dy, dx]
                        kernel[out:out + c_out, sub:sub + c_in, q + 1, q2 + 1] += taps
        with torch.no_grad():
            self.conv.weight.copy_(kernel.to(conv.weight.dtype))
            if conv.bias is not None and self.conv.bias is not None:
                self.conv.bias.copy_(conv.bias.detach().repeat(s * s))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, s²·C, H, W)`` → ``(N, C_out, H·s, W·s)``."""
        return depth_to_space(self.conv(x), self.block_size)


def with_subpixel_conv(model: nn.Module) -> nn.Module:
    """Copy a DFCAN, running its ``out`` conv before ``depth_to_space`` (same output).

    Models without a ``DepthToSpace`` ``upsample`` followed by an ``out`` conv are copied as
    they are. ``model`` is left unchanged.
    """
    result = copy.deepcopy(model)
    upsample, out = getattr(result, "upsample", None), getattr(result, "out", None)
    if isinstance(upsample, DepthToSpace) and isinstance(out, nn.Conv2d):
        result.out = SubpixelConv(out, upsample.block_size)
        result.upsample = nn.Identity()
    return result
