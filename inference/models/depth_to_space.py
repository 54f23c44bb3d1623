"""TensorFlow's ``depth_to_space`` for NCHW tensors (sub-pixel upsampling in TF channel order)."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["DepthToSpace", "depth_to_space"]


def depth_to_space(x: Tensor, block_size: int) -> Tensor:
    """Rearrange ``(N, s²·C, H, W)`` into ``(N, C, H·s, W·s)`` in TensorFlow's order.

    ``out[n, c, h·s + i, w·s + j] = in[n, (i·s + j)·C + c, h, w]`` — TF's (and ONNX ``DepthToSpace``
    mode ``DCR``) convention, not ``torch.nn.PixelShuffle``'s ``c·s² + i·s + j``.
    """
    n, depth, h, w = x.shape
    s = block_size
    if depth % (s * s):
        raise ValueError(f"depth_to_space: {depth} channels are not a multiple of {s}² = {s * s}")
    c = depth // (s * s)
    x = x.reshape(n, s, s, c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c, h * s, w * s)


class DepthToSpace(nn.Module):
    """``tf.nn.depth_to_space`` as a module (the official ``pixel_shiffle``)."""

    def __init__(self, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size

    def forward(self, x: Tensor) -> Tensor:
        """Rearrange ``(N, s²·C, H, W)`` into ``(N, C, H·s, W·s)`` (see :func:`depth_to_space`)."""
        return depth_to_space(x, self.block_size)

    def extra_repr(self) -> str:
        """Return ``block_size=s`` for the module's repr."""
        return f"block_size={self.block_size}"
