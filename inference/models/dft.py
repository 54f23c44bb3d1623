"""The FCA amplitude spectrum as a DFT by matrix products, for one fixed input size.

:class:`MatmulDFTFCA` computes what :class:`inference.models.fca.FCALayer` computes, without an FFT:
two matrix products with precomputed cos/sin matrices. That exports to every ONNX opset and
every TensorRT version, and runs as plain GEMMs on a GPU (no FFT graph breaks).

- fftshift is folded into the choice of frequencies (the matrices' row order);
- only the frequencies the layer uses are computed: with the official spectrum resize to
  ``size_psc`` (TF1 legacy bilinear), the rows and columns it samples; at integer ratios that is
  every (H/size_psc)-th frequency;
- when every needed frequency along an axis is a multiple of ``f`` (``f`` dividing the side),
  the input is first folded along it: its ``f`` blocks are summed and the DFT runs on the folded
  samples (``F[f·k] = Σ_{n<H/f} (Σ_j x[n + j·H/f]) e^{-2πi k n/(H/f)}``, exact). At 256² → 128
  both products shrink 2–4×, at 512² → 128 by 4–16×;
- a real input needs half the columns: ``|F[u, v]| = |F[-u, -v]|``, the other half is gathered;
- the DFT matrices are scaled by 1/√H and 1/√W, so intermediate values stay within float16's
  range; the amplitude is taken in float32 and the factor ``(HW)^(γ/2)`` is folded into the weights
  of the next convolution, which is linear: the layer's result is unchanged.

:func:`with_matmul_dft` returns a copy of a DFCAN whose FCA layers all work this way.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from inference.models.fca import FCALayer, legacy_bilinear_indices

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MatmulDFTFCA", "SpectrumPlan", "fold_axis", "plan_spectrum", "with_matmul_dft"]


class SpectrumPlan:
    """Which DFT rows and columns to compute and how to assemble the resized spectrum.

    Attributes
    ----------
        row_freqs, col_freqs: the frequencies computed, of the input's grid (columns: canonical
            half when the half-spectrum pays off).
        fold_rows, fold_cols: blocks summed along each axis before the DFT (1: none); the DFT
            then runs on ``dft_height × dft_width`` samples.
        gather: flat indices into the computed ``(rows, cols)`` amplitude that give the
            (shifted, needed) spectrum, or None when the computed one is already it.
        resize: ``(y0, y1, y_lerp, x0, x1, x_lerp)`` TF1 legacy bilinear over the gathered
            spectrum, or None when the resize is pure sampling (already in ``gather``).
    """

    def __init__(self, height: int, width: int, size_psc: int | None) -> None:
        self.height, self.width = height, width
        rows_y0, rows_y1, self.y_lerp = _axis_samples(height, size_psc)
        cols_x0, cols_x1, self.x_lerp = _axis_samples(width, size_psc)
        exact = bool((self.y_lerp == 0).all() and (self.x_lerp == 0).all())
        # shifted positions needed, then their frequencies (roll by -(n // 2))
        need_rows = rows_y0 if exact else np.unique(np.concatenate([rows_y0, rows_y1]))
        need_cols = cols_x0 if exact else np.unique(np.concatenate([cols_x0, cols_x1]))
        u = (need_rows + height // 2) % height
        v = (need_cols + width // 2) % width
        self.fold_rows, self.fold_cols = _fold(u, height), _fold(v, width)
        self.dft_height, self.dft_width = height // self.fold_rows, width // self.fold_cols
        rows, cols, self.gather = _half_spectrum(
            u // self.fold_rows, v // self.fold_cols, self.dft_height, self.dft_width)
        self.dft_row_freqs, self.dft_col_freqs = rows, cols
        self.row_freqs, self.col_freqs = rows * self.fold_rows, cols * self.fold_cols
        self.out_rows, self.out_cols = len(u), len(v)
        if exact:
            self.resize: tuple[np.ndarray, ...] | None = None
        else:
            self.resize = (
                np.searchsorted(need_rows, rows_y0),
                np.searchsorted(need_rows, rows_y1),
                self.y_lerp,
                np.searchsorted(need_cols, cols_x0),
                np.searchsorted(need_cols, cols_x1),
                self.x_lerp,
            )

    @property
    def macs_per_channel(self) -> int:
        """Multiply-accumulates of the two DFT products for one channel (after the fold)."""
        nu, nv = len(self.row_freqs), len(self.col_freqs)
        h, w = self.dft_height, self.dft_width
        return h * w * 2 * nv + 2 * nu * h * 2 * nv


def plan_spectrum(height: int, width: int, size_psc: int | None) -> SpectrumPlan:
    """Plan the frequencies and assembly steps of the FCA spectrum of a ``height × width`` input."""
    return SpectrumPlan(height, width, size_psc)


def fold_axis(x: Tensor, dim: int, fold: int, size: int) -> Tensor:
    """Sum the ``fold`` consecutive blocks of ``size`` along ``dim`` (adds of views)."""
    if fold == 1:
        return x
    blocks = [x.narrow(dim, j * size, size) for j in range(fold)]
    return sum(blocks[1:], start=blocks[0])


def _fold(freqs: np.ndarray, n: int) -> int:
    """Return the largest ``f`` dividing ``n`` that divides every frequency in ``freqs``."""
    return math.gcd(n, *(int(f) for f in freqs))


def _axis_samples(n: int, size_psc: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifted positions sampled along one axis: lower, upper, weight (identity when none)."""
    if size_psc is None or size_psc == n:
        idx = np.arange(n)
        return idx, idx, np.zeros(n, np.float32)
    lower, upper, lerp = legacy_bilinear_indices(n, size_psc)
    return lower.numpy(), upper.numpy(), lerp.numpy()


def _half_spectrum(
    u: np.ndarray, v: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Rows and columns to compute and the gather that assembles the ``len(u) × len(v)`` amplitude.

    Columns past ``width // 2`` come from their mirror ``(-u, -v)`` when that computes fewer
    multiply-accumulates than taking every needed column directly.
    """
    canon_v = np.where(v > width // 2, (width - v) % width, v)
    mirrored = canon_v != v
    half_cols = np.unique(canon_v)
    half_rows = np.unique(np.concatenate([u, -u % height])) if mirrored.any() else np.unique(u)
    full_rows, full_cols = np.unique(u), np.unique(v)

    def cost(nu: int, nv: int) -> int:
        return height * width * nv + nu * height * nv

    half_cost = cost(len(half_rows), len(half_cols))
    if mirrored.any() and half_cost < cost(len(full_rows), len(full_cols)):
        rows, cols = half_rows, half_cols
        row_of = np.where(mirrored[None, :], (-u[:, None]) % height, u[:, None])
        col_of = np.broadcast_to(canon_v[None, :], row_of.shape)
    else:
        rows, cols = full_rows, full_cols
        row_of = np.broadcast_to(u[:, None], (len(u), len(v)))
        col_of = np.broadcast_to(v[None, :], (len(u), len(v)))
    flat = np.searchsorted(rows, row_of) * len(cols) + np.searchsorted(cols, col_of)
    identity = flat.size == len(rows) * len(cols) and bool(
        (flat.ravel() == np.arange(flat.size)).all()
    )
    return rows, cols, None if identity else flat.ravel()


def _dft_matrix(n: int, freqs: np.ndarray, scale_n: int | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Return ``cos`` and ``sin`` of ``2π f k / n`` for frequencies ``f`` (rows), samples ``k``.

    Both scaled by 1/√scale_n (default n; float64).
    """
    k = np.arange(n)
    phase = 2 * np.pi * (np.outer(freqs, k) % n) / n  # exact integers before the division
    scale = 1 / math.sqrt(scale_n or n)
    return np.cos(phase) * scale, np.sin(phase) * scale


class MatmulDFTFCA(nn.Module):
    """:class:`~inference.models.fca.FCALayer` for a fixed ``height × width`` input, DFT by matmuls.

    Built from a trained FCA layer (its weights are copied, the first conv's kernel scaled by
    ``(HW)^(γ/2)``); the original is left untouched.
    """

    cols: Tensor
    rows: Tensor
    gather: Tensor | None
    y0: Tensor
    y1: Tensor
    x0: Tensor
    x1: Tensor
    y_lerp: Tensor
    x_lerp: Tensor

    def __init__(self, fca: FCALayer, height: int, width: int) -> None:
        super().__init__()
        self.gamma = fca.gamma
        self.height, self.width = height, width
        self.plan = plan = plan_spectrum(height, width, fca.size_psc)
        self.conv = copy.deepcopy(fca.conv)
        self.down = copy.deepcopy(fca.down)
        self.up = copy.deepcopy(fca.up)
        n = height * width
        with torch.no_grad():
            self.conv.weight.mul_(float(n) ** (fca.gamma / 2))
        self.eps = 1e-8 / math.sqrt(n)
        self.nu, self.nv = len(plan.row_freqs), len(plan.col_freqs)
        # on the folded grid, scaled by 1/√(H·W) of the input all the same
        cos_w, sin_w = _dft_matrix(plan.dft_width, plan.dft_col_freqs, width)
        cos_h, sin_h = _dft_matrix(plan.dft_height, plan.dft_row_freqs, height)
        # x @ cols -> [x·cos | x·sin]; rows @ y -> [cos·y ; sin·y]
        self.register_buffer("cols", _f32(np.concatenate([cos_w, sin_w]).T))
        self.register_buffer("rows", _f32(np.concatenate([cos_h, sin_h])))
        gather = plan.gather
        self.register_buffer("gather", None if gather is None else torch.from_numpy(gather))
        self.resizes = plan.resize is not None
        if plan.resize is not None:
            y0, y1, yl, x0, x1, xl = plan.resize
            self.register_buffer("y0", torch.from_numpy(y0.astype(np.int64)))
            self.register_buffer("y1", torch.from_numpy(y1.astype(np.int64)))
            self.register_buffer("x0", torch.from_numpy(x0.astype(np.int64)))
            self.register_buffer("x1", torch.from_numpy(x1.astype(np.int64)))
            self._lerp = (yl.astype(np.float32)[:, None], xl.astype(np.float32))
            self.register_buffer("y_lerp", torch.from_numpy(self._lerp[0]), persistent=False)
            self.register_buffer("x_lerp", torch.from_numpy(self._lerp[1]), persistent=False)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> MatmulDFTFCA:
        """Apply ``fn`` as :meth:`nn.Module._apply`, but keep the resize weights float32.

        The spectrum is resized in float32 whatever the model's precision.
        """
        module = super()._apply(fn, recurse)
        if self.resizes:
            self.y_lerp = torch.from_numpy(self._lerp[0]).to(self.y0.device)
            self.x_lerp = torch.from_numpy(self._lerp[1]).to(self.y0.device)
        return module

    def spectrum(self, x: Tensor) -> Tensor:
        """Compute the FCA amplitude spectrum of ``x`` by two matrix products.

        ``fftshift((|FFT2(x)| + 1e-8)^γ)`` at the sampled frequencies, divided by
        ``(HW)^(γ/2)``, resized, float32 ``(N, C, out_rows, out_cols)``.
        """
        if x.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"this FCA was built for {self.height}×{self.width} inputs, got "
                f"{x.shape[-2]}×{x.shape[-1]}"
            )
        plan = self.plan
        x = fold_axis(fold_axis(x, -2, plan.fold_rows, plan.dft_height),
                      -1, plan.fold_cols, plan.dft_width)
        y = torch.matmul(x, self.cols.to(x.dtype))  # (N, C, H, 2nv)
        z = torch.matmul(self.rows.to(x.dtype), y)  # (N, C, 2nu, 2nv)
        nu, nv = self.nu, self.nv
        cr, ci = z[..., :nu, :nv].float(), z[..., :nu, nv:].float()
        sr, si = z[..., nu:, :nv].float(), z[..., nu:, nv:].float()
        re, im = cr - si, ci + sr
        amp = torch.pow(torch.sqrt(re * re + im * im) + self.eps, self.gamma)
        if self.gather is not None:
            flat = amp.reshape(*amp.shape[:-2], nu * nv)
            amp = flat.index_select(-1, self.gather).reshape(
                *amp.shape[:-2], self.plan.out_rows, self.plan.out_cols
            )
        if self.resizes:
            left, right = amp.index_select(-1, self.x0), amp.index_select(-1, self.x1)
            cols = left + (right - left) * self.x_lerp
            top, bottom = cols.index_select(-2, self.y0), cols.index_select(-2, self.y1)
            amp = top + (bottom - top) * self.y_lerp
        return amp

    def attention(self, x: Tensor) -> Tensor:
        """Return each channel's attention weight (from its spectrum), ``(N, C, 1, 1)``."""
        spectrum = self.spectrum(x).to(x.dtype)
        weights = torch.relu(self.conv(spectrum)).mean(dim=(-2, -1), keepdim=True)
        return torch.sigmoid(self.up(torch.relu(self.down(weights))))

    def forward(self, x: Tensor) -> Tensor:
        """Scale the channels of ``x`` by attention weights from its spectrum (same shape)."""
        return x * self.attention(x)


def _f32(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def with_matmul_dft(model: nn.Module, height: int, width: int) -> nn.Module:
    """Copy ``model`` (a DFCAN or DFGAN generator), making every FCA layer a :class:`MatmulDFTFCA`.

    The FCA layers of the copy are built for ``height × width`` inputs. ``model`` is left
    unchanged.
    """
    if height < 1 or width < 1:
        raise ValueError(f"input size must be positive, got {height}×{width}")
    result = copy.deepcopy(model)
    for parent in list(result.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FCALayer):
                setattr(parent, name, MatmulDFTFCA(child, height, width))
    return result
