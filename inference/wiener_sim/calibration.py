"""The parameters of a raw SIM set: the geometry of the set and what estimation found in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EstimationError", "SIMCalibration", "SIMGeometry"]


class EstimationError(ValueError):
    """The data cannot support an estimate (too little signal or modulation)."""


@dataclass(frozen=True)
class SIMGeometry:
    """Orientations × phases of a raw set, its harmonics and its output grid."""

    n_orientations: int
    n_phases: int
    harmonics: int  # highest harmonic of the pattern: 1 linear SIM, 2 nonlinear SIM
    scale: int  # output pixels per camera pixel along each axis

    @classmethod
    def for_frames(cls, n_frames: int) -> SIMGeometry:
        """9 frames: linear SIM (3 × 3, 2×); 25 frames: nonlinear SIM (5 × 5, 2 harmonics, 3×)."""
        if n_frames == 9:
            return cls(3, 3, 1, 2)
        if n_frames == 25:
            return cls(5, 5, 2, 3)
        raise ValueError(f"a raw SIM set has 9 frames (3 orientations × 3 phases) or 25 "
                         f"(nonlinear SIM, 5 × 5), got {n_frames}")

    @property
    def n_frames(self) -> int:
        """Raw frames per set: orientations × phases."""
        return self.n_orientations * self.n_phases


@dataclass
class SIMCalibration:
    """Estimated pattern parameters, with a confidence for each, reusable over a time-lapse.

    Conventions are the simulator's: the pattern is ``1 + Σ_h m_h cos(h(2π k·r + φ))`` with
    ``r`` from the centre of camera pixel (0, 0), ``k`` as (k_y, k_x) in cycles/µm, frames
    orientation-major. ``(k, φ)`` and ``(−k, −φ)`` describe the same pattern.
    """

    geometry: SIMGeometry
    shape: tuple[int, int]  # camera pixels (H, W) of the set it was estimated from
    pixel_um: float
    background: float  # subtracted from every frame (camera counts)
    k_per_um: np.ndarray  # (n_orientations, 2) carrier (k_y, k_x), first harmonic
    phases_rad: np.ndarray  # (n_orientations, n_phases), first harmonic
    amplitudes: np.ndarray  # (n_orientations, harmonics) complex band amplitude m_h/2·e^{iθ}
    carrier_contrast: np.ndarray  # (n_orientations,) correlation peak / median elsewhere
    # (n_orientations,) (peak / highest rival − 1) / 0.4 in [0, 1]: 0 when a rival elsewhere in
    # the correlation equals the peak, 1 when the peak stands 40 % above every rival
    carrier_confidence: np.ndarray
    phase_uncertainty_rad: np.ndarray  # (n_orientations, n_phases) 1-σ
    modulation_uncertainty: np.ndarray  # (n_orientations, harmonics) 1-σ
    notes: list[str] = field(default_factory=list)
    #: confidence of the joint pattern fit when a prior was used (``None``: estimated blind, or
    #: the carriers came from a calibration)
    joint_confidence: float | None = None

    @property
    def modulation(self) -> np.ndarray:
        """Modulation depth m_h per orientation and harmonic (2·|amplitude|)."""
        return 2.0 * np.abs(self.amplitudes)

    @property
    def frequency_per_um(self) -> np.ndarray:
        """Carrier frequency |k| per orientation, in cycles/µm."""
        return np.hypot(self.k_per_um[:, 0], self.k_per_um[:, 1])

    @property
    def angles_rad(self) -> np.ndarray:
        """Carrier angles in [0, π) (a pattern's direction is defined up to sign)."""
        return np.mod(np.arctan2(self.k_per_um[:, 0], self.k_per_um[:, 1]), np.pi)

    @property
    def phase_confidence(self) -> np.ndarray:
        """Probability that each phase is within 0.1 rad, for a Gaussian error of the 1-σ."""
        from scipy.special import erf

        return erf(0.1 / (np.sqrt(2.0) * np.maximum(self.phase_uncertainty_rad, 1e-12)))

    @property
    def modulation_confidence(self) -> np.ndarray:
        """Probability that each modulation is within 25 % of its value (Gaussian error)."""
        from scipy.special import erf

        sigma = np.maximum(self.modulation_uncertainty, 1e-12)
        return erf(0.25 * self.modulation / (np.sqrt(2.0) * sigma))

    def summary(self) -> str:
        """Describe the estimates and their confidence, one line per orientation."""
        lines = [f"{self.geometry.n_orientations} orientations × {self.geometry.n_phases} phases, "
                 f"background {self.background:.1f}"]
        for o in range(self.geometry.n_orientations):
            ky, kx = self.k_per_um[o]
            mods = ", ".join(f"m{h + 1} {m:.2f}±{u:.2f}" for h, (m, u) in enumerate(
                zip(self.modulation[o], self.modulation_uncertainty[o], strict=True)))
            phases = " ".join(f"{p:+.2f}" for p in np.angle(np.exp(1j * self.phases_rad[o])))
            lines.append(
                f"  orientation {o}: k {self.frequency_per_um[o]:.4f}/µm "
                f"(period {1e3 / self.frequency_per_um[o]:.1f} nm) at "
                f"{np.degrees(self.angles_rad[o]):.2f}° [k_y {ky:+.4f}, k_x {kx:+.4f}], "
                f"carrier contrast {self.carrier_contrast[o]:.1f} "
                f"(confidence {self.carrier_confidence[o]:.3f}); phases {phases} rad "
                f"(±{self.phase_uncertainty_rad[o].max():.3f}, confidence "
                f"{self.phase_confidence[o].min():.3f}); {mods}"
            )
        if self.joint_confidence is not None:
            spacing = 180 / self.geometry.n_orientations
            lines.append(f"  joint fit (one |k|, orientations {spacing:g}° apart): confidence "
                         f"{self.joint_confidence:.3f}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "n_orientations": self.geometry.n_orientations,
            "n_phases": self.geometry.n_phases, "harmonics": self.geometry.harmonics,
            "scale": self.geometry.scale, "shape": list(self.shape), "pixel_um": self.pixel_um,
            "background": self.background,
            "k_vectors_per_um": self.k_per_um.tolist(),
            "frequency_per_um": self.frequency_per_um.tolist(),
            "angles_rad": self.angles_rad.tolist(),
            "phases_rad": self.phases_rad.tolist(),
            "modulation": self.modulation.tolist(),
            "carrier_contrast": self.carrier_contrast.tolist(),
            "carrier_confidence": self.carrier_confidence.tolist(),
            "phase_uncertainty_rad": self.phase_uncertainty_rad.tolist(),
            "phase_confidence": self.phase_confidence.tolist(),
            "modulation_uncertainty": self.modulation_uncertainty.tolist(),
            "modulation_confidence": self.modulation_confidence.tolist(),
            "notes": list(self.notes),
            "joint_confidence": self.joint_confidence,
        }
