"""Shared pieces of the acquisition tests: small demo microscopes, tiny DFCANs, protocol files."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

from faulty_devices import demo_cfg_variant

_benches = itertools.count()


def small_cfg(folder: Path, sensor: int = 64) -> Path:
    """A copy of the demo ``.cfg`` with a small sensor and a bench of its own."""
    path = folder / f"small{sensor}.cfg"
    demo_cfg_variant(path, f"acq-test-{next(_benches)}-{folder.name}", sensor=sensor)
    return path


def tiny_dfcan(path: Path, in_channels: int = 9, scale: int = 2) -> Path:
    """An untrained one-block DFCAN saved as ``.safetensors`` (fast on a CPU)."""
    import torch

    from inference.dfcan import DFCAN, DFCANConfig
    from inference.weights import save_weights

    torch.manual_seed(0)
    config = DFCANConfig(in_channels=in_channels, scale=scale, n_groups=1, n_blocks=1,
                         features=16, reduction=4, size_psc=None)
    return save_weights(DFCAN(config), path)


def write_protocol(folder: Path, text: str, name: str = "protocol.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path
