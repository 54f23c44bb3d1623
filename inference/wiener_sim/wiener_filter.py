"""Band separation, shifting and generalised Wiener combination, on NumPy or PyTorch arrays.

Everything that depends only on the calibration is computed once in a
:class:`ReconstructionPlan`: the separation matrices; each band's filter, applied in the band's
own frequency frame: the numerator of the generalised Wiener filter (the conjugate of its OTF
times its amplitude, and the zero-order notch) times the post-filter taken where the band lands
once shifted (the Gaussian apodization over the reconstructed OTF support divided by the Wiener
denominator ``Σ|OTF_m(k + m·p)|² + w²``, zero outside the support); and the phase ramps that
shift the bands in real space. The frames are multiplied by ``(−1)^(y+x)`` with their edge taper,
so their spectra come out centred and each band is zero-padded by one copy into the corner of a
reused buffer (the ramps undo the half-grid shift). A set then costs its frames' FFTs, one small
matrix product, one inverse FFT on the output grid per band pair and for the summed zero orders,
and one real FFT pair that cuts the result back to the support (the ramps' edge taper spreads
each band a little beyond it).

Output pixel (0, 0) covers the top-left scale × scale part of camera pixel (0, 0), as in the
simulator's ground truth and DFCAN's depth-to-space.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft as sfft
from pydantic import BaseModel, ConfigDict, Field

from inference.wiener_sim.bands import edge_window, frequency_grid, pad_spectrum, separation_matrix

if TYPE_CHECKING:
    from inference.wiener_sim.calibration import SIMCalibration
    from inference.wiener_sim.otf import OTFModel

__all__ = ["NumpyBackend", "ReconstructionPlan", "TorchBackend", "WienerSettings",
           "upsample_widefield"]


class WienerSettings(BaseModel):
    """Filter settings of the reconstruction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wiener: float = Field(0.1, gt=0, description="Wiener parameter w (denominator + w²)")
    apodization_edge: float = Field(
        0.1, gt=0, lt=1,
        description="Gaussian apodization: its value at the edge of the reconstructed OTF "
                    "support (0 beyond)")
    notch_strength: float = Field(0.9, ge=0, le=1,
                                  description="depth of the zero-order notch (0: none)")
    notch_width: float = Field(0.1, gt=0, le=1,
                               description="Gaussian σ of the notch, fraction of the cutoff")
    taper_px: int = Field(8, ge=0, description="cosine edge taper of the raw frames (pixels)")


class NumpyBackend:
    """SciPy FFTs on NumPy arrays (CPU)."""

    name = "numpy"

    def __init__(self, workers: int = -1) -> None:
        self.workers = workers

    def array(self, value: np.ndarray) -> Any:
        """Return a constant (window, filter, ramp) as-is."""
        return value

    def frames(self, frames: np.ndarray) -> Any:
        """Return the raw frames as float32."""
        return np.asarray(frames, dtype=np.float32)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        """Return a complex64 array of zeros."""
        return np.zeros(shape, np.complex64)

    def fft2(self, x: Any) -> Any:
        """Compute the FFT over the last two axes."""
        return sfft.fft2(x, workers=self.workers)


    def rfft2(self, x: Any) -> Any:
        """Compute the real FFT over the last two axes."""
        return sfft.rfft2(x, workers=self.workers)

    def ifft2(self, x: Any) -> Any:
        """Inverse FFT over the last two axes into a new array (``x`` is kept)."""
        return sfft.ifft2(x, workers=self.workers)

    def separate(self, separation: Any, frames: Any) -> Any:
        """Complex ``separation`` (o, m, p) @ real ``frames`` (o, p, n) → (o, m, n)."""
        return separation @ frames

    def concat(self, arrays: list[Any]) -> Any:
        """Concatenate along the first axis."""
        return np.concatenate(arrays)

    def combine(self, images: Any, ramp_y: Any, ramp_x: Any) -> Any:
        """``Re(Σ_b images[b] · ramp_y[b][:, None] · ramp_x[b][None, :])``, (H, W) float32.

        ``images`` is overwritten.
        """
        images *= ramp_x[:, None, :]
        total = images[0] * ramp_y[0][:, None]
        term = np.empty_like(total)
        for image, ramp in zip(images[1:], ramp_y[1:], strict=True):
            np.multiply(image, ramp[:, None], out=term)
            total += term
        return total.real

    def irfft2(self, x: Any, shape: tuple[int, int]) -> Any:
        """Invert a real FFT over the last two axes, to ``shape`` (``x`` may be overwritten)."""
        return sfft.irfft2(x, s=shape, workers=self.workers, overwrite_x=True)

    def numpy(self, x: Any) -> np.ndarray:
        """Return ``x`` as a NumPy array."""
        return np.asarray(x)


class TorchBackend:
    """torch.fft on a device (a CUDA GPU, or the CPU)."""

    name = "torch"

    def __init__(self, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def array(self, value: np.ndarray) -> Any:
        """Return a constant (window, filter, ramp) as a tensor on the device."""
        return self.torch.as_tensor(value, device=self.device)

    def frames(self, frames: np.ndarray) -> Any:
        """Return the raw frames as a float32 tensor on the device (uint16 widened on the host)."""
        if isinstance(frames, self.torch.Tensor):
            return frames.to(self.device, self.torch.float32)
        array = np.asarray(frames)
        if array.dtype == np.uint16:  # torch has no uint16 arithmetic: widen on the host
            array = array.astype(np.int32)
        return self.torch.as_tensor(array, device=self.device).to(self.torch.float32)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        """Return a complex64 tensor of zeros on the device."""
        return self.torch.zeros(shape, dtype=self.torch.complex64, device=self.device)

    def fft2(self, x: Any) -> Any:
        """Compute the FFT over the last two axes."""
        return self.torch.fft.fft2(x)


    def rfft2(self, x: Any) -> Any:
        """Compute the real FFT over the last two axes."""
        return self.torch.fft.rfft2(x)

    def ifft2(self, x: Any) -> Any:
        """Inverse FFT over the last two axes into a new tensor (``x`` is kept)."""
        return self.torch.fft.ifft2(x)

    def separate(self, separation: Any, frames: Any) -> Any:
        """Complex ``separation`` (o, m, p) @ real ``frames`` (o, p, n) → (o, m, n)."""
        return self.torch.complex(separation.real @ frames, separation.imag @ frames)

    def concat(self, arrays: list[Any]) -> Any:
        """Concatenate along the first axis."""
        return self.torch.cat(arrays)

    def combine(self, images: Any, ramp_y: Any, ramp_x: Any) -> Any:
        """``Re(Σ_b images[b] · ramp_y[b][:, None] · ramp_x[b][None, :])``, (H, W) float32.

        ``images`` is overwritten.
        """
        images.mul_(ramp_x[:, None, :])
        total = images[0] * ramp_y[0][:, None]
        for image, ramp in zip(images[1:], ramp_y[1:], strict=True):
            total.addcmul_(image, ramp[:, None])
        return total.real

    def irfft2(self, x: Any, shape: tuple[int, int]) -> Any:
        """Invert a real FFT over the last two axes, to ``shape``."""
        return self.torch.fft.irfft2(x, s=shape)

    def numpy(self, x: Any) -> np.ndarray:
        """Return ``x`` as a NumPy array on the host."""
        return x.detach().cpu().numpy()


Backend = NumpyBackend | TorchBackend


class ReconstructionPlan:
    """A calibration turned into filters for one image size; :meth:`apply` reconstructs a set."""

    def __init__(self, calibration: SIMCalibration, otf: OTFModel,
                 settings: WienerSettings | None = None, backend: Backend | None = None) -> None:
        self.calibration = calibration
        self.settings = settings = settings or WienerSettings()
        self.backend = backend or NumpyBackend()
        geo = calibration.geometry
        h, w = calibration.shape
        s, harm, p = geo.scale, geo.harmonics, calibration.pixel_um
        self.out_shape = (h * s, w * s)
        cutoff = otf.cutoff_per_um
        k = calibration.k_per_um
        # every band (o, m), m = −M…M: its carrier m·k_o and complex amplitude
        centres, amplitudes = [], []
        for o in range(geo.n_orientations):
            for m in range(-harm, harm + 1):
                centres.append(m * k[o])
                a = 1.0 + 0j if m == 0 else calibration.amplitudes[o, abs(m) - 1]
                amplitudes.append(a if m >= 0 else np.conj(a))

        def notch(ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
            sigma = settings.notch_width * cutoff
            return 1.0 - settings.notch_strength * np.exp(-(ky**2 + kx**2) / (2 * sigma**2))

        def transfer(index: int, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
            """Band ``index``'s effective OTF at sample frequency (ky, kx)."""
            cy, cx = centres[index]
            t = amplitudes[index] * otf(ky + cy, kx + cx)
            return t * notch(ky + cy, kx + cx) if not centres[index].any() else t

        def denominator(ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
            total = np.full(np.broadcast_shapes(ky.shape, kx.shape), settings.wiener**2)
            for i in range(len(centres)):
                total = total + np.abs(transfer(i, ky, kx)) ** 2
            return total

        support = _support_radius(np.array(centres), cutoff)
        log_edge = np.log(settings.apodization_edge)

        def apodization(ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
            kr = np.hypot(ky, kx)
            edge = support(ky, kx)
            return np.where(kr < edge, np.exp(log_edge * (kr / edge) ** 2), 0.0)

        kyc, kxc = frequency_grid((h, w), p)
        delta = (s - 1) / (2 * s) * p  # output origin: up-left of camera pixel (0, 0)'s centre
        origin = np.exp(-2j * np.pi * (kyc + kxc) * delta)
        def postfilter(ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
            result: np.ndarray = apodization(ky, kx) / denominator(ky, kx)
            return result

        prefilters = np.zeros((geo.n_orientations, harm + 1, h, w), complex)
        for o in range(geo.n_orientations):
            for m in range(harm + 1):
                index = o * (2 * harm + 1) + harm + m
                cy, cx = centres[index]
                data_notch = notch(kyc, kxc) if m == 0 else 1.0
                # band m at its own frequency f' holds the sample at f = f' − m·k, where the
                # shift puts it: the post-filter is taken there
                prefilters[o, m] = (np.conj(transfer(index, kyc - cy, kxc - cx)) * data_notch
                                    * origin * s**2 * postfilter(kyc - cy, kxc - cx))
        phases = calibration.phases_rad
        separation = np.stack([separation_matrix(phases[o], harm)
                               for o in range(geo.n_orientations)])
        y = np.arange(h * s) * p / s - delta
        x = np.arange(w * s) * p / s - delta
        shifts = np.array([m * k[o] for o in range(geo.n_orientations)
                           for m in range(1, harm + 1)])
        self.support_per_um = float(support(np.zeros(1), np.array([1e-9]))[0])
        b = self.backend
        # (−1)^(y+x) centres the frames' spectra (index 0 holds −h/2): the bands can then be
        # zero-padded at the end by the inverse FFTs, which the ramps' (−h/2, −w/2) shift undoes
        checker = np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2, -1.0, 1.0)
        self._window = b.array((edge_window((h, w), settings.taper_px) * checker)
                               .astype(np.float32))
        self._separation = b.array(separation.astype(np.complex64))
        # the summed zero orders (one filter: every orientation's is the same), then the side
        # bands, centred
        band_filters = np.concatenate([prefilters[:1, 0],
                                       prefilters[:, 1:].reshape(-1, h, w)])
        self._band_filters = b.array(np.fft.fftshift(band_filters, axes=(-2, -1))
                                     .astype(np.complex64))
        # the ramps fall to 0 at the borders with the frames' taper: a shifted band is then
        # continuous across the FFT's wrap-around, so its spectrum does not leak
        taper = edge_window(self.out_shape, settings.taper_px * s)
        taper_y, taper_x = taper[:, w * s // 2], taper[h * s // 2, :]
        recentre_y = np.exp(-2j * np.pi * (h // 2) * np.arange(h * s) / (h * s))
        recentre_x = np.exp(-2j * np.pi * (w // 2) * np.arange(w * s) / (w * s))
        # row 0: the summed zero orders (real part once); then each side band (twice: + its
        # conjugate, the −m band)
        ramp_y = np.concatenate([np.ones((1, h * s)),
                                 2 * np.exp(-2j * np.pi * shifts[:, :1] * y) * taper_y])
        ramp_x = np.concatenate([np.ones((1, w * s)),
                                 np.exp(-2j * np.pi * shifts[:, 1:] * x) * taper_x])
        self._ramp_y = b.array((ramp_y * recentre_y).astype(np.complex64))
        self._ramp_x = b.array((ramp_x * recentre_x).astype(np.complex64))
        self._background = float(calibration.background)
        self._padded: Any = None  # the zero-padded bands' buffer, made at the first set
        # the edge taper spreads each band a little: cut the result back to the support
        kyo, kxo = frequency_grid(self.out_shape, p / s)
        kxo = kxo[:, : self.out_shape[1] // 2 + 1]
        self._support = b.array((np.hypot(kyo, kxo) < support(kyo, kxo)).astype(np.float32))

    def apply(self, frames: Any, corrections: np.ndarray | None = None) -> Any:
        """One raw set (n, H, W) → the reconstruction (H·s, W·s), float32, on the backend.

        ``corrections``: complex factors ``(n_orientations, harmonics)`` for the side bands of
        this set, e.g. :meth:`~inference.wiener_sim.phase_tracking.PhaseDrift.corrections` to
        undo a phase drift since the calibration.
        """
        b, geo = self.backend, self.calibration.geometry
        n_o, n_p, harm = geo.n_orientations, geo.n_phases, geo.harmonics
        x = b.frames(frames)
        h, w = x.shape[-2:]
        separation = self._separation
        if corrections is not None:
            factors = np.ones((n_o, harm + 1, 1), np.complex64)
            factors[:, 1:, 0] = np.asarray(corrections, np.complex64).reshape(n_o, harm)
            separation = separation * b.array(factors)
        # the FFT is linear: separate the bands in real space, then transform the summed zero
        # orders (the same filter for every orientation) and each side band, not every frame.
        # A row m ≥ 1 of the separation sums to 0 and row 0 to 1: the background only shifts
        # the zero orders.
        separated = b.separate(separation, x.reshape(n_o, n_p, h * w))
        zero = separated[:, 0].sum(0) - n_o * self._background
        bands = b.concat([zero[None], separated[:, 1:].reshape(n_o * harm, h * w)])
        spectra = b.fft2(bands.reshape(-1, h, w) * self._window) * self._band_filters
        # centred spectra zero-padded at the end: the top-left corner of a zero buffer
        if self._padded is None:
            self._padded = b.zeros((1 + n_o * harm, *self.out_shape))
        padded = self._padded
        padded[:, :h, :w] = spectra
        images = b.ifft2(padded)
        combined = b.combine(images, self._ramp_y, self._ramp_x)
        return b.irfft2(b.rfft2(combined) * self._support, self.out_shape)

    def reconstruct(self, frames: Any, corrections: np.ndarray | None = None) -> np.ndarray:
        """:meth:`apply`, returned as a NumPy float32 array."""
        return self.backend.numpy(self.apply(frames, corrections)).astype(np.float32,
                                                                           copy=False)


def _support_radius(centres: np.ndarray, cutoff: float) -> Any:
    """Return the reconstructed OTF support's radius along each direction, as a function.

    The radius is the farthest edge of the discs |f + c| < cutoff, c = −(band centre), crossed
    by the ray from 0.
    """

    def radius(ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
        kr = np.maximum(np.hypot(ky, kx), 1e-12)
        uy, ux = ky / kr, kx / kr
        best = np.zeros(np.broadcast_shapes(ky.shape, kx.shape))
        for cy, cx in -centres:
            along = cy * uy + cx * ux
            disc = cutoff**2 - (cy**2 + cx**2) + along**2
            reach = np.where(disc >= 0, along + np.sqrt(np.maximum(disc, 0.0)), 0.0)
            best = np.maximum(best, reach)
        return best

    return radius


def upsample_widefield(frames: np.ndarray, scale: int, background: float = 0.0) -> np.ndarray:
    """Upsample the wide-field (mean of the frames, less ``background``) to the ``scale``× grid.

    By Fourier interpolation, with the same pixel placement and intensity scale as the SIM output.
    """
    stack = np.asarray(frames, dtype=np.float64)
    wf = (stack.mean(axis=0) if stack.ndim == 3 else stack) - background
    h, w = wf.shape
    p = 1.0
    ky, kx = frequency_grid((h, w), p)
    delta = (scale - 1) / (2 * scale) * p
    spectrum = sfft.fft2(wf) * np.exp(-2j * np.pi * (ky + kx) * delta) * scale**2
    big = pad_spectrum(spectrum, np.zeros((h * scale, w * scale), complex))
    return sfft.ifft2(big).real.astype(np.float32)

