"""An sCMOS camera: ADU = gain·Poisson(QE·photons) + offset + N(0, σ_read²), clipped.

Per-pixel offset, gain and read-noise maps are drawn once from the camera's own seed (fixed
pattern). Photon counts here follow BioSR: ``photons = (ADU − offset) / (gain · QE)``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable


class CameraModel(BaseModel):
    """Noise parameters of the simulated sCMOS camera."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    qe: float = Field(0.8, gt=0, le=1, description="quantum efficiency")
    gain: float = Field(2.0, gt=0, description="ADU per photo-electron")
    offset: float = Field(100.0, ge=0, description="mean dark level (ADU)")
    read_noise_e: float = Field(1.5, ge=0, description="median read noise (e⁻ rms)")
    bit_depth: int = Field(16, ge=8, le=16)
    offset_spread: float = Field(1.0, ge=0, description="pixel-to-pixel offset spread (ADU)")
    gain_spread: float = Field(0.01, ge=0, description="pixel-to-pixel relative gain spread")
    fixed_pattern_seed: int = 1234

    @property
    def max_adu(self) -> int:
        """The largest camera count, ``2**bit_depth − 1``."""
        return 2**self.bit_depth - 1

    def pixel_maps(self, shape: tuple[int, int]) -> PixelMaps:
        """Return the camera's per-pixel offset, gain and read-noise maps for a sensor ``shape``."""
        return PixelMaps.draw(self, shape)

    def photons_from_adu(self, adu: np.ndarray) -> np.ndarray:
        """Photons per pixel from camera counts (BioSR's convention)."""
        return (np.asarray(adu, dtype=np.float32) - self.offset) / (self.gain * self.qe)


class PixelMaps:
    """Fixed-pattern maps of one sensor (float32, sensor shape)."""

    def __init__(self, offset: np.ndarray, gain: np.ndarray, read_sigma_adu: np.ndarray,
                 model: CameraModel) -> None:
        self.offset, self.gain, self.read_sigma_adu = offset, gain, read_sigma_adu
        self.model = model

    @classmethod
    def draw(cls, model: CameraModel, shape: tuple[int, int]) -> PixelMaps:
        """Draw the maps of ``model`` for a sensor ``shape`` (from ``fixed_pattern_seed``)."""
        rng = np.random.default_rng(model.fixed_pattern_seed)
        offset = model.offset + model.offset_spread * rng.standard_normal(shape)
        gain = model.gain * (1 + model.gain_spread * rng.standard_normal(shape))
        # sCMOS read noise: log-normal around the median with a tail of noisy pixels
        read_e = model.read_noise_e * rng.lognormal(0.0, 0.25, shape)
        return cls(offset.astype(np.float32), gain.astype(np.float32),
                   (read_e * gain).astype(np.float32), model)

    def crop(self, y: int, x: int, h: int, w: int) -> PixelMaps:
        """Return the maps of the ``h``×``w`` part of the sensor at row ``y``, column ``x``."""
        sl = np.s_[y:y + h, x:x + w]
        return PixelMaps(self.offset[sl], self.gain[sl], self.read_sigma_adu[sl], self.model)

    def expose(self, photons: np.ndarray, rng: np.random.Generator,
               out: np.ndarray | None = None) -> np.ndarray:
        """Exact noise: Poisson photo-electrons, Gaussian read noise, clipped uint16 ADU."""
        electrons = rng.poisson(np.clip(photons, 0, None) * self.model.qe).astype(np.float32)
        adu = electrons * self.gain + self.offset
        adu += self.read_sigma_adu * rng.standard_normal(photons.shape, dtype=np.float32)
        return _to_uint16(adu, self.model.max_adu, out)


class Moments(NamedTuple):
    """Per-pixel mean and σ of a frame's camera counts (float32 ADU)."""

    mean: np.ndarray
    sigma: np.ndarray
    clip: bool  # whether a draw can leave [0, max ADU]


class FastNoise:
    """Real-time noise: shot and read noise together as one Gaussian per pixel.

    Its variance is gain²·QE·photons + σ_read² (exact in mean and variance), over the pixel
    maps' offsets.

    The normal deviates are a frame-sized window at a random row and column offset into a
    pre-drawn bank a little larger than the frame, with a random sign: about a million
    distinct noise fields at 512², so frames of one SIM set practically never share one. A
    frame whose expected photons were seen before (a static sample under a repeating pattern)
    reuses its per-pixel mean and σ from a cache (:meth:`expose_key`), leaving two passes over
    the frame and the uint16 conversion; frames too large for the cache to hold a 25-pattern
    set are not cached.

    Use ``PixelMaps.expose`` where exact Poisson statistics matter (training data, analysis).
    """

    MARGIN = 128  # extra rows and columns in the bank: 129² offsets per bank field
    MIN_CACHED = 27

    def __init__(self, maps: PixelMaps, rng: np.random.Generator, bank_bytes: int = 64 << 20,
                 cache_bytes: int = 256 << 20):
        self.shape = h, w = maps.offset.shape
        n = int(np.clip(bank_bytes // (4 * (h + self.MARGIN) * (w + self.MARGIN)), 2, 32))
        self.maps, self.rng = maps, rng
        self.bank = rng.standard_normal((n, h + self.MARGIN, w + self.MARGIN),
                                        dtype=np.float32)
        qe, gain = np.float32(maps.model.qe), maps.gain
        self._adu_per_photon = gain * qe
        self._shot_var_per_photon = gain * gain * qe
        self._read_var = maps.read_sigma_adu * maps.read_sigma_adu
        self._offset_rounding = maps.offset + np.float32(0.5)  # the uint16 cast truncates
        self._work = np.empty(self.shape, np.float32)
        self._z_max = float(np.abs(self.bank).max())  # no deviate drawn is larger
        self._moments: OrderedDict[Hashable, Moments] = OrderedDict()
        entries = cache_bytes // (2 * 4 * h * w)
        # fewer entries than a 25-pattern set, its WF and the dark would only thrash
        self._cache_entries = entries if entries >= self.MIN_CACHED else 0

    def _window(self) -> np.ndarray:
        k = self.rng.integers(len(self.bank))
        dy, dx = self.rng.integers(0, self.MARGIN + 1, size=2)
        return self.bank[k, dy:dy + self.shape[0], dx:dx + self.shape[1]]

    def moments(self, photons: np.ndarray, check_range: bool = True) -> Moments:
        """Return per-pixel mean ADU (plus ½ for rounding) and σ in ADU for expected ``photons``.

        Also whether a draw from the bank can leave the ADU range (clipping is skipped if not;
        the check costs more than one clip, so ``check_range=False`` for moments used once).
        """
        p = np.maximum(photons, 0, dtype=np.float32)
        mean = p * self._adu_per_photon
        mean += self._offset_rounding
        sigma = p * self._shot_var_per_photon
        sigma += self._read_var
        np.sqrt(sigma, out=sigma)
        if not check_range:
            return Moments(mean, sigma, clip=True)
        reach = sigma * np.float32(self._z_max)
        low, high = (mean - reach).min(), (mean + reach).max()
        return Moments(mean, sigma, clip=bool(low < 0 or high >= self.maps.model.max_adu))

    def expose(self, photons: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Camera counts (uint16) for expected ``photons`` (≥ 0) per pixel."""
        return self._draw(self.moments(photons, check_range=False), out)

    def expose_key(self, key: Hashable, photons: Callable[[], np.ndarray],
                   out: np.ndarray | None = None) -> np.ndarray:
        """Expose as :meth:`expose`, for the expected photons that ``key`` names.

        ``photons()`` is called only when ``key`` is not among the last frames' cached moments.
        """
        moments = self._moments.get(key)
        if moments is None:
            moments = self.moments(photons(), check_range=bool(self._cache_entries))
            if self._cache_entries:
                self._moments[key] = moments
                if len(self._moments) > self._cache_entries:
                    self._moments.popitem(last=False)
        else:
            self._moments.move_to_end(key)
        return self._draw(moments, out)

    def _draw(self, moments: Moments, out: np.ndarray | None) -> np.ndarray:
        e = self._work
        np.multiply(self._window(), moments.sigma, out=e)
        if self.rng.integers(2):
            e += moments.mean
        else:
            np.subtract(moments.mean, e, out=e)
        if moments.clip:
            np.clip(e, 0, self.maps.model.max_adu, out=e)
        if out is None:
            out = np.empty(self.shape, np.uint16)
        np.copyto(out, e, casting="unsafe")
        return out


def _to_uint16(adu: np.ndarray, max_adu: int, out: np.ndarray | None) -> np.ndarray:
    np.clip(adu, 0, max_adu, out=adu)
    np.rint(adu, out=adu)
    if out is None:
        return adu.astype(np.uint16)
    out[...] = adu
    return out
