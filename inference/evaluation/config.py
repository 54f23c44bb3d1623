"""The evaluation config (``livesr evaluate CONFIG.yaml``): data, methods, metrics, criteria.

    name: demo_matrix
    output_dir: evaluation                 # relative to this file
    data:
      kind: simulated                      # or biosr (ROOT/<Structure>/Cell_NNN/…)
      structures: [ccp, er, microtubules, factin]
      photon_levels: [15, 25, 40, 60, 100, 150, 220, 320, 450, 600]
      sets_per_cell: 20
      image_size: 128
    methods: [wf, wiener-sim, dfcan-sisr, dfcan-sim, dfgan]
    weights: {dfcan-sisr: demo, dfcan-sim: demo, dfgan: demo}   # demo: the shipped files
    metrics: {frc: true, frc_sets_per_cell: 3, decorrelation: true}
    criteria: {sim_tolerance_nrmse: 0.3, dlsr_margin: 0.0}

``inference.cli.evaluate.load_evaluation_config`` reads it (through
:func:`yamlconfig.located.load_model`): errors read ``FILE:LINE:COL: field: message``, every one
at once. Relative paths (``output_dir``, weights, a BioSR ``root``) are relative to the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from inference.training.heldout import HELDOUT_SEED
from yamlconfig.located import FieldError

__all__ = [
    "DLSR_METHODS",
    "METHODS",
    "BioSRSource",
    "CameraSpec",
    "Criteria",
    "EvaluationConfig",
    "MetricsSpec",
    "SimulatedSource",
]

Method = Literal["wf", "wiener-sim", "dfcan-sisr", "dfcan-sim", "dfgan"]
METHODS: tuple[Method, ...] = get_args(Method)
#: the deep-learning methods, each needing weights
DLSR_METHODS: tuple[str, ...] = ("dfcan-sisr", "dfcan-sim", "dfgan")
#: seeds of the simulated training cells (training uses ``seed`` and ``seed + 1``)
TRAINING_SEEDS = (0, 1)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimulatedSource(_Section):
    """Held-out cells of the simulated microscope: every cell recorded at every photon level."""

    kind: Literal["simulated"] = "simulated"
    structures: tuple[Literal["ccp", "er", "microtubules", "factin"], ...] = Field(
        ("ccp", "er", "microtubules", "factin"), min_length=1)
    photon_levels: tuple[Annotated[float, Field(gt=0)], ...] = Field(
        (15, 25, 40, 60, 100, 150, 220, 320, 450, 600), min_length=1)
    sets_per_cell: int = Field(20, ge=1, description="simulated cells per structure")
    image_size: int = Field(128, ge=32, le=2048, description="camera pixels per side (even)")
    mode: Literal["tirf-sim", "gi-sim"] = "tirf-sim"
    seed: int = Field(HELDOUT_SEED, ge=0, description="cells never used for training")

    @model_validator(mode="after")
    def _heldout(self) -> SimulatedSource:
        if self.seed in TRAINING_SEEDS:
            raise FieldError("seed", f"seed {self.seed} draws the training cells; held-out cells "
                                     f"need another seed (e.g. {HELDOUT_SEED})")
        if self.image_size % 2:
            raise FieldError("image_size", f"must be even, got {self.image_size}")
        return self


class CameraSpec(_Section):
    """What turns camera counts into photons: ``(ADU − offset) / (gain · QE)``."""

    offset: float = Field(100.0, ge=0, description="dark level (ADU)")
    gain: float = Field(2.0, gt=0, description="ADU per photo-electron")
    qe: float = Field(0.8, gt=0, le=1, description="quantum efficiency")


class BioSRSource(_Section):
    """BioSR on disk: ``ROOT/<Structure>/Cell_NNN/RawSIMData_level_LL.mrc`` and ``SIM_gt.mrc``.

    Photon counts are measured from each raw set with ``camera``'s offset, gain and QE.
    """

    kind: Literal["biosr"] = "biosr"
    root: Path
    structures: tuple[str, ...] = Field(min_length=1, description="folder names, e.g. CCPs")
    levels: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (), description="noise levels (empty: every level found)")
    cells: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (), description="cell numbers (empty: every cell; use held-out cells only)")
    camera: CameraSpec = Field(default_factory=CameraSpec)


class MetricsSpec(_Section):
    """Which resolution metrics to compute besides the errors: FRC and decorrelation."""

    frc: bool = Field(True, description="FRC of two noise realisations (simulated data only)")
    frc_sets_per_cell: int = Field(
        3, ge=1, description="FRC on the first N cells of each structure (each costs a second "
                             "reconstruction)")
    decorrelation: bool = Field(True, description="resolution by decorrelation analysis")


class Criteria(_Section):
    """How a cell of the matrix is classified (the paper's Fig. 1c)."""

    sim_tolerance_nrmse: float = Field(
        0.3, gt=0, description="SIM applicable: Wiener-SIM's mean NRMSE to the ground truth is "
                               "at most this")
    dlsr_margin: float = Field(
        0.0, ge=0, description="DLSR priority: the best DLSR model's mean NRMSE is at most "
                               "Wiener-SIM's × (1 + margin)")


class EvaluationConfig(_Section):
    """A whole evaluation: which data, which reconstructions, which metrics, where to."""

    name: str = Field("evaluation", min_length=1, pattern=r"^[\w.-]+$")
    output_dir: Path = Path("evaluation")
    data: Annotated[SimulatedSource | BioSRSource, Field(discriminator="kind")] = Field(
        default_factory=SimulatedSource)
    methods: tuple[Method, ...] = Field(METHODS, min_length=1)
    weights: dict[Literal["dfcan-sisr", "dfcan-sim", "dfgan"], str] = Field(
        default_factory=dict, description="weights file per DLSR method, or demo")
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    criteria: Criteria = Field(default_factory=Criteria)
    device: str = Field("cpu", description="torch device of the DLSR models")

    _base: Path = PrivateAttr(default_factory=Path.cwd)

    def relative_to(self, folder: Path) -> EvaluationConfig:
        """Take relative paths from ``folder`` (the config file's); return ``self``."""
        self._base = Path(folder)
        return self

    def resolve(self, path: Path) -> Path:
        """``path`` relative to the config file's folder."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else self._base / path

    def weights_path(self, method: str) -> Path | None:
        """Return the weights file of a DLSR method (``None``: none configured)."""
        value = self.weights.get(method)  # type: ignore[call-overload]
        if value is None:
            return None
        if value == "demo":
            from inference.training.demo_weights import demo_weights_path

            return demo_weights_path(method)
        return self.resolve(Path(value))

    def output_path(self) -> Path:
        """Return the absolute output folder ``output_dir / name`` (relative to the config)."""
        return (self.resolve(self.output_dir) / self.name).resolve()
