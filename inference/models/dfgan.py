"""DFGAN: a DFCAN generator (5 groups × 10 FCABs, γ 0.1) and the official discriminator."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from inference.models.dfcan import DFCAN, DFCANConfig, keras_init_

__all__ = ["Discriminator", "DiscriminatorConfig", "Generator", "generator_config"]


def generator_config(
    in_channels: int = 1, scale: int = 2, size_psc: int | None = 128
) -> DFCANConfig:
    """Return the architecture of the official ``DFGAN50.Generator``."""
    return DFCANConfig(
        in_channels=in_channels, scale=scale, gamma=0.1, size_psc=size_psc, n_groups=5, n_blocks=10
    )


def Generator(in_channels: int = 1, scale: int = 2, size_psc: int | None = 128) -> DFCAN:
    """DFGAN's generator: a DFCAN with 5 residual groups of 10 FCABs and γ = 0.1."""
    return DFCAN(generator_config(in_channels, scale, size_psc))


class DiscriminatorConfig(BaseModel):
    """Architecture of the discriminator (defaults: the official one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_channels: int = Field(default=1, ge=1)
    widths: tuple[int, ...] = Field(
        default=(32, 64, 128, 256, 512), min_length=1,
        description="channels of the conv blocks; the first conv has widths[0]")
    stride: int = Field(
        default=1, ge=1, le=2,
        description="stride of each block's second conv (1: official; 2 halves the image per "
                    "block, for CPUs)")


def _conv_block(in_channels: int, channel_size: tuple[int, int],
                stride: int = 1) -> list[nn.Module]:
    """Build the official ``conv_block2d``: two conv3×3 + LeakyReLU(0.1) (no stride officially)."""
    a, b = channel_size
    return [
        nn.Conv2d(in_channels, a, kernel_size=3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(a, b, kernel_size=3, padding=1, stride=stride),
        nn.LeakyReLU(0.1),
    ]


class Discriminator(nn.Module):
    """The official DFGAN discriminator (``DFGAN50.Discriminator``).

    conv3×3(32) + LeakyReLU(0.1), conv blocks at 32, 64, 128, 256, 512 (no strides), global mean,
    Dense 256 + LeakyReLU(0.1), Dense 1 + sigmoid; ``widths`` and ``stride`` make it smaller.
    ``(N, in_channels, H, W)`` → ``(N, 1)``.
    """

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else DiscriminatorConfig()
        cfg = self.config
        first = cfg.widths[0]
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, first, kernel_size=3, padding=1)]
        layers.append(nn.LeakyReLU(0.1))
        previous = first
        for width in cfg.widths:
            layers += _conv_block(previous, (width, width), cfg.stride)
            previous = width
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(previous, 256)
        self.act = nn.LeakyReLU(0.1)
        self.classifier = nn.Linear(256, 1)
        keras_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(N, in_channels, H, W)`` to one sigmoid score per image, ``(N, 1)``."""
        y = self.features(x).mean(dim=(-2, -1))
        return self.classifier(self.act(self.dense(y))).sigmoid()
