"""SIM illumination: striped patterns for TIRF-SIM, GI-SIM and nonlinear SIM.

A pattern is ``1 + m₁·cos ψ + m₂·cos 2ψ`` with ``ψ = 2π k·r + φ``; ``r`` is measured in nm
from the centre of camera pixel (0, 0) (camera pixel (i, j) sits at (i·p, j·p)). Linear SIM has
m₂ = 0 and 3 orientations × 3 phases; nonlinear SIM a second harmonic and 5 × 5.
Frames are ordered orientation-major: frame = orientation · n_phases + phase.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .names import MODES, Mode

__all__ = ["MODES", "Mode", "PatternSettings", "default_patterns", "k_vectors", "pattern",
           "phase_offsets"]


class PatternSettings(BaseModel):
    """How a mode illuminates: pattern frequency, depth, orientations, phases, background."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_orientations: int = Field(3, ge=1)
    n_phases: int = Field(3, ge=1)
    frequency_fraction: float = Field(
        0.9, gt=0, le=1.1,
        description="pattern frequency as a fraction of the detection cutoff; TIRF excitation "
                    "at a shorter wavelength than the emission can place it a little beyond",
    )
    modulation: float = Field(0.9, ge=0, le=1, description="m₁, first-harmonic depth")
    second_harmonic: float = Field(0.0, ge=0, le=1, description="m₂ (nonlinear SIM)")
    base_angle_rad: float = Field(0.2618, description="angle of the first orientation")
    background_fraction: float = Field(
        0.0, ge=0, description="unmodulated out-of-focus background, fraction of the mean signal"
    )
    sr_factor: int = Field(2, ge=1, description="SR grid upsampling of the ground truth")

    @property
    def n_frames(self) -> int:
        """Raw frames per set: orientations × phases."""
        return self.n_orientations * self.n_phases

    @property
    def angles_rad(self) -> np.ndarray:
        """Angle of each orientation (rad): evenly spaced over π from ``base_angle_rad``."""
        return self.base_angle_rad + np.arange(self.n_orientations) * np.pi / self.n_orientations

    def harmonics(self) -> int:
        """Highest harmonic of the pattern (1 linear, 2 nonlinear)."""
        return 2 if self.second_harmonic > 0 else 1


def default_patterns(mode: Mode) -> PatternSettings:
    """Defaults per mode: TIRF-SIM near the cutoff, GI-SIM a little lower with background."""
    if mode == "tirf-sim":
        return PatternSettings()
    if mode == "gi-sim":
        return PatternSettings(frequency_fraction=0.85, modulation=0.8, background_fraction=0.15)
    if mode == "nl-sim":
        return PatternSettings(n_orientations=5, n_phases=5, frequency_fraction=0.85,
                               modulation=0.9, second_harmonic=0.4, sr_factor=3)
    if mode == "wf":
        return PatternSettings(n_orientations=1, n_phases=1, modulation=0.0,
                               background_fraction=0.1)
    raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")


def phase_offsets(settings: PatternSettings, rng: np.random.Generator) -> np.ndarray:
    """Phases (rad) per (orientation, phase): equal steps plus a random offset per orientation."""
    steps = 2 * np.pi * np.arange(settings.n_phases) / settings.n_phases
    start = rng.uniform(0, 2 * np.pi, settings.n_orientations)
    return np.mod(start[:, None] + steps[None, :], 2 * np.pi)


def k_vectors(settings: PatternSettings, cutoff_per_nm: float) -> np.ndarray:
    """Pattern wave vectors (n_orientations, 2) as (k_y, k_x) in cycles/nm."""
    k = settings.frequency_fraction * cutoff_per_nm
    a = settings.angles_rad
    return np.stack([k * np.sin(a), k * np.cos(a)], axis=-1)


def pattern(y_nm: np.ndarray, x_nm: np.ndarray, k_yx: np.ndarray, phase: float,
            modulation: float, second_harmonic: float = 0.0) -> np.ndarray:
    """Illumination (≥ 0) on the grid ``y_nm`` × ``x_nm`` for one orientation and phase."""
    psi = (2 * np.pi * k_yx[0] * y_nm + phase)[:, None] + (2 * np.pi * k_yx[1] * x_nm)[None, :]
    out = 1.0 + modulation * np.cos(psi)
    if second_harmonic:
        out += second_harmonic * np.cos(2 * psi)
    return np.clip(out, 0.0, None).astype(np.float32)
