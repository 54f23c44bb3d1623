"""Microscope optics: the incoherent OTF for a numerical aperture and wavelength.

Defaults are BioSR's microscope (Qiao et al. 2021): camera pixel 62.6 nm, NA 1.49, 488 nm
excitation with ~525 nm emission. Frequencies are in cycles per nanometre unless a name says
otherwise; lengths in nanometres.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.fft as sfft
from pydantic import BaseModel, ConfigDict, Field

from .names import EMISSION_NM

__all__ = ["EMISSION_NM", "Optics", "apply_otf", "bin_pixels", "incoherent_otf",
           "radial_frequency"]

OTFForm = Literal["ideal", "damped"]


class Optics(BaseModel):
    """Detection optics and camera sampling of the simulated SIM microscope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    na: float = Field(1.49, gt=0, le=1.7, description="detection numerical aperture")
    excitation_nm: float = Field(488.0, gt=200, lt=1200)
    emission_nm: float = Field(525.0, gt=200, lt=1200)
    camera_pixel_nm: float = Field(62.6, gt=1, description="pixel size in the sample plane")
    otf_form: OTFForm = "damped"
    otf_curvature: float = Field(
        0.3, gt=0, le=1, description="damped OTF = ideal · curvature**(k/kc) (fairSIM's form)"
    )

    @classmethod
    def for_line(cls, laser_nm: int, **overrides: float | str) -> Optics:
        """Optics for one of the laser lines 405 / 488 / 560 nm with its emission."""
        if laser_nm not in EMISSION_NM:
            raise ValueError(f"no emission known for a {laser_nm} nm line: use one of "
                             f"{sorted(EMISSION_NM)}")
        params: dict[str, object] = {
            "excitation_nm": float(laser_nm), "emission_nm": EMISSION_NM[laser_nm], **overrides
        }
        return cls.model_validate(params)

    @property
    def cutoff_per_nm(self) -> float:
        """Detection OTF cutoff 2·NA/λ_em (cycles/nm)."""
        return 2.0 * self.na / self.emission_nm

    @property
    def abbe_limit_nm(self) -> float:
        """Resolution limit of wide-field detection, λ_em / (2·NA)."""
        return 1.0 / self.cutoff_per_nm


def radial_frequency(shape: tuple[int, int], pixel_nm: float) -> np.ndarray:
    """|k| (cycles/nm) on the unshifted FFT grid of an image of ``shape``."""
    ky = sfft.fftfreq(shape[0], d=pixel_nm)
    kx = sfft.fftfreq(shape[1], d=pixel_nm)
    return np.hypot(ky[:, None], kx[None, :])


def incoherent_otf(
    shape: tuple[int, int],
    pixel_nm: float,
    cutoff_per_nm: float,
    form: OTFForm = "ideal",
    curvature: float = 0.3,
) -> np.ndarray:
    """Incoherent OTF of a circular pupil on the unshifted FFT grid, normalised to 1 at k=0.

    ``ideal``: (2/π)(acos ρ − ρ√(1−ρ²)), ρ = k/k_c. ``damped``: the ideal OTF times
    ``curvature**ρ``, the usual model of a real objective's mid-frequency loss.
    """
    rho = np.clip(radial_frequency(shape, pixel_nm) / cutoff_per_nm, 0.0, 1.0)
    otf = (2.0 / np.pi) * (np.arccos(rho) - rho * np.sqrt(1.0 - rho**2))
    if form == "damped":
        otf = otf * curvature**rho
    return otf.astype(np.float32)


def apply_otf(image: np.ndarray, otf: np.ndarray) -> np.ndarray:
    """Blur ``image`` (2-D, or a stack of 2-D) with ``otf`` (unshifted, full FFT grid)."""
    shape = image.shape[-2:]
    half_otf = otf[..., : shape[1] // 2 + 1]
    # one FFT worker: scipy's worker pool, used from several threads, aborts the process at exit
    # ("exception not rethrown"); the bench renders on its own thread
    spectrum = sfft.rfft2(image, workers=1)
    spectrum *= half_otf
    return sfft.irfft2(spectrum, s=shape, workers=1).astype(np.float32)


def bin_pixels(image: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor``×``factor`` blocks of the last two axes (pixel integration)."""
    if factor == 1:
        return image
    *lead, h, w = image.shape
    if h % factor or w % factor:
        raise ValueError(f"shape {h}×{w} is not divisible by the binning factor {factor}")
    blocks = image.reshape(*lead, h // factor, factor, w // factor, factor)
    return blocks.sum(axis=(-3, -1))
