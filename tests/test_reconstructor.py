"""The Reconstructor interface and its reference DFCAN implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.models.dfcan import DFCAN, DFCANConfig
from inference.reconstructor import DFCANReconstructor, Reconstructor, check_frames


def _model(in_channels: int) -> DFCAN:
    torch.manual_seed(0)
    config = DFCANConfig(in_channels=in_channels, n_groups=1, n_blocks=1, features=16,
                         reduction=8, size_psc=None)
    return DFCAN(config)


def test_sisr_reconstructor_averages_a_set_and_upsamples() -> None:
    recon = DFCANReconstructor(_model(1))
    assert isinstance(recon, Reconstructor)
    assert (recon.name, recon.scale, recon.frames_per_set) == ("dfcan-sisr", 2, None)
    out = recon.reconstruct(np.random.default_rng(0).integers(100, 900, (9, 32, 32)))
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() > 0.5


def test_sim_reconstructor_refuses_a_wrong_frame_count() -> None:
    recon = DFCANReconstructor(_model(9))
    assert recon.frames_per_set == 9
    with pytest.raises(ValueError, match="needs 9 raw frames per set, got 3"):
        recon.reconstruct(np.zeros((3, 32, 32), np.uint16))


def test_check_frames_accepts_one_image_and_refuses_4d() -> None:
    assert check_frames(np.zeros((8, 8)), 1, "x").shape == (1, 8, 8)
    with pytest.raises(ValueError, match="expected frames"):
        check_frames(np.zeros((1, 2, 8, 8)), None, "x")
