"""The detection OTF the reconstruction divides by.

A circular pupil (ideal or damped, as in :mod:`simulators.optics`) times the camera pixel's box,
or a measured radial profile.

Frequencies are in cycles per micrometre; an OTF is evaluated at any (k_y, k_x), on a grid or
shifted by a carrier, so the Wiener filter can be built in the bands' own frequency frames.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OTFModel", "SIMOptics"]


class SIMOptics(BaseModel):
    """What the reconstruction needs to know of the microscope (defaults: BioSR's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    na: float = Field(1.49, gt=0, le=1.7, description="detection numerical aperture")
    emission_um: float = Field(0.525, gt=0.2, lt=1.2, description="emission wavelength (µm)")
    pixel_um: float = Field(0.0626, gt=0.001, lt=10, description="camera pixel in the sample (µm)")
    otf_form: Literal["ideal", "damped"] = "damped"
    otf_curvature: float = Field(0.3, gt=0, le=1,
                                 description="damped OTF = ideal · curvature**(k/kc)")
    pixel_integration: bool = Field(True, description="include the camera pixel's box (sinc)")

    @property
    def cutoff_per_um(self) -> float:
        """Detection cutoff 2·NA/λ_em (cycles/µm)."""
        return 2.0 * self.na / self.emission_um


class OTFModel:
    """The detection OTF at arbitrary frequencies (cycles/µm), 1 at k = 0.

    ``measured``: an optional radial profile ``(k_per_um, values)`` that replaces the pupil
    model (it is interpolated and set to 0 beyond its last frequency).
    """

    def __init__(self, optics: SIMOptics,
                 measured: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.optics = optics
        self.measured = None
        if measured is not None:
            k, values = (np.asarray(a, dtype=np.float64).ravel() for a in measured)
            if k.shape != values.shape or k.size < 2 or np.any(np.diff(k) <= 0):
                raise ValueError("measured OTF: needs increasing frequencies and as many values")
            self.measured = (k, values / values[0])

    @property
    def cutoff_per_um(self) -> float:
        """Cutoff (cycles/µm): the measured profile's last frequency, else the optics' 2·NA/λ_em."""
        if self.measured is not None:
            return float(self.measured[0][-1])
        return self.optics.cutoff_per_um

    def radial(self, k_per_um: np.ndarray) -> np.ndarray:
        """Evaluate the rotationally symmetric part at radial frequencies ``k_per_um``."""
        k = np.asarray(k_per_um, dtype=np.float64)
        if self.measured is not None:
            kk, values = self.measured
            return np.interp(k, kk, values, right=0.0)
        rho = np.clip(k / self.optics.cutoff_per_um, 0.0, 1.0)
        otf = (2.0 / np.pi) * (np.arccos(rho) - rho * np.sqrt(1.0 - rho**2))
        if self.optics.otf_form == "damped":
            otf = otf * self.optics.otf_curvature**rho
        return otf

    def __call__(self, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
        """Evaluate the OTF at (``ky``, ``kx``) (broadcast).

        Times the camera pixel's box when the optics ask for it (``pixel_integration``).
        """
        otf = self.radial(np.hypot(ky, kx))
        if self.optics.pixel_integration:
            p = self.optics.pixel_um
            otf = otf * np.sinc(ky * p) * np.sinc(kx * p)
        return otf
