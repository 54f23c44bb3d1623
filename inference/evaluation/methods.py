"""The reconstructions the evaluation compares, each turning one raw set into an SR image.

- ``wf``: the mean of the raw set, bicubically upsampled to the SR grid (the baseline).
- ``wiener-sim``: conventional SIM (:class:`~inference.sim.WienerSIMReconstructor`), the pattern
  estimated from each set itself as a conventional reconstruction would; estimates of low
  confidence (a dim or sparse set) are used all the same and flagged, not refused.
- ``dfcan-sisr``, ``dfcan-sim``, ``dfgan``: the shared
  :class:`~inference.reconstructor.DFCANReconstructor` (official pre- and post-processing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.training.metrics import upsample_wf

__all__ = ["Reconstruction", "build_methods"]


@dataclass
class Reconstruction:
    """One method's SR image of a set, and whether it is to be trusted as such."""

    image: np.ndarray
    note: str | None = None  # e.g. a low-confidence SIM calibration


ReconstructFn = Callable[[np.ndarray], Reconstruction]


def build_methods(methods: dict[str, Path | None], scale: int = 2, device: str = "cpu"
                  ) -> dict[str, ReconstructFn]:
    """Reconstruction functions by name; ``methods`` maps a name to its weights file (DLSR)
    or ``None`` (``wf``, ``wiener-sim``)."""
    built: dict[str, ReconstructFn] = {}
    for name, weights in methods.items():
        if name == "wf":
            built[name] = _wide_field(scale)
        elif name == "wiener-sim":
            built[name] = _wiener_sim()
        else:
            if weights is None:
                raise ValueError(f"{name}: needs a weights file")
            built[name] = _dlsr(name, weights, scale, device)
    return built


def _wide_field(scale: int) -> ReconstructFn:
    def reconstruct(raw: np.ndarray) -> Reconstruction:
        return Reconstruction(upsample_wf(raw.mean(axis=0), scale))

    return reconstruct


def _wiener_sim() -> ReconstructFn:
    from inference.sim.estimation import estimate_calibration
    from inference.sim.reconstructor import WienerSIMReconstructor

    def reconstruct(raw: np.ndarray) -> Reconstruction:
        wiener = WienerSIMReconstructor(frames_per_set=raw.shape[0])
        calibration = estimate_calibration(raw, wiener.optics, otf=wiener.otf,
                                           taper_px=wiener.settings.taper_px, strict=False)
        wiener.use_calibration(calibration)
        note = "; ".join(calibration.notes) or None
        return Reconstruction(wiener.reconstruct(raw), note)

    return reconstruct


def _dlsr(name: str, weights: Path, scale: int, device: str) -> ReconstructFn:
    from inference.reconstructor import DFCANReconstructor

    model = DFCANReconstructor.from_file(weights, device=device)
    if model.scale != scale:
        raise ValueError(f"{name}: {weights} upsamples {model.scale}×, the data {scale}×")
    if name == "dfcan-sim" and model.frames_per_set is None:
        raise ValueError(f"{name}: {weights} is a single-image (SISR) model")
    if name == "dfcan-sisr" and model.frames_per_set is not None:
        raise ValueError(f"{name}: {weights} takes {model.frames_per_set} raw frames, "
                         "not one wide-field image")

    def reconstruct(raw: np.ndarray) -> Reconstruction:
        frames = raw if model.frames_per_set is not None else raw.mean(axis=0)[None]
        return Reconstruction(model.reconstruct(frames))

    return reconstruct
