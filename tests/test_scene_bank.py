"""The scene bank: cells rendered once with their own patterns, crops recorded afresh, the
trainer on it (cosine schedule, bf16 on the CPU, fine-tuning) with an exact resume.
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from inference.models.weights import load_model, save_weights
from inference.training.bank import BankSampler, build_bank, validation_pairs
from inference.training.config import SceneBankData, parse_config
from inference.training.runs import resume_run, trainer_class
from inference.training.trainer import Trainer
from simulators.optics import Optics

SMALL = SceneBankData(image_size=64, train_cells=4, val_cells=1, val_photon_levels=(20, 200))


def tiny_bank_config(tmp_path: Path, input_kind: str = "sim", **optim: Any) -> Any:
    return parse_config({
        "name": "bank", "output_dir": str(tmp_path / "runs"),
        "model": {"in_channels": 9 if input_kind == "sim" else 1, "features": 8, "n_groups": 1,
                  "n_blocks": 1, "reduction": 4, "size_psc": 32},
        "data": {**SMALL.model_dump(mode="json"), "input_kind": input_kind,
                 "bank": str(tmp_path / "bank")},
        "optim": {"iterations": 8, "patch_size": 32, "val_every": 4, "lr": 1e-3,
                  "num_threads": 1, "schedule": "cosine", "warmup": 2, **optim},
    })


def test_bank_is_rendered_once_and_reused(tmp_path: Path) -> None:
    first = build_bank(SMALL, 0, 4, tmp_path / "b")
    stamp = (tmp_path / "b" / "raw.npy").stat().st_mtime_ns
    again = build_bank(SMALL, 0, 4, tmp_path / "b")
    assert (tmp_path / "b" / "raw.npy").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first.raw, again.raw)
    assert first.raw.shape == (4, 9, 64, 64) and first.gt.shape == (4, 128, 128)
    other = build_bank(SMALL.model_copy(update={"modulation": (0.9, 0.9)}), 0, 4, tmp_path / "b")
    assert not np.array_equal(other.raw, first.raw)
    assert [c["modulation"] for c in other.cells] == [0.9] * 4


def test_every_cell_has_its_own_pattern_and_one_target_resolution(tmp_path: Path) -> None:
    bank = build_bank(SMALL, 0, 4, tmp_path / "b")
    kc = Optics().cutoff_per_nm * 1e3
    freqs = [c["frequency_per_um"] / kc for c in bank.cells]
    assert all(0.85 <= f <= 1.05 for f in freqs) and len(set(freqs)) == 4
    assert len({round(c["angles_rad"][0], 6) for c in bank.cells}) == 4
    assert all(0.5 <= c["modulation"] <= 0.95 for c in bank.cells)
    assert [c["structure"] for c in bank.cells] == ["ccp", "er", "microtubules", "factin"]
    # the target's spectrum ends at k_c·1.9 whatever the pattern's frequency
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(bank.gt[1])))
    k = np.hypot(*np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(128, 31.3e-3)),) * 2))
    assert spectrum[k > 1.95 * kc].max() < 1e-6 * spectrum.max()
    assert spectrum[(k > 1.6 * kc) & (k < 1.8 * kc)].max() > 1e-4 * spectrum.max()


def test_crops_are_reproducible_normalised_and_at_many_doses(tmp_path: Path) -> None:
    bank = build_bank(SMALL, 0, 4, tmp_path / "b")
    sampler = BankSampler(bank, SMALL, 32)
    x, y = sampler.batch(np.random.default_rng(3), 6)
    x2, y2 = sampler.batch(np.random.default_rng(3), 6)
    assert x.shape == (6, 9, 32, 32) and y.shape == (6, 1, 64, 64)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert float(x.amin()) == 0.0 and float(x.amax()) == 1.0
    # the relative shot noise of the WF crop falls with the dose drawn for it
    wf = BankSampler(bank, SMALL.model_copy(update={"input_kind": "wf"}), 32)
    assert wf.in_channels == 1
    low = SMALL.model_copy(update={"photons": (12.0, 12.0)})
    high = SMALL.model_copy(update={"photons": (600.0, 600.0)})
    noise = []
    for data in (low, high):
        s = BankSampler(bank, data, 32)
        x, _ = s.batch(np.random.default_rng(0), 8)
        noise.append(float((x[:, :, 1:] - x[:, :, :-1]).std()))
    assert noise[0] > 1.5 * noise[1]


def test_pattern_order_is_shuffled_but_grouped_by_orientation(tmp_path: Path) -> None:
    bank = build_bank(SMALL, 0, 4, tmp_path / "b")
    sampler = BankSampler(bank, SMALL, 32)
    frames = np.arange(9, dtype=np.float32)[:, None, None] * np.ones((9, 2, 2), np.float32)
    orders, phase_orders = set(), set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        ids = sampler._reorder(frames, rng)[:, 0, 0].astype(int).reshape(3, 3)
        orientation = ids // 3
        assert (orientation == orientation[:, :1]).all()  # each group is one orientation
        assert sorted(orientation[:, 0]) == [0, 1, 2]
        phase_orders.add(tuple(ids[0] % 3))
        orders.add(tuple(orientation[:, 0]))
    assert orders == set(permutations(range(3)))
    assert phase_orders == {(0, 1, 2), (0, 2, 1)}
    fixed = BankSampler(bank, SMALL.model_copy(update={"shuffle_pattern_order": False}), 32)
    np.testing.assert_array_equal(fixed._reorder(frames, rng), frames)


def test_validation_pairs_are_fixed(tmp_path: Path) -> None:
    bank = build_bank(SMALL, 1, 1, tmp_path / "v")
    a, b = validation_pairs(bank, SMALL), validation_pairs(bank, SMALL)
    assert [p.photons for p in a] == [20.0, 200.0]
    np.testing.assert_array_equal(a[0].input, b[0].input)
    assert a[0].input.shape == (9, 64, 64)


def test_bad_ranges_are_refused_with_the_field() -> None:
    raw = tiny_bank_config(Path("/nonexistent")).model_dump(mode="json")
    raw["data"]["photons"] = [500, 20]
    with pytest.raises(ValueError, match=r"data.*photons.*above the upper end"):
        parse_config(raw)


def test_training_on_the_bank_resumes_exactly(tmp_path: Path) -> None:
    config = tiny_bank_config(tmp_path, amp_cpu=True)
    straight = Trainer(config, tmp_path / "straight", progress=False).fit()
    assert straight.step == 8 and straight.history["val_step"] == [4, 8]
    lrs = straight.history["lr"]
    assert lrs[0] < 1e-3 and lrs[-1] == pytest.approx(1e-6)  # cosine down to min_lr
    first = Trainer(config, tmp_path / "split", progress=False, stop_after=5).fit()
    assert first.step == 5
    resumed = resume_run(tmp_path / "split", progress=False)
    assert resumed.history["loss"] == straight.history["loss"]
    assert resumed.history["val_nrmse"] == straight.history["val_nrmse"]


def test_fine_tuning_starts_from_the_given_weights(tmp_path: Path) -> None:
    config = tiny_bank_config(tmp_path, input_kind="wf", iterations=1)
    source = Trainer(config, tmp_path / "a", progress=False)
    torch.nn.init.constant_(source.net.out.bias, 0.25)
    save_weights(source.net, tmp_path / "start.safetensors")
    tuned = parse_config({**config.model_dump(mode="json"),
                          "init_weights": str(tmp_path / "start.safetensors")})
    trainer = Trainer(tuned, tmp_path / "b", progress=False)
    assert float(trainer.net.out.bias.detach()) == 0.25
    trainer.fit()
    assert load_model(tmp_path / "b" / "last.safetensors").config == config.model


def test_cosine_schedule_shape(tmp_path: Path) -> None:
    config = tiny_bank_config(tmp_path, iterations=102, warmup=2, min_lr=1e-5)
    trainer = Trainer(config, tmp_path / "c", progress=False)
    factors = [trainer._cosine_factor(s) for s in (0, 1, 2, 52, 102, 500)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[3] == pytest.approx(0.5 + 0.5 * 0.01, rel=1e-6)
    assert factors[4] == factors[5] == pytest.approx(0.01)


def test_data_workers_draw_the_same_batches(tmp_path: Path) -> None:
    """Batches drawn ahead by worker processes are the ones the loop would draw (DFGAN's
    discriminator batches included).
    """
    config = tiny_bank_config(tmp_path, iterations=4, val_every=4)
    gan = parse_config({**config.model_dump(mode="json"),
                        "gan": {"discriminator_widths": [4, 8], "discriminator_stride": 2}})
    for base in (config, gan):
        histories = []
        for workers in (0, 2):
            run = parse_config({**base.model_dump(mode="json"),
                                "optim": {**base.optim.model_dump(mode="json"),
                                          "data_workers": workers}})
            result = trainer_class(run)(run, tmp_path / f"w{workers}{base.gan is None}",
                                        progress=False).fit()
            histories.append((result.history["loss"], result.history.get("d_loss")))
        assert histories[0] == histories[1]
