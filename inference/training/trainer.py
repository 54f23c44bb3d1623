"""The DFCAN trainer: the official schedule, validation, best weights and a real resume.

One iteration: a batch of foreground-centred crops (drawn from a generator seeded by
``(seed, rank, iteration)``, so a resumed run draws exactly the batches it would have drawn),
``MSE + 0.1·(1 − SSIM)``, one Adam step (mixed precision on CUDA). Every ``val_every``
iterations the validation images are predicted whole; their mean NRMSE drives
reduce-on-plateau and picks ``best.safetensors``. The checkpoint (model, optimiser, scheduler,
gradient scaler, iteration, torch's RNG states, history; the crops' generator follows from the
iteration) is written atomically and read back with
``torch.load(weights_only=True)``.

Run folder: ``config.yaml``, ``checkpoint.pt``, ``best.safetensors``, ``last.safetensors``,
``history.json``, ``curves.png``.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from inference.dfcan import DFCAN
from inference.losses import dfcan_loss
from inference.training.config import TrainConfig, load_config
from inference.training.distributed import Distributed, setup_distributed
from inference.training.metrics import nrmse, upsample_wf
from inference.training.patches import ImagePair, PatchSampler, normalise_pair
from inference.weights import save_weights

__all__ = ["CHECKPOINT", "TrainResult", "Trainer", "resume_run", "start_run", "trainer_class"]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    best_nrmse: float
    history: dict[str, Any]


class _Validation:
    """Whole validation images, normalised once, with the upsampled-input baseline."""

    def __init__(self, pairs: list[ImagePair]) -> None:
        if not pairs:
            raise ValueError("no validation images")
        self.items: list[tuple[Tensor, Tensor]] = []
        for p in pairs:
            x, y = normalise_pair(p.input, p.target)
            self.items.append((torch.from_numpy(x)[None], torch.from_numpy(y)[None, None]))
        self.baseline = float(np.mean([
            nrmse(p.target, upsample_wf(p.input.astype(np.float32).mean(axis=0), p.scale))
            for p in pairs]))


class Trainer:
    """Trains ``config.model`` on ``config.data``; ``fit()`` resumes from ``run_dir`` if asked."""

    def __init__(self, config: TrainConfig, run_dir: Path | None = None, *,
                 resume: bool = False, progress: bool = True, device: str | None = None,
                 stop_after: int | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else config.run_dir
        self.resume = resume
        self.show_progress = progress
        self.stop_after = stop_after  # stop (with a checkpoint) after this many iterations
        self.dist: Distributed = setup_distributed(device)
        optim = config.optim
        if optim.num_threads:
            torch.set_num_threads(optim.num_threads)
        self.device = self.dist.device
        self.amp = optim.amp and self.device.type == "cuda"
        torch.manual_seed(optim.seed)
        self.net = DFCAN(config.model).to(self.device)
        self.model: nn.Module = (DistributedDataParallel(self.net) if self.dist.active
                                 else self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=optim.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=optim.lr_factor, patience=optim.lr_patience,
            min_lr=optim.min_lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step = 0
        self.best_nrmse = math.inf
        self.history: dict[str, Any] = {"loss": [], "val_step": [], "val_loss": [],
                                        "val_nrmse": [], "lr": [], "resumed_at": []}
        self._started = time.perf_counter()
        self.sampler: PatchSampler | None = None
        self.validation: _Validation | None = None

    # ----------------------------------------------------------------- data

    def _log(self, message: str) -> None:
        if self.dist.is_main and self.show_progress:
            from rich.console import Console

            Console(stderr=True).print(message, highlight=False, soft_wrap=True)

    def prepare_data(self) -> None:
        from inference.training.datasets import load_pairs

        def report(part: str, i: int, n: int) -> None:
            if i == 0:
                self._log(f"simulating the {part} pool: {n} cells")

        if self.dist.is_main:
            train, val = load_pairs(self.config.data, self.run_dir, report)
        self.dist.barrier()  # the main process wrote any cache; the others read it
        if not self.dist.is_main:
            train, val = load_pairs(self.config.data, self.run_dir)
        self.sampler = PatchSampler(train, self.config.optim.patch_size)
        if self.sampler.in_channels != self.config.model.in_channels:
            raise ValueError(f"the data have {self.sampler.in_channels} input channels, the model "
                             f"takes {self.config.model.in_channels}")
        if self.sampler.scale != self.config.model.scale:
            raise ValueError(f"the data are {self.sampler.scale}× super-resolved, the model "
                             f"upsamples {self.config.model.scale}×")
        self.validation = _Validation(val)
        self.history["val_nrmse_baseline"] = self.validation.baseline

    def batch(self, step: int, stream: int = 0) -> tuple[Tensor, Tensor]:
        """The batch of iteration ``step`` on this process (the same after a resume); other
        ``stream`` numbers give further independent batches of the same iteration."""
        assert self.sampler is not None
        key = [self.config.optim.seed, self.dist.rank, step] + ([stream] if stream else [])
        rng = np.random.default_rng(key)
        x, y = self.sampler.batch(rng, self.config.optim.batch_size)
        return x.to(self.device), y.to(self.device)

    # ----------------------------------------------------------------- steps

    def _autocast(self) -> Any:
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()

    def train_step(self, x: Tensor, y: Tensor) -> float:
        """One generator update; returns the batch loss."""
        self.model.train()
        with self._autocast():
            prediction = self.model(x)
        loss = dfcan_loss(prediction.float(), y, self.config.optim.ssim_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """Mean loss and mean NRMSE over the whole validation images (main process)."""
        assert self.validation is not None
        self.net.eval()
        losses, scores = [], []
        for x, y in self.validation.items:
            with self._autocast():
                prediction = self.net(x.to(self.device)).float()
            losses.append(float(dfcan_loss(prediction, y.to(self.device),
                                           self.config.optim.ssim_weight)))
            scores.append(nrmse(y.numpy(), prediction.cpu().numpy()))
        return float(np.mean(losses)), float(np.mean(scores))

    # ----------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        """Everything a resume needs: tensors, numbers, strings and lists (no objects)."""
        state: dict[str, Any] = {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_nrmse": self.best_nrmse,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_nrmse = float(state["best_nrmse"])
        self.history = state["history"]
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save_checkpoint(self) -> Path:
        path = self.run_dir / CHECKPOINT
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)
        return path

    def load_checkpoint(self) -> None:
        path = self.run_dir / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from: {path}")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise ValueError(f"{path}: not a readable checkpoint ({exc})") from None
        self.load_state(state)

    def _write_outputs(self) -> None:
        from inference.training.plots import plot_curves

        (self.run_dir / "history.json").write_text(json.dumps(self.history))
        plot_curves(self.history, self.run_dir / "curves.png", self.config.name)

    # ----------------------------------------------------------------- loop

    def fit(self) -> TrainResult:
        """Train to ``optim.iterations`` (or ``stop_after``), validating and checkpointing."""
        optim = self.config.optim
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / CONFIG).write_text(self.config.to_yaml())
        if self.resume:
            self.load_checkpoint()
            self.history["resumed_at"].append(self.step)
        self.prepare_data()
        checkpoint_every = optim.checkpoint_every or optim.val_every
        end = optim.iterations if self.stop_after is None else min(optim.iterations,
                                                                   self.stop_after)
        self._started = time.perf_counter() - sum(self.history.get("seconds", []))
        started = time.perf_counter()
        with self._progress(end) as advance:
            while self.step < end:
                loss = self.train_step(*self.batch(self.step))
                self.step += 1
                self.history["loss"].append(loss)
                if self.step % optim.val_every == 0 or self.step == optim.iterations:
                    self._validate_and_schedule()
                if self.step % checkpoint_every == 0 or self.step == end:
                    if self.dist.is_main:
                        self.save_checkpoint()
                    self.dist.barrier()
                advance(loss)
        self.history.setdefault("seconds", []).append(time.perf_counter() - started)
        if self.dist.is_main:
            save_weights(self.net, self.run_dir / "last.safetensors")
            self._write_outputs()
        self.dist.close()
        return TrainResult(self.run_dir, self.step, self.best_nrmse, self.history)

    def _validate_and_schedule(self) -> None:
        values = [math.nan, math.nan]
        if self.dist.is_main:
            values = list(self.validate())
        val_loss, val_nrmse = self.dist.broadcast_floats(values)
        self.scheduler.step(val_nrmse)
        self.after_validation(val_nrmse)
        lr = float(self.optimizer.param_groups[0]["lr"])
        h = self.history
        h["val_step"].append(self.step)
        h["val_loss"].append(val_loss)
        h["val_nrmse"].append(val_nrmse)
        h["lr"].append(lr)
        h.setdefault("val_seconds", []).append(time.perf_counter() - self._started)
        if val_nrmse < self.best_nrmse:
            self.best_nrmse = val_nrmse
            if self.dist.is_main:
                save_weights(self.net, self.run_dir / "best.safetensors")
        if self.dist.is_main:
            self._write_outputs()
            baseline = h.get("val_nrmse_baseline", math.nan)
            self._log(f"iteration {self.step}: validation loss {val_loss:.4f}, NRMSE "
                      f"{val_nrmse:.4f} (input upsampled: {baseline:.4f}), lr {lr:.2e}")

    def after_validation(self, val_nrmse: float) -> None:
        """A hook for subclasses (DFGAN schedules its discriminator's learning rate here)."""

    def _progress(self, end: int) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def bar() -> Any:
            if not (self.dist.is_main and self.show_progress):
                yield lambda loss: None
                return
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                          TimeElapsedColumn(), TimeRemainingColumn()) as progress:
                task = progress.add_task(self.config.name, total=end, completed=self.step,
                                         loss="–")
                yield lambda loss: progress.update(task, advance=1, loss=f"{loss:.4f}")

        return bar()


def trainer_class(config: TrainConfig) -> type[Trainer]:
    """:class:`Trainer`, or the DFGAN trainer when the config has a ``gan`` section."""
    if config.gan is None:
        return Trainer
    from inference.training.dfgan import DFGANTrainer

    return DFGANTrainer


def start_run(config_path: str | Path, **kwargs: Any) -> TrainResult:
    """Train from a config file into its run folder."""
    config = load_config(config_path)
    return trainer_class(config)(config, **kwargs).fit()


def resume_run(run_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG)
    return trainer_class(config)(config, run_dir, resume=True, **kwargs).fit()
