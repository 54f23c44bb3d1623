"""The trainer: a tiny CPU run learns, a resume really resumes, a killed run comes back."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import torch
import yaml

from acquisition.cli import main as livesr
from inference.models.weights import load_model
from inference.training.config import load_config, parse_config
from inference.training.runs import resume_run
from inference.training.trainer import CHECKPOINT, Trainer

if TYPE_CHECKING:
    from pathlib import Path

TINY: dict[str, Any] = {
    "name": "tiny",
    "model": {"in_channels": 1, "features": 8, "n_groups": 1, "n_blocks": 1, "reduction": 4,
              "size_psc": 32},
    "data": {"kind": "simulated", "image_size": 64, "train_samples": 2, "val_samples": 1,
             "photon_levels": [60, 300], "structures": ["microtubules", "ccp"]},
    "optim": {"iterations": 40, "patch_size": 32, "val_every": 20, "lr": 1e-3,
              "num_threads": 1},
}


def tiny_config(tmp_path: Path, **optim: Any) -> Any:
    raw = {**TINY, "output_dir": str(tmp_path / "runs"),
           "data": {**TINY["data"], "cache": str(tmp_path / "pool.npz")},
           "optim": {**TINY["optim"], **optim}}
    return parse_config(raw)


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, "optim": {"lr": -1, "batch_size": 0}}))
    with pytest.raises(ValueError, match=r"(?s)bad\.yaml:\d+:\d+: optim\.batch_size.*optim\.lr"):
        load_config(path)
    path.write_text(yaml.safe_dump({**TINY, "data": {"kind": "simulated", "input_kind": "sim"}}))
    with pytest.raises(ValueError, match="in_channels"):
        load_config(path)


def test_tiny_run_lowers_the_validation_loss(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(tmp_path), progress=False)
    trainer.prepare_data()
    loss_before, nrmse_before = trainer.validate()
    result = trainer.fit()
    assert result.step == 40
    assert result.history["val_step"] == [20, 40]
    assert result.history["val_loss"][-1] < 0.9 * loss_before
    assert min(result.history["val_nrmse"]) < nrmse_before
    run = tmp_path / "runs" / "tiny"
    for name in ("config.yaml", CHECKPOINT, "best.safetensors", "last.safetensors",
                 "history.json", "curves.png"):
        assert (run / name).is_file(), name
    assert load_model(run / "best.safetensors").config == trainer.config.model


def test_resume_continues_with_the_same_next_batch_loss(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, iterations=12, val_every=6)
    straight = Trainer(config, tmp_path / "straight", progress=False).fit()
    first = Trainer(config, tmp_path / "split", progress=False, stop_after=7).fit()
    assert first.step == 7
    resumed = resume_run(tmp_path / "split", progress=False)
    assert resumed.history["resumed_at"] == [7]
    assert resumed.step == 12
    assert resumed.history["loss"][7] == straight.history["loss"][7]
    assert resumed.history["loss"] == straight.history["loss"]
    assert resumed.history["val_nrmse"] == straight.history["val_nrmse"]


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, iterations=100_000, val_every=1000, checkpoint_every=3)
    config_path = tmp_path / "run.yaml"
    config_path.write_text(config.to_yaml())
    run = config.run_dir
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "acquisition.cli", "train", str(config_path), "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not (run / CHECKPOINT).is_file():
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    saved = torch.load(run / CHECKPOINT, weights_only=True)
    step = int(saved["step"])
    assert step >= 3 and step % 3 == 0
    resumed = Trainer(load_config(run / "config.yaml"), run, resume=True, progress=False,
                      stop_after=step + 2).fit()
    assert resumed.history["resumed_at"] == [step]
    assert resumed.step == step + 2
    assert resumed.history["loss"][:step] == saved["history"]["loss"]
    reference = Trainer(config, tmp_path / "reference", progress=False,
                        stop_after=step + 2).fit()
    assert resumed.history["loss"] == reference.history["loss"]


@pytest.mark.slow
def test_dfgan_schedule_and_resume(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, iterations=4, val_every=4, patch_size=16,
                      batch_size=1).model_dump(mode="json")
    raw["gan"] = {}
    config = parse_config(raw)
    from inference.training.adversarial import DFGANTrainer

    straight = DFGANTrainer(config, tmp_path / "gan", progress=False).fit()
    assert len(straight.history["d_loss"]) == 2  # before generator steps 0 and 3
    trainer = DFGANTrainer(config, tmp_path / "gan-split", progress=False, stop_after=2)
    assert trainer.d_optimizer.param_groups[0]["lr"] == 2e-5
    trainer.fit()
    resumed = resume_run(tmp_path / "gan-split", progress=False)
    assert isinstance(resumed.history["d_loss"], list)
    assert resumed.history["loss"] == straight.history["loss"]
    assert resumed.history["d_loss"] == straight.history["d_loss"]


def test_cli_trains_and_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    config = tiny_config(tmp_path, iterations=2, val_every=2)
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert livesr(["train", str(path), "--no-progress"]) == 0
    assert (config.run_dir / "best.safetensors").is_file()
    assert livesr(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "config.yaml" in capsys.readouterr().err
    path.write_text("optim: [1, 2]\n")
    assert livesr(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1:8: optim: Input should be a valid dictionary" in err
    assert f"{path}:1:1: data: Field required" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path: Path) -> None:
    """DistributedDataParallel over gloo: the same command on two CPU processes."""
    config = tiny_config(tmp_path, iterations=6, val_every=3)
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(_free_port()), "-m", "acquisition.cli", "train", str(path),
         "--no-progress", "--device", "cpu"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = torch.load(config.run_dir / CHECKPOINT, weights_only=True)
    assert int(saved["step"]) == 6
    assert len(saved["history"]["val_nrmse"]) == 2
    single = Trainer(config, tmp_path / "single", progress=False).fit()
    # two processes average the gradients of two different batches: not the single run's path
    assert saved["history"]["loss"][0] == single.history["loss"][0]
    assert saved["history"]["loss"][1:] != single.history["loss"][1:]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mixed_precision_on_the_gpu(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(tmp_path, iterations=20, val_every=10), progress=False,
                      device="cuda")
    assert trainer.amp and trainer.scaler.is_enabled()
    result = trainer.fit()
    assert all(map(math.isfinite, result.history["loss"]))
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]


def test_simulated_pool_sim_inputs_at_3x_and_its_cache(tmp_path: Path) -> None:
    from inference.training.config import SimulatedData
    from inference.training.simulated import simulated_pairs

    data = SimulatedData(input_kind="sim", mode="nl-sim", image_size=48, train_samples=1,
                         val_samples=1, photon_levels=(30, 300), structures=("factin",))
    train, val = simulated_pairs(data, tmp_path)
    assert [p.input.shape for p in train] == [(25, 48, 48)] * 2
    assert train[0].target.shape == (144, 144) and train[0].scale == 3
    assert {p.group for p in train} == {"train-cell0"} and {p.group for p in val} == {"val-cell0"}
    assert not (train[0].input == val[0].input).all()
    cache = tmp_path / "simulated_pool_train.npz"
    stamp = cache.stat().st_mtime_ns
    again, _ = simulated_pairs(data, tmp_path)
    assert cache.stat().st_mtime_ns == stamp  # read back, not simulated again
    assert (again[1].input == train[1].input).all()
