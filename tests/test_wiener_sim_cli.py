"""``livesr reconstruct`` end to end on a simulated set and on noise."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tifffile

from acquisition.cli import main
from simulators import simulate

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_reconstruct_writes_the_image_and_prints_the_estimates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = simulate("microtubules", "tirf-sim", photons=500, size=128, seed=0).raw
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    out = tmp_path / "sim.tif"
    assert main(["reconstruct", "--input", str(tmp_path / "raw.tif"), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("confidence") >= 3 and "orientation 2: k 5.1" in printed
    image = tifffile.imread(out)
    assert image.shape == (256, 256) and image.dtype == np.float32 and image.max() == 1.0


def test_reconstruct_refuses_noise_plainly(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    noise = np.random.default_rng(0).poisson(5.0, (9, 128, 128)).astype(np.uint16) + 100
    np.save(tmp_path / "noise.npy", noise)
    code = main(["reconstruct", "--input", str(tmp_path / "noise.npy"),
                 "--output", str(tmp_path / "out.tif")])
    assert code == 2
    assert "not reconstructed" in capsys.readouterr().err
    assert not (tmp_path / "out.tif").exists()


def test_reconstruct_refuses_a_wrong_frame_count(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "five.npy", np.zeros((5, 64, 64), np.uint16))
    code = main(["reconstruct", "--input", str(tmp_path / "five.npy"),
                 "--output", str(tmp_path / "out.tif")])
    assert code == 2 and "9 frames" in capsys.readouterr().err
