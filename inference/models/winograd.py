"""3×3 convolutions by Winograd F(4×4, 3×3) on the CPU: 2.25× fewer multiply-adds, same result.

A direct 3×3 convolution spends 9 multiply-adds per output and input channel. Winograd's
minimal filtering computes each 4×4 output tile from a 6×6 input tile with 36 (one matrix
product per tile position, over the channels), so 2.25 per output: the network's convolutions
are its cost on a CPU already at its float32 matrix rate, and this is the only exact way below
that rate. The transforms and the bias and activation are one native kernel
(``inference/kernels/winograd.cpp``); the products are batched GEMMs. Rounding differs from a
direct convolution by about 1e-5 of the output's scale per layer (1e-6 at DFCAN's output).

Activations run channels-last (the module takes and returns NCHW tensors in the
``channels_last`` memory format, or makes them so).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

from inference.kernels import load
from inference.models.dfcan import DFCAN, FCAB, ResidualGroup

if TYPE_CHECKING:
    from inference.models.dft import MatmulDFTFCA
    from inference.models.fca import FCALayer

__all__ = ["InferenceFCAB", "InferenceGroup", "WinogradConv2d", "eligible", "with_winograd"]

#: G of F(m×m, 3×3), the kernel transform, per output tile side m (the kernel's points)
KERNEL_TRANSFORMS = {
    4: ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
        (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
    6: ((1, 0, 0), (-2 / 9, -2 / 9, -2 / 9), (-2 / 9, 2 / 9, -2 / 9),
        (1 / 90, 1 / 45, 2 / 45), (1 / 90, -1 / 45, 2 / 45), (32 / 45, 16 / 45, 8 / 45),
        (32 / 45, -16 / 45, 8 / 45), (0, 0, 1)),
}
ACTIVATIONS = {None: 0, "relu": 1, "gelu": 2}
#: bytes of a task's transformed inputs and products together: they stay in a core's cache
CHUNK_BYTES = 1 << 20


def eligible(conv: nn.Module) -> bool:
    """Whether ``conv`` is a float32 CPU 3×3 convolution, stride 1, padding 1, not grouped.

    The kernel works on multiples of 16 channels: others are padded with zero channels.
    """
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3)
            and conv.stride == (1, 1) and conv.padding == (1, 1) and conv.dilation == (1, 1)
            and conv.groups == 1 and conv.padding_mode == "zeros"
            and conv.weight.dtype == torch.float32 and conv.weight.device.type == "cpu")


class WinogradConv2d(nn.Module):
    """``activation(conv(x))`` of a 3×3 convolution, by Winograd F(4×4, 3×3) on the CPU.

    Args:
        conv: the convolution (see :func:`eligible`); its weights are copied.
        activation: ``None``, ``"relu"`` or ``"gelu"`` (exact erf), applied in the kernel.
    """

    kernel: Tensor
    bias: Tensor

    def __init__(self, conv: nn.Conv2d, activation: str | None = None, tile: int = 6) -> None:
        super().__init__()
        if not eligible(conv):
            raise ValueError("WinogradConv2d needs a float32 CPU 3×3 convolution, stride 1, "
                             "zero padding 1, not grouped")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
        if tile not in KERNEL_TRANSFORMS:
            raise ValueError(f"tile must be one of {list(KERNEL_TRANSFORMS)}, got {tile!r}")
        load()  # the operators, registered (looked up when called: modules stay copyable)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.activation, self.tile = activation, tile
        g = torch.tensor(KERNEL_TRANSFORMS[tile], dtype=torch.float64)
        padded = -(-self.out_channels // 16) * 16  # the kernel's channels: multiples of 16
        self.padded_in = -(-self.in_channels // 16) * 16
        w = torch.zeros(padded, self.padded_in, 3, 3, dtype=torch.float64)
        w[:self.out_channels, :self.in_channels] = conv.weight.detach().double()
        u = (g @ w @ g.T).permute(2, 3, 1, 0).reshape(-1, self.padded_in, padded)
        self.register_buffer("kernel", u.float().contiguous())
        bias = torch.zeros(padded)
        if conv.bias is not None:
            bias[:self.out_channels] = conv.bias.detach().float()
        self.register_buffer("bias", bias.contiguous())
        per_tile = (tile + 2) ** 2 * (self.padded_in + padded) * 4
        self.chunk = max(8, CHUNK_BYTES // per_tile // 8 * 8)  # tiles per task

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` → ``(N, K, H, W)``, channels-last in memory."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        nhwc = x.float().permute(0, 2, 3, 1).contiguous()  # no copy when channels-last
        if self.padded_in != self.in_channels:
            nhwc = nn.functional.pad(nhwc, (0, self.padded_in - self.in_channels))
        y = torch.ops.livesr.conv3x3(nhwc, self.kernel, self.bias,
                                     ACTIVATIONS[self.activation], self.tile, self.chunk)
        if y.shape[-1] != self.out_channels:
            y = y[..., :self.out_channels]
        return y.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        """Describe the channels, the tile and the fused activation."""
        return (f"{self.in_channels}, {self.out_channels}, tile={self.tile}, "
                f"activation={self.activation}")


class InferenceFCAB(nn.Module):
    """An FCAB for inference: Winograd convolutions with their GELUs fused.

    The attention and the residual are applied in one pass, in place (no autograd).
    """

    def __init__(self, block: FCAB, tile: int = 6) -> None:
        super().__init__()
        self.conv1 = WinogradConv2d(block.conv1, "gelu", tile)
        self.conv2 = WinogradConv2d(block.conv2, "gelu", tile)
        self.fca = cast("FCALayer | MatmulDFTFCA", block.fca)  # made a MatmulDFTFCA, or not
        if eligible(self.fca.conv):
            # relu(conv(spectrum))
            self.fca.conv = WinogradConv2d(self.fca.conv, "relu", tile)  # type: ignore[assignment]

    def forward(self, x: Tensor) -> Tensor:
        """``x + y · attention(y)``, ``y = gelu(conv2(gelu(conv1(x))))``."""
        y = self.conv2(self.conv1(x))
        if torch.compiler.is_compiling():  # no out= there; it fuses this itself
            return torch.addcmul(x, y, self.fca.attention(y))
        return torch.addcmul(x, y, self.fca.attention(y), out=y)


class InferenceGroup(nn.Module):
    """A residual group for inference: the long skip added in place."""

    def __init__(self, group: ResidualGroup) -> None:
        super().__init__()
        self.blocks = group.blocks

    def forward(self, x: Tensor) -> Tensor:
        """``blocks(x) + x``."""
        return self.blocks(x).add_(x)


def with_winograd(model: nn.Module, tile: int = 6) -> nn.Module:
    """Copy ``model`` (a DFCAN or DFGAN generator) with its eligible convs made Winograd.

    ``tile``: the output tile side, 6 (F(6×6, 3×3), the fastest) or 4.

    For inference only (in place where it saves a pass). In a DFCAN, the GELUs and ReLUs that
    directly follow such a convolution are fused into it (the head's, the FCABs' two, the
    tail's, the FCA layers'; there the ReLU then repeats, harmlessly), each FCAB adds its
    attended features to its input in one pass and each residual group its skip in place; the
    FCA layers fold, take the amplitude and gather with the native kernels. Other eligible
    convolutions are replaced as they are. Raises
    :class:`~inference.backends.errors.BackendUnavailable` if the kernels cannot be built here.
    """
    from inference.models.fft_fca import FFTFoldFCA

    load()
    result = copy.deepcopy(model).requires_grad_(False)  # inference only: in-place passes
    for module in result.modules():
        if isinstance(module, FFTFoldFCA):
            module.native = True  # its input is channels-last here
    for parent in list(result.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FCAB) and eligible(child.conv1) and eligible(child.conv2):
                setattr(parent, name, InferenceFCAB(child, tile))
            elif isinstance(child, ResidualGroup):
                setattr(parent, name, InferenceGroup(child))
    if isinstance(result, DFCAN) and eligible(result.tail) and eligible(result.head):
        result.head = WinogradConv2d(result.head, "gelu", tile)  # type: ignore[assignment]
        result.tail = WinogradConv2d(result.tail, "gelu", tile)  # type: ignore[assignment]
        result.gelu = nn.Identity()  # type: ignore[assignment]
    for parent in list(result.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d) and eligible(child):  # the others, as they are
                setattr(parent, name, WinogradConv2d(child, tile=tile))
    return result
