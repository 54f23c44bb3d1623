"""DFCAN, the deep Fourier channel attention network (Qiao et al., Nat. Methods 2021).

A port of the official ``DFCAN16.py`` / ``DFGAN50.py`` (qc17-THU/DL-SR). Modules are registered in
the order Keras creates its layers, so that weights map by order
(see :mod:`inference.models.weights`).
The tail upsamples with TensorFlow's ``depth_to_space`` order, so the tail conv's kernel keeps
the official layout in our own files too.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor, nn

from inference.models.depth_to_space import DepthToSpace
from inference.models.fca import FCALayer
from yamlconfig.located import FieldError

__all__ = ["DFCAN", "FCAB", "DFCANConfig", "ResidualGroup", "keras_init_"]


class DFCANConfig(BaseModel):
    """Architecture of a DFCAN (defaults: the official DFCAN16, SISR, 2×)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_channels: int = Field(
        default=1, ge=1, description="1 (WF image) or the raw SIM frames (9, 25)"
    )
    scale: int = Field(default=2, ge=1, le=8, description="upsampling factor")
    gamma: float = Field(default=0.8, gt=0, description="exponent of the amplitude spectrum")
    size_psc: int | None = Field(
        default=128, ge=1, description="side of the resized spectrum; None: none"
    )
    n_groups: int = Field(default=4, ge=1, description="residual groups")
    n_blocks: int = Field(default=4, ge=1, description="FCABs per residual group")
    features: int = Field(default=64, ge=1, description="feature channels")
    reduction: int = Field(
        default=16, ge=1, description="channel reduction in the attention bottleneck"
    )

    @model_validator(mode="after")
    def _check_reduction(self) -> DFCANConfig:
        if self.features % self.reduction:
            raise FieldError(
                "reduction",
                f"features ({self.features}) must be a multiple of reduction ({self.reduction})")
        return self


def keras_init_(module: nn.Module) -> nn.Module:
    """Apply Keras' default initialisation, as in the official training; return ``module``.

    Glorot-uniform kernels of every conv and dense layer, zero biases.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class FCAB(nn.Module):
    """Fourier channel attention block: conv3×3 → GELU → conv3×3 → GELU → FCA, plus the input."""

    def __init__(
        self, channel: int = 64, reduction: int = 16, size_psc: int | None = 128, gamma: float = 0.8
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channel, channel, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channel, channel, kernel_size=3, padding=1)
        self.gelu = nn.GELU()
        self.fca = FCALayer(channel, reduction, size_psc, gamma)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x`` plus its channel-attended conv features (same shape)."""
        y = self.gelu(self.conv2(self.gelu(self.conv1(x))))
        return self.fca(y) + x


class ResidualGroup(nn.Module):
    """``n_RCAB`` FCABs in a row with a long skip connection."""

    def __init__(
        self,
        channel: int = 64,
        n_RCAB: int = 4,  # the official name
        reduction: int = 16,
        size_psc: int | None = 128,
        gamma: float = 0.8,
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(FCAB(channel, reduction, size_psc, gamma) for _ in range(n_RCAB))
        )

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x`` plus the output of the FCABs (same shape)."""
        return self.blocks(x) + x


class DFCAN(nn.Module):
    """Head conv + GELU, residual groups, tail conv + GELU, ``depth_to_space``, conv, sigmoid.

    Input ``(N, in_channels, H, W)``, output ``(N, 1, H·scale, W·scale)`` in (0, 1).
    """

    def __init__(self, config: DFCANConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else DFCANConfig()
        f = cfg.features
        self.head = nn.Conv2d(cfg.in_channels, f, kernel_size=3, padding=1)
        self.gelu = nn.GELU()
        self.groups = nn.Sequential(
            *(
                ResidualGroup(f, cfg.n_blocks, cfg.reduction, cfg.size_psc, cfg.gamma)
                for _ in range(cfg.n_groups)
            )
        )
        self.tail = nn.Conv2d(f, f * cfg.scale**2, kernel_size=3, padding=1)
        self.upsample = DepthToSpace(cfg.scale)
        self.out = nn.Conv2d(f, 1, kernel_size=3, padding=1)
        keras_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, 1, H·scale, W·scale)`` in (0, 1)."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"DFCAN expects (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}"
            )
        y = self.gelu(self.head(x))
        y = self.groups(y)
        y = self.upsample(self.gelu(self.tail(y)))
        return torch.sigmoid(self.out(y))
