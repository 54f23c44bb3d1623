"""The reconstructor of each protocol channel, made by the one registry.

The registry is :func:`inference.registry.build_reconstructor`: DFCAN on the chosen backend,
Wiener-SIM, none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference.registry import build_reconstructor, file_sha256

if TYPE_CHECKING:
    from acquisition.protocol import ChannelSpec, Protocol
    from inference.reconstructor import Reconstructor

__all__ = ["channel_reconstructor", "file_sha256"]


def channel_reconstructor(
    protocol: Protocol, channel: ChannelSpec, shape: tuple[int, int] | None
) -> tuple[Reconstructor, dict[str, Any]] | None:
    """Build the channel's reconstructor and its metadata, or ``None`` for ``method: none``.

    The metadata holds the method, model, weights hash, backend and scale. ``shape``: build the
    backend for it now.
    """
    rec = channel.reconstruction
    if rec.method == "none":
        return None
    weights = protocol.resolve(rec.weights) if rec.weights is not None else None
    pattern = protocol.resolve(rec.calibration) if rec.calibration is not None else None
    built = build_reconstructor(
        rec.method, weights=weights, backend=protocol.inference.backend,
        device=protocol.inference.device, shape=shape, frames_per_set=protocol.frames_per_set,
        pattern=pattern)
    return built.reconstructor, built.info
