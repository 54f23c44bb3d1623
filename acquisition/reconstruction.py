"""The reconstructor of each protocol channel: DFCAN on the chosen backend, Wiener-SIM, none."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, cast

from acquisition.protocol import ChannelSpec, Protocol
from inference.reconstructor import Reconstructor

__all__ = ["build_reconstructor", "file_sha256"]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_reconstructor(
    protocol: Protocol, channel: ChannelSpec, shape: tuple[int, int] | None
) -> tuple[Reconstructor, dict[str, Any]] | None:
    """The channel's reconstructor and its metadata (method, model, weights hash, backend,
    scale), or ``None`` for ``method: none``. ``shape``: build the backend for it now."""
    rec = channel.reconstruction
    if rec.method == "none":
        return None
    if rec.method == "wiener-sim":
        try:
            from inference.sim.reconstructor import WienerSIMReconstructor
        except ImportError:
            raise ValueError("wiener-sim is not available in this installation") from None
        wiener = WienerSIMReconstructor(frames_per_set=protocol.frames_per_set, backend="auto")
        info = {"method": "wiener-sim", "model": "wiener-sim", "scale": wiener.scale,
                "backend": type(wiener.backend).__name__}
        return cast(Reconstructor, wiener), info
    from inference.backends import create_backend
    from inference.dfcan import DFCAN
    from inference.weights import load_model

    assert rec.weights is not None  # the protocol model demands it
    path = protocol.resolve(rec.weights)
    model = load_model(path)
    if not isinstance(model, DFCAN):
        raise ValueError(f"{path}: a {type(model).__name__}, not a DFCAN")
    backend = create_backend(protocol.inference.backend, model, device=protocol.inference.device,
                             shape=shape)
    config = model.config
    info = {"method": "dfcan", "model": f"dfcan-{'sisr' if config.in_channels == 1 else 'sim'}",
            "weights": path.name, "weights_sha256": file_sha256(path),
            "scale": int(config.scale), "in_channels": int(config.in_channels),
            "backend": backend.description}
    return cast(Reconstructor, backend), info
