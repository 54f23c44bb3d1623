"""How far to trust one DFCAN SR image: signals computed live from the raw set and its output.

Each signal is a number per set, **higher = more trustworthy**:

- ``agreement``: the normalised correlation of the DFCAN output with a Wiener-SIM reconstruction
  of the same set, both band-limited to the frequencies both support
  (:data:`AGREEMENT_BAND` × the detection cutoff k_c, DC excluded). A correlation is
  invariant to an affine intensity change, so it compares structure, not scaling.
- ``agreement-high``: the same in the band only SIM reaches (:data:`HIGH_BAND` × k_c).
- ``dose``: 1 − the DFCAN-SIM NRMSE the evaluation matrix predicts for the set's average photon
  count (:class:`~inference.evaluation.dose_advisor.DoseAdvisor`, the channel's structure).
- ``spectrum``: the raw set's input spectrum, log10 of the wide field's power at low
  frequencies (0.05–0.5 k_c) over its noise floor beyond the OTF (> 1.1 k_c): how far the set
  stands above its noise (simulated sets at 10–600 photons span about 1.5–4.5 at 64²).
- ``combined``: ``atanh(agreement) + 0.5 · spectrum`` (:func:`combine`): the two measure
  different failures (a network that departs from the data; a set too noisy to judge by).
  The weight was set after the first held-out measurement and checked on a second.

Which predicts the DFCAN NRMSE best on held-out sets is measured by ``benchmarks/bench_trust.py``;
:data:`DEFAULT_SIGNAL` is that one. :class:`TrustMeter` measures a chosen signal per set, cheaply
enough for live use (one Wiener-SIM of the set and two FFTs at the SR size for ``agreement``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

if TYPE_CHECKING:
    from inference.metrics.photons import PhotonConverter
    from inference.reconstructor import Reconstructor
    from inference.wiener_sim.otf import SIMOptics

__all__ = [
    "AGREEMENT_BAND",
    "DEFAULT_SIGNAL",
    "HIGH_BAND",
    "SIGNALS",
    "SPECTRUM_WEIGHT",
    "Signal",
    "TrustMeter",
    "TrustReading",
    "band_agreement",
    "combine",
    "spectral_snr",
]

Signal = Literal["combined", "agreement", "agreement-high", "dose", "spectrum"]
SIGNALS: tuple[str, ...] = get_args(Signal)
#: the signal that ranked held-out sets by DFCAN NRMSE best (benchmarks/bench_trust.py)
DEFAULT_SIGNAL: Signal = "combined"
#: ``combined``: the weight of ``spectrum`` against ``atanh(agreement)``
SPECTRUM_WEIGHT = 0.5
#: the band both DFCAN and Wiener-SIM support, in units of the detection cutoff k_c
AGREEMENT_BAND = (0.05, 1.8)
#: the band beyond the wide field that only SIM (and the network) reach, in units of k_c
HIGH_BAND = (1.0, 1.8)
#: edge taper (fraction of the side) against the FFT's wrap-around
_TAPER = 1 / 16


@dataclass(frozen=True)
class TrustReading:
    """One set's trust, and the Wiener-SIM image it was measured against (if any)."""

    value: float
    signal: str
    #: the Wiener-SIM reconstruction of the set, float32 in [0, 1] (``agreement`` signals)
    reference: np.ndarray | None = None


def _tapered_spectrum(image: np.ndarray) -> np.ndarray:
    from inference.wiener_sim.bands import edge_window

    x = np.asarray(image, dtype=np.float32)
    x = x - float(x.mean())
    window = edge_window(x.shape, max(1, int(min(x.shape) * _TAPER)))
    return np.fft.rfft2(x * window)


def _radius_in_cutoffs(shape: tuple[int, ...], pixel_um: float,
                       cutoff_per_um: float) -> np.ndarray:
    """|k| / k_c on the real-FFT grid of an image of ``shape`` (pixel ``pixel_um``)."""
    ky = np.fft.fftfreq(shape[0], d=pixel_um)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_um)[None, :]
    radius: np.ndarray = np.hypot(ky, kx) / cutoff_per_um
    return radius


def band_agreement(sr: np.ndarray, reference: np.ndarray, pixel_um: float, cutoff_per_um: float,
                   band: tuple[float, float] = AGREEMENT_BAND) -> float:
    """Normalised correlation of two images of one grid within ``band`` × ``cutoff_per_um``.

    ``pixel_um``: the images' pixel (the SR grid's). 1: identical up to an affine intensity
    change in that band; 0: unrelated.
    """
    if sr.shape != reference.shape:
        raise ValueError(f"band_agreement: shapes differ, {sr.shape} and {reference.shape}")
    a, b = _tapered_spectrum(sr), _tapered_spectrum(reference)
    k = _radius_in_cutoffs(sr.shape, pixel_um, cutoff_per_um)
    mask = (k >= band[0]) & (k <= band[1])
    # the half-spectrum counts the other half's conjugates once: weights cancel in the ratio
    aa, bb = a[mask], b[mask]
    cross = float(np.sum((aa * np.conj(bb)).real))
    norm = float(np.sqrt(np.sum(np.abs(aa) ** 2) * np.sum(np.abs(bb) ** 2)))
    return cross / norm if norm > 0 else 0.0


def combine(agreement: float, spectrum: float) -> float:
    """Return the ``combined`` signal: ``atanh(agreement) + SPECTRUM_WEIGHT · spectrum``."""
    return float(np.arctanh(np.clip(agreement, -0.999, 0.999)) + SPECTRUM_WEIGHT * spectrum)


def spectral_snr(frames: np.ndarray, pixel_um: float, cutoff_per_um: float) -> float:
    """log10 of the wide field's mean power at 0.05–0.5 k_c over its noise floor beyond 1.1 k_c."""
    stack = np.asarray(frames, dtype=np.float32)
    wf = stack.mean(axis=0) if stack.ndim == 3 else stack
    power = np.abs(_tapered_spectrum(wf)) ** 2
    k = _radius_in_cutoffs(wf.shape, pixel_um, cutoff_per_um)
    signal = power[(k >= 0.05) & (k <= 0.5)]
    noise = power[k > 1.1]
    if signal.size == 0 or noise.size == 0:
        raise ValueError(f"spectral_snr: a {wf.shape} image at {pixel_um} µm has no band beyond "
                         "1.1 k_c")
    return float(np.log10(max(float(signal.mean()), 1e-30) / max(float(noise.mean()), 1e-30)))


class TrustMeter:
    """Measure one signal of trust per set, from the raw set and its DFCAN SR image.

    Parameters
    ----------
    signal
        One of :data:`SIGNALS`.
    frames_per_set
        Raw frames per set (9 or 25): the Wiener-SIM geometry of ``agreement``.
    structure
        ``dose``: the evaluation matrix's row (``None``: the mean over its structures).
    camera
        ``dose``: counts to photons (``None``: the simulated camera's defaults).
    optics
        The microscope (pixel, NA, emission; default BioSR's, the simulated microscope's).
    wiener
        ``agreement``: the Wiener-SIM to compare against (default: one that estimates the
        pattern from the first set and tracks its phases, as a live run's ``wiener-sim``).
    """

    def __init__(self, signal: str = DEFAULT_SIGNAL, *, frames_per_set: int = 9,
                 structure: str | None = None, camera: PhotonConverter | None = None,
                 optics: SIMOptics | None = None, wiener: Reconstructor | None = None) -> None:
        from inference.wiener_sim.otf import SIMOptics

        if signal not in SIGNALS:
            raise ValueError(f"unknown trust signal {signal!r} (one of {', '.join(SIGNALS)})")
        self.signal = signal
        self.frames_per_set = frames_per_set
        self.structure = structure
        self.optics = optics or SIMOptics()
        self.wiener: Any = wiener
        self.advisor: Any = None
        if signal in ("combined", "agreement", "agreement-high") and wiener is None:
            from inference.wiener_sim.wiener_reconstructor import WienerSIMReconstructor

            self.wiener = WienerSIMReconstructor(frames_per_set=frames_per_set,
                                                 optics=self.optics)
        if signal == "dose":
            from inference.evaluation.dose_advisor import DoseAdvisor

            self.advisor = DoseAdvisor(camera=camera)
            if structure is not None and structure not in self.advisor.structures:
                raise ValueError(f"structure {structure!r} is not in the evaluation matrix "
                                 f"({', '.join(self.advisor.structures)})")

    def measure(self, frames: np.ndarray, sr: np.ndarray) -> TrustReading:
        """Measure the trust of ``sr``, the DFCAN output of the raw set ``frames`` ``(N, H, W)``."""
        cutoff = self.optics.cutoff_per_um
        if self.signal == "dose":
            advice = self.advisor.advise_photons(self.advisor.photons(frames), self.structure)
            dlsr = advice.nrmse.get("dfcan-sim", advice.nrmse[advice.best_dlsr])
            return TrustReading(1.0 - float(dlsr), self.signal)
        if self.signal == "spectrum":
            return TrustReading(spectral_snr(frames, self.optics.pixel_um, cutoff), self.signal)
        reference = np.asarray(self.wiener.reconstruct(frames), dtype=np.float32)
        if reference.shape != sr.shape:
            raise ValueError(f"trust: the Wiener-SIM image {reference.shape} and the SR image "
                             f"{sr.shape} differ in size")
        scale = sr.shape[0] / np.asarray(frames).shape[-2]
        band = HIGH_BAND if self.signal == "agreement-high" else AGREEMENT_BAND
        value = band_agreement(sr, reference, self.optics.pixel_um / scale, cutoff, band)
        if self.signal == "combined":
            value = combine(value, spectral_snr(frames, self.optics.pixel_um, cutoff))
        return TrustReading(value, self.signal, reference)
