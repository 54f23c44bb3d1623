"""The training configuration: one YAML file, validated by pydantic with located errors.

A config names the model (a :class:`~inference.models.dfcan.DFCANConfig`), the data (BioSR layout,
pairs of TIFF folders, or the simulator), the optimisation schedule and, optionally, DFGAN's
adversarial part. ``load_config`` reads it through :func:`yamlconfig.located.load_model` and
reports every invalid field at once, as ``FILE:LINE:COL: section.field: message``. Relative
paths in it (``output_dir``, ``cache``, ``bank``, ``root``, …) are relative to the working
folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from inference.models.dfcan import DFCANConfig
from yamlconfig.located import FieldError, YamlSource, load_model, validate_source

__all__ = [
    "BioSRData",
    "DataConfig",
    "GanConfig",
    "OptimConfig",
    "SceneBankData",
    "SimulatedData",
    "TiffPairsData",
    "TrainConfig",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimulatedData(_Section):
    """Pairs from the simulated microscope, generated once into a cache and cropped from there."""

    kind: Literal["simulated"] = "simulated"
    input_kind: Literal["wf", "sim"] = Field(
        default="wf", description="wf: one wide-field image in (SISR); sim: the raw SIM set"
    )
    mode: Literal["tirf-sim", "gi-sim", "nl-sim"] = "tirf-sim"
    structures: tuple[Literal["ccp", "er", "microtubules", "factin"], ...] = (
        "ccp", "er", "microtubules", "factin",
    )
    photon_levels: tuple[Annotated[float, Field(gt=0)], ...] = (
        15, 25, 40, 60, 100, 150, 220, 320, 450, 600,
    )
    image_size: int = Field(default=128, ge=32, description="camera pixels per simulated image")
    train_samples: int = Field(default=64, ge=1, description="simulated cells for training")
    val_samples: int = Field(default=4, ge=1, description="other cells for validation")
    seed: int = Field(default=0, description="training cells; validation cells use seed + 1")
    cache: Path | None = Field(
        default=None, description="the .npz pool of pairs (default: RUN_DIR/simulated_pool.npz)"
    )


_Range = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]]


class SceneBankData(_Section):
    """The simulated microscope as a bank of noiseless scenes on disk (memory-mapped).

    The photon level, camera noise, pattern order and crop are drawn afresh for every training
    crop.

    Every cell is rendered once with its own pattern (frequency, angles, phases, modulation and
    background drawn from the ranges below) and a ground truth of one fixed resolution; a crop
    is then recorded at a photon level drawn log-uniformly from ``photons``, so the network
    never sees the same noise twice. Validation cells (seed + 1) are recorded once at
    ``val_photon_levels``.
    """

    kind: Literal["scene_bank"] = "scene_bank"
    input_kind: Literal["wf", "sim"] = "sim"
    mode: Literal["tirf-sim", "gi-sim"] = "tirf-sim"
    structures: tuple[Literal["ccp", "er", "microtubules", "factin"], ...] = (
        "ccp", "er", "microtubules", "factin",
    )
    image_size: int = Field(default=128, ge=32, description="camera pixels per scene")
    train_cells: int = Field(default=400, ge=1)
    val_cells: int = Field(default=8, ge=1)
    seed: int = Field(default=0, description="training cells; validation cells use seed + 1")
    photons: _Range = Field(default=(10.0, 800.0),
                            description="average photon count per crop, drawn log-uniformly")
    val_photon_levels: tuple[Annotated[float, Field(gt=0)], ...] = (15, 40, 100, 300, 600)
    frequency_fraction: _Range = Field(
        default=(0.85, 1.05), description="pattern frequency per cell, fraction of k_c")
    gt_frequency_fraction: float = Field(
        default=0.9, gt=0, description="the ground truth's resolution: k_c·(1 + this)")
    modulation: _Range = (0.5, 0.95)
    background_fraction: _Range = (0.0, 0.1)
    random_angles: bool = Field(default=True, description="a random first orientation per cell")
    shuffle_pattern_order: bool = Field(
        default=True, description="permute the orientations and reverse the phase steps of a "
                                  "crop at random (frames stay grouped by orientation)")
    bank: Path | None = Field(default=None, description="bank folder (default RUN_DIR/bank)")

    @model_validator(mode="after")
    def _ordered_ranges(self) -> SceneBankData:
        for name in ("photons", "frequency_fraction", "modulation", "background_fraction"):
            low, high = getattr(self, name)
            if low > high:
                raise FieldError(name, f"the lower end {low} is above the upper end {high}")
        if self.photons[0] <= 0:
            raise FieldError("photons", "the lower end must be > 0")
        if self.frequency_fraction[0] <= 0 or self.frequency_fraction[1] > 1.1:
            raise FieldError("frequency_fraction", "must lie in (0, 1.1]")
        if self.modulation[1] > 1:
            raise FieldError("modulation", "at most 1")
        return self


class BioSRData(_Section):
    """BioSR on disk: ``ROOT/<Structure>/Cell_NNN/RawSIMData_level_LL.mrc`` and ``SIM_gt.mrc``."""

    kind: Literal["biosr"] = "biosr"
    root: Path
    structures: tuple[str, ...] = Field(min_length=1, description="folder names, e.g. CCPs")
    levels: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        default=(), description="noise levels to use (empty: every level found)"
    )
    input_kind: Literal["wf", "sim"] = "wf"
    val_cells: int = Field(default=2, ge=1, description="the last N cells of each structure")


class TiffPairsData(_Section):
    """Two folders of TIFF files paired by name: inputs and targets on the SR grid.

    An input is a 2-D image or a stack of raw frames.
    """

    kind: Literal["tiff_pairs"] = "tiff_pairs"
    inputs: Path
    targets: Path
    val_inputs: Path | None = None
    val_targets: Path | None = None
    val_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="the share of files for validation, without val_*"
    )

    @model_validator(mode="after")
    def _both_val_folders(self) -> TiffPairsData:
        if (self.val_inputs is None) != (self.val_targets is None):
            given = "val_inputs" if self.val_inputs is not None else "val_targets"
            raise FieldError(given, "give both val_inputs and val_targets, or neither")
        return self


DataConfig = Annotated[SimulatedData | SceneBankData | BioSRData | TiffPairsData,
                       Field(discriminator="kind")]


class OptimConfig(_Section):
    """The official schedule (Adam 1e-4, batch 4, halve the learning rate on a plateau)."""

    iterations: int = Field(default=100_000, ge=1)
    batch_size: int = Field(default=4, ge=1, description="per process")
    patch_size: int = Field(default=128, ge=16, description="input crop side (camera pixels)")
    lr: float = Field(default=1e-4, gt=0)
    ssim_weight: float = Field(default=0.1, ge=0)
    val_every: int = Field(default=2000, ge=1, description="validate every N iterations")
    checkpoint_every: int | None = Field(
        default=None, ge=1, description="write the resume checkpoint every N (default: val_every)"
    )
    schedule: Literal["plateau", "cosine"] = Field(
        default="plateau", description="plateau: halve on a validation plateau (official); "
                                       "cosine: warm up, then a cosine decay to min_lr")
    warmup: int = Field(default=0, ge=0, description="linear warm-up iterations (cosine)")
    lr_factor: float = Field(default=0.5, gt=0, lt=1)
    lr_patience: int = Field(default=3, ge=0, description="validations without improvement")
    min_lr: float = Field(default=1e-6, ge=0)
    amp: bool = Field(default=True, description="fp16 mixed precision on CUDA")
    amp_cpu: bool = Field(default=False, description="bf16 autocast on the CPU, where it has "
                                                     "native bf16 (AVX512-BF16 or AMX)")
    seed: int = 0
    num_threads: int | None = Field(default=None, ge=1, description="torch CPU threads")
    data_workers: int = Field(
        default=0, ge=0, description="processes that draw the next batches ahead of the "
                                     "steps (0: drawn in the loop); the same batches either way")


class GanConfig(_Section):
    """DFGAN: the discriminator and the paper's schedule."""

    discriminator_lr: float = Field(default=2e-5, gt=0)
    generator_steps_per_discriminator_step: int = Field(default=3, ge=1)
    adversarial_weight: float = Field(default=0.1, ge=0)
    discriminator_widths: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        default=(32, 64, 128, 256, 512), min_length=1,
        description="the discriminator's block widths (official: 32 … 512)")
    discriminator_stride: int = Field(default=1, ge=1, le=2,
                                      description="1: official; 2 for CPU training")


class TrainConfig(_Section):
    """Everything a run needs; saved into the run folder as ``config.yaml``."""

    name: str = Field(default="dfcan", min_length=1)
    output_dir: Path = Field(default=Path("runs"), description="runs go to OUTPUT_DIR/NAME")
    model: DFCANConfig = DFCANConfig()
    init_weights: Path | None = Field(
        default=None, description="start from these weights (fine-tuning; the same model)")
    data: DataConfig
    optim: OptimConfig = OptimConfig()
    gan: GanConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        frames = {"wf": 1}
        kind = self.data.input_kind if not isinstance(self.data, TiffPairsData) else None
        if kind in frames and self.model.in_channels != frames[kind]:
            raise FieldError(("model", "in_channels"), f"input_kind 'wf' needs model.in_channels "
                                                       f"1, got {self.model.in_channels}")
        if kind == "sim" and self.model.in_channels == 1:
            raise FieldError(("data", "input_kind"), "input_kind 'sim' needs model.in_channels = "
                                                     "the raw frames (9, 25), got 1")
        return self

    @property
    def run_dir(self) -> Path:
        """The run's folder, ``output_dir / name``."""
        return self.output_dir / self.name

    def to_yaml(self) -> str:
        """Return the config as YAML text, fields in their declared order."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a training config (YAML); ``overrides`` replace top-level fields.

    Raises :class:`~yamlconfig.located.ConfigError` (a ``ValueError``) listing every error as
    ``FILE:LINE:COL: field: message``, and ``OSError`` when the file cannot be read.
    """
    try:
        config, _ = load_model(path, TrainConfig, overrides)
    except OSError as exc:
        raise OSError(f"cannot read the training config {path}: {exc.strerror or exc}") from None
    return config


def parse_config(raw: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a config mapping; errors read ``SOURCE: field: message``, every one at once."""
    return validate_source(TrainConfig, YamlSource(source, raw))
