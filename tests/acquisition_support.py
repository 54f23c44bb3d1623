"""Shared pieces of the acquisition tests: small demo microscopes, tiny DFCANs, protocol files."""

from __future__ import annotations

import itertools
import textwrap
from typing import TYPE_CHECKING

from faulty_devices import demo_cfg_variant

if TYPE_CHECKING:
    from pathlib import Path

_benches = itertools.count()


def small_cfg(folder: Path, sensor: int = 64) -> Path:
    """A copy of the demo ``.cfg`` with a small sensor and a bench of its own."""
    path = folder / f"small{sensor}.cfg"
    demo_cfg_variant(path, f"acq-test-{next(_benches)}-{folder.name}", sensor=sensor)
    return path


def tiny_dfcan(path: Path, in_channels: int = 9, scale: int = 2) -> Path:
    """An untrained one-block DFCAN saved as ``.safetensors`` (fast on a CPU)."""
    import torch

    from inference.models.dfcan import DFCAN, DFCANConfig
    from inference.models.weights import save_weights

    torch.manual_seed(0)
    config = DFCANConfig(in_channels=in_channels, scale=scale, n_groups=1, n_blocks=1,
                         features=16, reduction=4, size_psc=None)
    return save_weights(DFCAN(config), path)


def write_protocol(folder: Path, text: str, name: str = "protocol.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def one_channel_protocol(folder: Path, reconstruction: str, mode: str = "tirf-sim") -> Path:
    """A 488 nm protocol on the demo microscope (64² ROI) with the given ``reconstruction``
    mapping (YAML flow text).
    """
    return write_protocol(folder, f"""
        microscope: {{config: demo, roi: 64}}
        mode: {mode}
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 10,
              reconstruction: {reconstruction}}}
        output: out
        """)


def two_channel_sim_protocol(folder: Path, sensor: int, timelapse: str, save: str) -> Path:
    """A TIRF-SIM protocol on a small demo microscope: 488 reconstructed by a tiny DFCAN, 560
    raw only, with the given ``timelapse`` and ``save`` mappings (YAML flow text).
    """
    cfg = small_cfg(folder, sensor)
    tiny_dfcan(folder / "tiny_sim.safetensors", in_channels=9)
    return write_protocol(folder, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 2,
              reconstruction: {{method: dfcan, weights: tiny_sim.safetensors}}}}
          - {{preset: "560", power_mw: 20, exposure_ms: 2}}
        timelapse: {timelapse}
        save: {save}
        output: run
        inference: {{backend: torch, device: cpu}}
        """)
