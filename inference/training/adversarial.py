"""DFGAN training, after ``train_DFGAN.py`` of the official code.

A DFCAN generator and the official discriminator, with the paper's schedule.

Generator loss ``0.1 · BCE(D(G(x)), 1) + MSE + 0.1·(1 − SSIM)``; discriminator loss
``(BCE(D(y), 1) + BCE(D(G(x)), 0)) / 2`` with Adam at 2e-5; one discriminator step, on a batch of
its own, before every third generator step. Both learning rates fall on a plateau of the
validation NRMSE (the discriminator's to a tenth at most, as in the official code). An
iteration is one generator step, so ``val_every`` and the resume count generator steps. The
discriminator, its optimiser, scheduler and scaler join the checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from inference.models.dfgan import Discriminator, DiscriminatorConfig
from inference.training.config import GanConfig, TrainConfig
from inference.training.losses import dfgan_discriminator_loss, dfgan_generator_loss
from inference.training.trainer import Trainer

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DFGANTrainer"]


class DFGANTrainer(Trainer):
    """:class:`Trainer` plus the discriminator and its schedule."""

    def __init__(self, config: TrainConfig, run_dir: Path | None = None, **kwargs: Any) -> None:
        super().__init__(config, run_dir, **kwargs)
        self.gan: GanConfig = config.gan or GanConfig()
        self.disc_net = Discriminator(DiscriminatorConfig(
            in_channels=1, widths=self.gan.discriminator_widths,
            stride=self.gan.discriminator_stride)).to(self.device)
        self.discriminator: nn.Module = (DistributedDataParallel(self.disc_net)
                                         if self.dist.active else self.disc_net)
        self.d_optimizer = torch.optim.Adam(self.disc_net.parameters(),
                                            lr=self.gan.discriminator_lr)
        self.d_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.d_optimizer, mode="min", factor=config.optim.lr_factor,
            patience=config.optim.lr_patience, min_lr=0.1 * self.gan.discriminator_lr)
        self.d_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.history.setdefault("d_loss", [])

    def discriminator_step(self) -> float:
        """One discriminator update on this iteration's second batch."""
        x, y = self.batch(self.step, stream=1)
        with torch.no_grad(), self._autocast():
            self.net.eval()
            prediction = self.net(x)
        self.discriminator.train()
        with self._autocast():  # one forward pass for both halves (one per backward, for DDP)
            judged = self.discriminator(torch.cat([y, prediction.detach()])).float()
        judged_real, judged_fake = judged.chunk(2)
        loss = dfgan_discriminator_loss(judged_real, judged_fake)
        self.d_optimizer.zero_grad(set_to_none=True)
        self.d_scaler.scale(loss).backward()
        self.d_scaler.step(self.d_optimizer)
        self.d_scaler.update()
        return float(loss.detach())

    def streams(self, step: int) -> tuple[int, ...]:
        """Return ``(0, 1)`` on the steps that update the discriminator, else ``(0,)``."""
        k = self.gan.generator_steps_per_discriminator_step
        return (0, 1) if step % k == 0 else (0,)

    def train_step(self, x: Tensor, y: Tensor) -> float:
        """Update the generator once; return its loss.

        On every ``gan.generator_steps_per_discriminator_step``-th step the discriminator is
        updated first (:meth:`discriminator_step`); its weights stay frozen during the
        generator's backward pass.
        """
        if self.step % self.gan.generator_steps_per_discriminator_step == 0:
            self.history["d_loss"].append(self.discriminator_step())
        self.model.train()
        with self._autocast():
            prediction = self.model(x)
        for p in self.disc_net.parameters():
            p.requires_grad_(False)
        with self._autocast():  # the bare module: no gradient for D, so no DDP reduction
            judged = self.disc_net(prediction).float()
        loss = dfgan_generator_loss(prediction.float(), y, judged, self.gan.adversarial_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        for p in self.disc_net.parameters():
            p.requires_grad_(True)
        return float(loss.detach())

    def after_validation(self, val_nrmse: float) -> None:
        """Step the discriminator's plateau scheduler on the validation NRMSE."""
        self.d_scheduler.step(val_nrmse)

    def state(self) -> dict[str, Any]:
        """Return the generator's state plus the discriminator, its optimiser, scheduler, scaler."""
        state = super().state()
        state.update(discriminator=self.disc_net.state_dict(),
                     d_optimizer=self.d_optimizer.state_dict(),
                     d_scheduler=self.d_scheduler.state_dict(),
                     d_scaler=self.d_scaler.state_dict())
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the generator's and the discriminator's state saved by :meth:`state`."""
        super().load_state(state)
        self.disc_net.load_state_dict(state["discriminator"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.d_scheduler.load_state_dict(state["d_scheduler"])
        self.d_scaler.load_state_dict(state["d_scaler"])
