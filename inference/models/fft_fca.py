"""The FCA spectrum by a real FFT of the folded input: the CPU's fastest exact FCA.

The official layer takes the full complex FFT of each feature map, its amplitude, centres it
and resizes it (TF1 legacy bilinear) to ``size_psc``; at integer ratios that resize only samples
every ``f``-th frequency. Here, as in :mod:`inference.models.dft`, only those frequencies are
computed: the map is folded (its ``f`` blocks along each axis summed, which leaves exactly the
sampled frequencies), a real FFT (half the columns) of the folded map is taken, and the centred
spectrum is gathered from it (the other half by ``|F[u, v]| = |F[-u, -v]|``). At 256² → 128
that is one 128² real FFT per channel instead of a 256² complex one and a gather instead of
a resize; at 128² (no resize) a real FFT and a gather.

Only for pure sampling (``plan.resize is None``); other shapes keep the matrix DFT.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from inference.models.dft import MatmulDFTFCA, _axis_samples, fold_axis
from inference.models.fca import FCALayer

__all__ = ["FFTFoldFCA", "with_fft_fold"]


class FFTFoldFCA(MatmulDFTFCA):
    """:class:`~inference.models.dft.MatmulDFTFCA` whose spectrum is a real FFT of the folded map.

    Same weights, same result (the amplitude divided by ``√(HW)``, as there).
    """

    fft_gather: Tensor

    def __init__(self, fca: FCALayer, height: int, width: int) -> None:
        super().__init__(fca, height, width)
        if self.plan.resize is not None:
            raise ValueError(f"{height}×{width} → {fca.size_psc}: the spectrum is resized, "
                             "not sampled; use MatmulDFTFCA")
        rows = (_axis_samples(height, fca.size_psc)[0] + height // 2) % height
        cols = (_axis_samples(width, fca.size_psc)[0] + width // 2) % width
        self.fold_h, self.fold_w = self.plan.fold_rows, self.plan.fold_cols
        h, w = height // self.fold_h, width // self.fold_w
        self.folded = (h, w)
        u, v = np.meshgrid(rows // self.fold_h, cols // self.fold_w, indexing="ij")
        mirror = v > w // 2
        u = np.where(mirror, -u % h, u)
        v = np.where(mirror, (w - v) % w, v)
        self.register_buffer("fft_gather", torch.from_numpy((u * (w // 2 + 1) + v).ravel()))
        self.out_shape = (len(rows), len(cols))
        self.norm = 1 / float(np.sqrt(height * width))
        #: fold, amplitude and gather a channels-last map by the native CPU kernels
        #: (``torch.ops.livesr``, loaded; set by :func:`inference.models.winograd.with_winograd`,
        #: whose network is channels-last), else by ATen ops
        self.native = False

    def spectrum(self, x: Tensor) -> Tensor:
        """``fftshift((|FFT2(x)| + 1e-8)^γ)`` at the sampled frequencies, / ``(HW)^(γ/2)``."""
        if x.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"this FCA was built for {self.height}×{self.width} inputs, got "
                f"{x.shape[-2]}×{x.shape[-1]}"
            )
        h, w = self.folded
        x = x.float()
        channels_last = x.ndim == 4 and x.shape[1] > 1 \
            and x.is_contiguous(memory_format=torch.channels_last)
        if channels_last and self.native:  # fold, amplitude, gather: two passes
            ops = torch.ops.livesr
            folded = ops.fold_nchw(x.permute(0, 2, 3, 1), self.fold_h, self.fold_w)
            out = ops.fca_amplitude(torch.fft.rfft2(folded), self.fft_gather, self.norm,
                                    self.eps, self.gamma)
            return out.reshape(x.shape[0], *self.out_shape, x.shape[1]).permute(0, 3, 1, 2)
        x = fold_axis(fold_axis(x, -2, self.fold_h, h), -1, self.fold_w, w)
        amp = torch.fft.rfft2(x).abs().mul_(self.norm).add_(self.eps).pow_(self.gamma)
        flat = amp.reshape(*amp.shape[:-2], -1).index_select(-1, self.fft_gather)
        return flat.reshape(*amp.shape[:-2], *self.out_shape)


def with_fft_fold(model: torch.nn.Module, height: int, width: int) -> torch.nn.Module:
    """Copy ``model``, making every FCA layer an :class:`FFTFoldFCA` (else a matrix-DFT one).

    The FCA layers of the copy are built for ``height × width`` inputs; ``model`` is unchanged.
    """
    import copy

    result = copy.deepcopy(model)
    for parent in list(result.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FCALayer):
                try:
                    setattr(parent, name, FFTFoldFCA(child, height, width))
                except ValueError:
                    setattr(parent, name, MatmulDFTFCA(child, height, width))
    return result
