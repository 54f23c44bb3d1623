"""Training runs: the trainer a config asks for, a new run from a config file, a resumed run.

Kept apart from :mod:`inference.training.trainer` so that the DFGAN trainer
(:mod:`inference.training.adversarial`, a :class:`~inference.training.trainer.Trainer`
subclass) is chosen here without the two modules importing each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.training.adversarial import DFGANTrainer
from inference.training.config import TrainConfig, load_config
from inference.training.trainer import CONFIG, Trainer, TrainResult

__all__ = ["resume_run", "start_run", "trainer_class"]


def trainer_class(config: TrainConfig) -> type[Trainer]:
    """:class:`Trainer`, or the DFGAN trainer when the config has a ``gan`` section."""
    return Trainer if config.gan is None else DFGANTrainer


def start_run(config_path: str | Path, **kwargs: Any) -> TrainResult:
    """Train from a config file into its run folder."""
    config = load_config(config_path)
    return trainer_class(config)(config, **kwargs).fit()


def resume_run(run_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG)
    return trainer_class(config)(config, run_dir, resume=True, **kwargs).fit()
