"""The DFCAN trainer: the official schedule, validation, best weights and a real resume.

One iteration: a batch of foreground-centred crops (drawn from a generator seeded by
``(seed, rank, iteration)``, so a resumed run draws exactly the batches it would have drawn),
``MSE + 0.1·(1 − SSIM)``, one Adam step (fp16 mixed precision on CUDA, bf16 autocast on a CPU
with native bf16 when ``amp_cpu``). Every ``val_every`` iterations the validation images are
predicted whole (in fp32); their mean NRMSE picks ``best.safetensors`` and drives
reduce-on-plateau, or the learning rate follows a warm-up and cosine decay per iteration.
The checkpoint (model, optimiser, scheduler, gradient scaler, iteration, torch's RNG states,
history; the crops' generator follows from the iteration) is written atomically and read back
with ``torch.load(weights_only=True)``.

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
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from inference.models.dfcan import DFCAN
from inference.models.weights import load_weights, save_weights
from inference.training.distributed import Distributed, setup_distributed
from inference.training.losses import dfcan_loss
from inference.training.metrics import nrmse, upsample_wf
from inference.training.patches import ImagePair, normalise_pair

if TYPE_CHECKING:
    from collections.abc import Iterator

    from inference.training.config import TrainConfig

__all__ = ["CHECKPOINT", "TrainResult", "Trainer", "cpu_has_bf16"]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16).

    oneDNN also runs bf16 on plain AVX-512 (``jit_bf16:avx512_core``), by conversion to fp32:
    measured 2.4× slower than fp32 there, so that does not count.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: trust oneDNN's own check
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None else False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


class BatchSampler(Protocol):
    """What the trainer draws its batches from (:class:`PatchSampler`, the scene bank's)."""

    in_channels: int
    scale: int

    def batch(self, rng: np.random.Generator, size: int) -> tuple[Tensor, Tensor]: ...


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns: run folder, last step, best validation NRMSE, history."""

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
        self.amp_cpu = optim.amp_cpu and self.device.type == "cpu" and cpu_has_bf16()
        torch.manual_seed(optim.seed)
        self.net = DFCAN(config.model).to(self.device)
        if config.init_weights is not None:
            load_weights(self.net, config.init_weights)
        self.model: nn.Module = (DistributedDataParallel(self.net) if self.dist.active
                                 else self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=optim.lr)
        self.scheduler: Any = (
            torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._cosine_factor)
            if optim.schedule == "cosine" else
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=optim.lr_factor, patience=optim.lr_patience,
                min_lr=optim.min_lr))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step = 0
        self.best_nrmse = math.inf
        self.history: dict[str, Any] = {"loss": [], "val_step": [], "val_loss": [],
                                        "val_nrmse": [], "lr": [], "resumed_at": []}
        self._started = time.perf_counter()
        self.sampler: BatchSampler | None = None
        self.validation: _Validation | None = None
        self._prefetched: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}

    def _cosine_factor(self, step: int) -> float:
        """Return the learning rate at ``step`` as a fraction of ``optim.lr``.

        Linear warm-up, then a cosine from 1 down to ``min_lr / lr`` at ``optim.iterations``.
        """
        optim = self.config.optim
        if step < optim.warmup:
            return (step + 1) / optim.warmup
        floor = min(1.0, optim.min_lr / optim.lr)
        span = max(1, optim.iterations - optim.warmup)
        t = min(1.0, (step - optim.warmup) / span)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    # ----------------------------------------------------------------- data

    def _log(self, message: str) -> None:
        if self.dist.is_main and self.show_progress:
            from rich.console import Console

            Console(stderr=True).print(message, highlight=False, soft_wrap=True)

    def prepare_data(self) -> None:
        """Load the batch sampler and validation images (main process first: it writes caches)."""
        from inference.training.datasets import load_data

        def report(part: str, i: int, n: int) -> None:
            if i == 0:
                self._log(f"simulating the {part} cells: {n}")

        if self.dist.is_main:
            sampler, val = load_data(self.config.data, self.run_dir,
                                     self.config.optim.patch_size, report)
        self.dist.barrier()  # the main process wrote any cache; the others read it
        if not self.dist.is_main:
            sampler, val = load_data(self.config.data, self.run_dir,
                                     self.config.optim.patch_size)
        if sampler.in_channels != self.config.model.in_channels:
            raise ValueError(f"the data have {sampler.in_channels} input channels, the model "
                             f"takes {self.config.model.in_channels}")
        if sampler.scale != self.config.model.scale:
            raise ValueError(f"the data are {sampler.scale}× super-resolved, the model "
                             f"upsamples {self.config.model.scale}×")
        self.sampler = sampler
        self.validation = _Validation(val)
        self.history["val_nrmse_baseline"] = self.validation.baseline

    def batch(self, step: int, stream: int = 0) -> tuple[Tensor, Tensor]:
        """Return the batch of iteration ``step`` on this process (the same after a resume).

        Other ``stream`` numbers give further independent batches of the same iteration.
        """
        drawn = self._prefetched.pop((step, stream), None)
        x, y = drawn if drawn is not None else self.draw(step, stream)
        non_blocking = self.device.type == "cuda"
        return (x.to(self.device, non_blocking=non_blocking),
                y.to(self.device, non_blocking=non_blocking))

    def draw(self, step: int, stream: int = 0) -> tuple[Tensor, Tensor]:
        """Draw the CPU tensors of :meth:`batch` (what the data workers compute ahead)."""
        assert self.sampler is not None
        key = [self.config.optim.seed, self.dist.rank, step] + ([stream] if stream else [])
        rng = np.random.default_rng(key)
        return self.sampler.batch(rng, self.config.optim.batch_size)

    def streams(self, step: int) -> tuple[int, ...]:
        """Return the batch streams iteration ``step`` draws (DFGAN adds its discriminator's)."""
        return (0,)

    def batches(self, start: int, end: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield the batches of iterations ``start``…``end − 1`` in order.

        Each is drawn by ``optim.data_workers`` processes ahead of the loop (or in it, without
        workers); a step's further streams (DFGAN's) wait in :meth:`batch`.
        """
        workers = self.config.optim.data_workers
        ahead = None
        if workers > 0 and start < end:
            from torch.utils.data import DataLoader

            ahead = iter(DataLoader(_StepBatches(self), batch_size=None,
                                    sampler=range(start, end), num_workers=workers,
                                    prefetch_factor=4, pin_memory=self.device.type == "cuda"))
        for step in range(start, end):
            if ahead is not None:
                self._prefetched.update(next(ahead))
            yield self.batch(step)

    # ----------------------------------------------------------------- steps

    def _autocast(self, training: bool = True) -> Any:
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        if self.amp_cpu and training:
            return torch.autocast("cpu", dtype=torch.bfloat16)
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
            with self._autocast(training=False):
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
        """Restore what :meth:`state` saved, random number generators included."""
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
        """Write :meth:`state` to ``run_dir/checkpoint.pt`` (atomically); return its path."""
        path = self.run_dir / CHECKPOINT
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)
        return path

    def load_checkpoint(self) -> None:
        """Restore the state saved in ``run_dir/checkpoint.pt``."""
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
            for x, y in self.batches(self.step, end):
                loss = self.train_step(x, y)
                self.step += 1
                if optim.schedule == "cosine":
                    self.scheduler.step()
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
        if self.config.optim.schedule == "plateau":
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
        """Do nothing: a hook for subclasses, called with each validation's NRMSE.

        DFGAN schedules its discriminator's learning rate here.
        """

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


class _StepBatches(torch.utils.data.Dataset):
    """Item ``step``: every batch that iteration draws, keyed by ``(step, stream)``."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def __getitem__(self, step: int) -> dict[tuple[int, int], tuple[Tensor, Tensor]]:
        return {(step, s): self.trainer.draw(step, s) for s in self.trainer.streams(step)}
