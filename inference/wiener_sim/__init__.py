"""Conventional SIM reconstruction: parameter estimation, generalised Wiener filter, apodization.

Linear SIM (3 orientations × 3 phases → 2× grid) and nonlinear SIM with a second harmonic
(5 × 5 → 3× grid); NumPy on the CPU, PyTorch on a GPU (or the CPU), one code path.
"""

from inference.wiener_sim.calibration import EstimationError, SIMCalibration, SIMGeometry
from inference.wiener_sim.estimation import estimate_calibration
from inference.wiener_sim.otf import OTFModel, SIMOptics
from inference.wiener_sim.wiener_filter import (
    ReconstructionPlan,
    WienerSettings,
    upsample_widefield,
)
from inference.wiener_sim.wiener_reconstructor import WienerSIMReconstructor

__all__ = [
    "EstimationError",
    "OTFModel",
    "ReconstructionPlan",
    "SIMCalibration",
    "SIMGeometry",
    "SIMOptics",
    "WienerSIMReconstructor",
    "WienerSettings",
    "estimate_calibration",
    "upsample_widefield",
]
