"""Photobleaching: each fluorophore population fades with the excitation dose it has received.

Dose, per laser line, is the light energy sent to the field: ``D`` (mJ) = laser power (mW) ×
AOTF transmission (0…1) × exposure (s). A population (the structure labelled for one line)
survives

    S(D) = (1 − f)·exp(−k₁·D) + f·exp(−k₂·D)

with a first-order rate ``k₁`` (1/mJ) and an optional slower component ``k₂`` holding the
fraction ``f``. The model is mean-field: ``S`` is the expected fraction of fluorophores still
emitting and scales the structure's density as a whole, so bleaching is deterministic (a run
repeats exactly; the camera noise keeps its own seed). The dose is taken as uniform over the
field: exact for wide-field light, and for SIM over a set, whose patterns sum to uniform
illumination. Lines are independent: a 488 nm dose bleaches only the population excited at
488 nm. A frame shows the mean survival during its own exposure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .names import Structure

__all__ = [
    "DEFAULT_BLEACHING",
    "REFERENCE_DOSE_MJ",
    "REFERENCE_PHOTONS",
    "Bleaching",
    "dose_for_photons",
    "excitation_dose_mj",
]

#: 10 mW × AOTF 100 % × 10 ms: the dose at which the demo sample shows its ``Photons``
REFERENCE_DOSE_MJ = 0.1
#: the demo sample's average photon count per raw frame at :data:`REFERENCE_DOSE_MJ`
REFERENCE_PHOTONS = 100.0


class Bleaching(BaseModel):
    """The bleaching law of one fluorophore population: S(D) = (1−f)·e^(−k₁D) + f·e^(−k₂D)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_per_mj: float = Field(0.0, ge=0, description="k₁: first-order rate (1/mJ)")
    slow_rate_per_mj: float = Field(0.0, ge=0, description="k₂: the slower component's rate")
    slow_fraction: float = Field(0.0, ge=0, le=1, description="f: fraction bleaching at k₂")

    def _parts(self) -> tuple[tuple[float, float], ...]:
        return ((1.0 - self.slow_fraction, self.rate_per_mj),
                (self.slow_fraction, self.slow_rate_per_mj))

    def survival(self, dose_mj: float) -> float:
        """Return the fraction still emitting after ``dose_mj``."""
        return float(sum(w * np.exp(-k * dose_mj) for w, k in self._parts()))

    def mean_survival(self, dose_mj: float, step_mj: float) -> float:
        """Return the mean of S over ``[dose_mj, dose_mj + step_mj]``: what one exposure shows."""
        if step_mj <= 0:
            return self.survival(dose_mj)
        total = 0.0
        for w, k in self._parts():
            x = k * step_mj
            mean_decay = 1.0 if x < 1e-12 else float(-np.expm1(-x) / x)
            total += w * float(np.exp(-k * dose_mj)) * mean_decay
        return total


#: typical laws, used when the simulated microscope's ``Bleaching`` is switched on: about half
#: of a population is left after 100–200 TIRF-SIM sets at 10 mW and 10 ms per frame
DEFAULT_BLEACHING: dict[Structure, Bleaching] = {
    "ccp": Bleaching(rate_per_mj=0.010, slow_rate_per_mj=0.002, slow_fraction=0.2),
    "er": Bleaching(rate_per_mj=0.008, slow_rate_per_mj=0.0015, slow_fraction=0.2),
    "microtubules": Bleaching(rate_per_mj=0.006, slow_rate_per_mj=0.001, slow_fraction=0.2),
    "factin": Bleaching(rate_per_mj=0.007, slow_rate_per_mj=0.0012, slow_fraction=0.2),
}


def excitation_dose_mj(power_mw: float, aotf_fraction: float, exposure_ms: float) -> float:
    """Return the dose (mJ) of one exposure: power × AOTF transmission × exposure time."""
    return max(power_mw, 0.0) * max(aotf_fraction, 0.0) * max(exposure_ms, 0.0) / 1000.0


def dose_for_photons(photons: float, photons_at_reference: float = REFERENCE_PHOTONS) -> float:
    """Return the dose (mJ) of a frame at ``photons``.

    The sample gives ``photons_at_reference`` at :data:`REFERENCE_DOSE_MJ` (by default, the
    demo sample's brightness).
    """
    return REFERENCE_DOSE_MJ * photons / photons_at_reference
