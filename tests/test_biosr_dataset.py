"""The BioSR-layout reader and TIFF folder pairs, on fixtures written here in those layouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mrcfile
import numpy as np
import pytest
import tifffile

from inference.training.biosr import biosr_pairs, find_biosr
from inference.training.config import BioSRData, TiffPairsData
from inference.training.patches import PatchSampler
from inference.training.tiff_pairs import tiff_pairs
from simulators.render import simulate

if TYPE_CHECKING:
    from pathlib import Path

SIZE = 48


def _write_mrc(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)


def _cell(seed: int, photons: float) -> tuple[np.ndarray, np.ndarray]:
    recorded = simulate("ccp", "tirf-sim", photons, SIZE, seed)
    gt = np.clip(recorded.gt / recorded.gt.max() * 65535, 0, 65535).astype(np.uint16)
    return recorded.raw, gt


@pytest.fixture(scope="module")
def biosr_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``CCPs``: 3 cells, levels 1–2, flat layout; ``ER``: 2 cells with per-level GT."""
    root = tmp_path_factory.mktemp("BioSR")
    for cell in (1, 2, 3):
        folder = root / "CCPs" / f"Cell_{cell:03d}"
        for level, photons in ((1, 20.0), (2, 200.0)):
            raw, gt = _cell(cell, photons)
            _write_mrc(folder / f"RawSIMData_level_{level:02d}.mrc", raw)
        _write_mrc(folder / "SIM_gt.mrc", gt[None])
        _write_mrc(folder / "RawSIMData_gt.mrc", raw)
    (root / "CCPs" / "Readme.txt").write_text("not a cell")
    for cell in (1, 2):
        folder = root / "ER" / f"Cell_{cell:03d}"
        for level in (1, 2, 3):
            raw, gt = _cell(10 + cell, 30.0 * level)
            _write_mrc(folder / "RawSIMData" / f"RawSIMData_level_{level:02d}.mrc", raw)
            _write_mrc(folder / "GTSIM" / f"GTSIM_level_{level:02d}.mrc", gt)
    return root


def test_finds_every_cell_and_level(biosr_root: Path) -> None:
    items = find_biosr(biosr_root, ("CCPs", "ER"))
    assert [(i.structure, i.cell, i.level) for i in items] == [
        ("CCPs", 1, 1), ("CCPs", 1, 2), ("CCPs", 2, 1), ("CCPs", 2, 2), ("CCPs", 3, 1),
        ("CCPs", 3, 2), ("ER", 1, 1), ("ER", 1, 2), ("ER", 1, 3), ("ER", 2, 1), ("ER", 2, 2),
        ("ER", 2, 3)]
    assert items[0].gt.name == "SIM_gt.mrc"
    assert items[-1].gt.name == "GTSIM_level_03.mrc"
    assert len(find_biosr(biosr_root, ("CCPs", "ER"), levels=(2,))) == 5


def test_pairs_split_by_cell(biosr_root: Path) -> None:
    data = BioSRData(root=biosr_root, structures=("CCPs", "ER"), input_kind="sim", val_cells=1)
    train, val = biosr_pairs(data)
    assert {p.group for p in val} == {"CCPs/Cell_003", "ER/Cell_002"}
    assert not {p.group for p in train} & {p.group for p in val}
    assert len(train) == 2 * 2 + 3 and len(val) == 2 + 3
    pair = train[0]
    assert pair.input.shape == (9, SIZE, SIZE) and pair.target.shape == (2 * SIZE, 2 * SIZE)
    raw = mrcfile.read(biosr_root / "CCPs" / "Cell_001" / "RawSIMData_level_01.mrc")
    np.testing.assert_array_equal(pair.input, raw)

    wf_train, _ = biosr_pairs(data.model_copy(update={"input_kind": "wf"}))
    np.testing.assert_allclose(wf_train[0].input[0], raw.astype(np.float32).mean(axis=0))
    sampler = PatchSampler(wf_train, patch_size=32)
    x, y = sampler.batch(np.random.default_rng(0), 3)
    assert x.shape == (3, 1, 32, 32) and y.shape == (3, 1, 64, 64)
    assert float(x.min()) == 0.0 and float(x.max()) == pytest.approx(1.0)


def test_bad_layouts_are_reported(biosr_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Microtubules.*found: \['CCPs', 'ER'\]"):
        find_biosr(biosr_root, ("Microtubules",))
    with pytest.raises(FileNotFoundError, match=r"at levels \[7\]"):
        find_biosr(biosr_root, ("CCPs",), levels=(7,))
    with pytest.raises(ValueError, match="need more than val_cells = 2"):
        biosr_pairs(BioSRData(root=biosr_root, structures=("ER",), val_cells=2))
    broken = tmp_path / "CCPs" / "Cell_001"
    raw, _ = _cell(1, 50.0)
    _write_mrc(broken / "RawSIMData_level_01.mrc", raw)
    with pytest.raises(FileNotFoundError, match="no ground truth"):
        find_biosr(tmp_path, ("CCPs",))


def test_tiff_folder_pairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    (tmp_path / "gt").mkdir()
    for name in ("a", "b", "c", "d"):
        tifffile.imwrite(tmp_path / "in" / f"{name}.tif",
                         rng.integers(0, 999, (9, 40, 40), dtype=np.uint16))
        tifffile.imwrite(tmp_path / "gt" / f"{name}.tif", rng.random((80, 80), np.float32))
    train, val = tiff_pairs(TiffPairsData(inputs=tmp_path / "in", targets=tmp_path / "gt",
                                          val_fraction=0.25))
    assert [p.group for p in train] == ["a", "b", "c"] and [p.group for p in val] == ["d"]
    assert train[0].input.shape == (9, 40, 40) and train[0].scale == 2
    (tmp_path / "gt" / "d.tif").unlink()
    with pytest.raises(FileNotFoundError, match="no target for d"):
        tiff_pairs(TiffPairsData(inputs=tmp_path / "in", targets=tmp_path / "gt"))
