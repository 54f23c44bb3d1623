"""``wiener-sim``: conventional SIM as a :class:`~inference.reconstructor.Reconstructor`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from inference.reconstructor import check_frames
from inference.wiener_sim.calibration import SIMCalibration, SIMGeometry
from inference.wiener_sim.estimation import estimate_calibration
from inference.wiener_sim.otf import OTFModel, SIMOptics
from inference.wiener_sim.phase_tracking import PhaseDrift, PhaseTracker
from inference.wiener_sim.wiener_filter import (
    NumpyBackend,
    ReconstructionPlan,
    TorchBackend,
    WienerSettings,
)

if TYPE_CHECKING:
    from inference.wiener_sim.priors import PatternPrior

__all__ = ["WienerSIMReconstructor"]


class WienerSIMReconstructor:
    """Wiener-SIM of a raw set (9 frames → 2×, or 25 frames → 3× nonlinear SIM).

    The pattern parameters are estimated from the first set and reused for every later set of
    the same size (a time-lapse); :meth:`recalibrate` forces a new estimate from the next set,
    :meth:`calibrate` estimates from a given set now. With ``track_phases`` each later set's
    phase drift is measured against that calibration and undone
    (:mod:`inference.wiener_sim.phase_tracking`); a set whose drift cannot be trusted is
    reconstructed with the last good drift, and :attr:`last_report` says so. ``backend``
    ``"numpy"`` runs on the CPU, ``"torch"`` on ``device`` (``"cuda"`` or ``"cpu"``);
    ``"auto"`` picks torch on a GPU if there is one. ``prior``: what the microscope guarantees
    about its pattern, or the carriers of a calibration file (:mod:`inference.wiener_sim.priors`),
    used when estimating. The output is normalised to its maximum after clipping negative
    values.
    """

    name = "wiener-sim"

    def __init__(self, frames_per_set: int = 9, optics: SIMOptics | None = None,
                 settings: WienerSettings | None = None, otf: OTFModel | None = None,
                 backend: Literal["numpy", "torch", "auto"] = "numpy",
                 device: str = "cuda", calibration: SIMCalibration | None = None,
                 prior: PatternPrior | None = None, track_phases: bool = True) -> None:
        self.geometry = SIMGeometry.for_frames(frames_per_set)
        self.frames_per_set: int = frames_per_set
        self.scale: int = self.geometry.scale
        self.optics = optics or SIMOptics()
        self.otf = otf or OTFModel(self.optics)
        self.settings = settings or WienerSettings()
        if backend == "auto":
            import torch

            backend, device = ("torch", "cuda") if torch.cuda.is_available() else ("numpy", "")
        self.backend = TorchBackend(device) if backend == "torch" else NumpyBackend()
        self.prior = prior
        self.track_phases = track_phases
        self.plan: ReconstructionPlan | None = None
        self.tracker: PhaseTracker | None = None
        #: the drift undone in the last trusted set (the fallback for an untrusted one)
        self.last_good_drift: PhaseDrift | None = None
        #: how the last set's pattern was obtained: ``pattern`` is ``estimated`` (from the set
        #: itself), ``calibrated`` (a given calibration, no tracking yet), ``tracked`` (drift
        #: measured and undone) or ``fallback`` (drift not trusted: the last good one used,
        #: ``pattern_note`` says why), with the drift per orientation and its largest 1-σ
        self.last_report: dict[str, Any] = {}
        if calibration is not None:
            self.use_calibration(calibration)

    @property
    def calibration(self) -> SIMCalibration | None:
        """The calibration in use (None: the next set is estimated)."""
        return self.plan.calibration if self.plan else None

    def calibrate(self, frames: np.ndarray) -> SIMCalibration:
        """Estimate the pattern from this set (raises EstimationError if it cannot)."""
        stack = check_frames(frames, self.frames_per_set, self.name)
        calibration = estimate_calibration(stack, self.optics, otf=self.otf,
                                           taper_px=self.settings.taper_px, prior=self.prior)
        self.use_calibration(calibration)
        if self.track_phases:
            self.tracker = PhaseTracker(calibration, self.otf, stack, self.settings.taper_px)
        return calibration

    def use_calibration(self, calibration: SIMCalibration) -> None:
        """Reconstruct with a known calibration (from an earlier set or a file)."""
        if calibration.geometry != self.geometry:
            raise ValueError(f"{self.name}: calibration is for {calibration.geometry}, this "
                             f"reconstructor for {self.geometry}")
        self.plan = ReconstructionPlan(calibration, self.otf, self.settings, self.backend)
        self.tracker = None  # its reference is the first set reconstructed with this
        self.last_good_drift = None

    def recalibrate(self) -> None:
        """Forget the calibration: the next set is estimated afresh."""
        self.plan = None
        self.tracker = None
        self.last_good_drift = None

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Reconstruct one set, float32 in [0, 1] (peak-normalised, negatives clipped).

        The pattern is estimated from this set when there is no calibration yet or the frame
        shape changed.
        """
        stack = check_frames(frames, self.frames_per_set, self.name)
        corrections = None
        if self.plan is None or self.plan.calibration.shape != stack.shape[1:]:
            self.calibrate(stack)
            self.last_report = {"pattern": "estimated"}
        elif self.track_phases:
            corrections = self._track(stack)
        else:
            self.last_report = {"pattern": "calibrated"}
        assert self.plan is not None
        image = self.plan.apply(stack, corrections)
        image = image.clip(min=0)
        image = image / max(float(image.max()), 1e-12)
        return self.backend.numpy(image).astype(np.float32, copy=False)

    def _track(self, stack: np.ndarray) -> np.ndarray | None:
        """Measure this set's drift; return the side-band corrections to apply (None: none)."""
        assert self.plan is not None
        calibration = self.plan.calibration
        if self.tracker is None:  # a given calibration: drift is measured from this set on
            self.tracker = PhaseTracker(calibration, self.otf, stack, self.settings.taper_px)
            self.last_report = {"pattern": "calibrated"}
            return None
        drift = self.tracker.measure(stack)
        harmonics = calibration.geometry.harmonics
        if drift.ok:
            self.last_good_drift = drift
            self.last_report = {"pattern": "tracked",
                                "phase_drift_rad": [round(float(d), 4) for d in drift.drift_rad],
                                "phase_drift_sigma_rad": round(float(drift.sigma_rad.max()), 4)}
            return drift.corrections(harmonics)
        kept = self.last_good_drift
        self.last_report = {"pattern": "fallback", "pattern_note": str(drift.problem),
                            "phase_drift_rad": ([round(float(d), 4) for d in kept.drift_rad]
                                                if kept is not None else [0.0] * len(
                                                    drift.drift_rad))}
        return kept.corrections(harmonics) if kept is not None else None
