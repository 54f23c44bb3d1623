"""bf16 where it costs no accuracy: the FCABs' convolutions in bfloat16, everything else float32.

On the official DFCAN16 with the golden weights and input, the network in bfloat16 throughout
(or under ``torch.autocast``) is off by 5.6e-3 (max abs), and by 3.1e-3 even with only its
convolutions in bfloat16: the head, tail and output convs, and the residual sums carried in
bfloat16, cost most of it. The 32 convolutions inside the FCABs (two thirds of the network's
multiply-adds at 256²) in bfloat16, with float32 activations between them, are off by 6.6e-4.
On a CPU with bf16 instructions (AVX-512 BF16, AMX) oneDNN runs those at twice the float32 rate
or more; without them it emulates bfloat16, slower than float32.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from inference.models.dfcan import FCAB

__all__ = ["Bf16Conv", "with_bf16_block_convs"]


class Bf16Conv(nn.Module):
    """A convolution run in bfloat16 between float32 activations (weights kept in bfloat16)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = copy.deepcopy(conv).to(torch.bfloat16)

    def forward(self, x: Tensor) -> Tensor:
        """float32 ``x`` → this convolution in bfloat16 → float32."""
        return self.conv(x.to(torch.bfloat16)).float()


def with_bf16_block_convs(model: nn.Module) -> nn.Module:
    """Copy ``model``, running its FCABs' two 3×3 convolutions run in bfloat16 (see the module)."""
    result = copy.deepcopy(model)
    for block in result.modules():
        if isinstance(block, FCAB):
            block.conv1 = Bf16Conv(block.conv1)  # type: ignore[assignment]
            block.conv2 = Bf16Conv(block.conv2)  # type: ignore[assignment]
    return result
