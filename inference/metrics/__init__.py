"""Image-quality metrics: Fourier ring correlation, normalised errors."""

from inference.metrics.error import nrmse
from inference.metrics.frc import FRCResult, frc, frc_resolution

__all__ = ["FRCResult", "frc", "frc_resolution", "nrmse"]
