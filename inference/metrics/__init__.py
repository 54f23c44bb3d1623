"""Image-quality metrics: Fourier ring correlation, decorrelation analysis, errors against a
ground truth (``nrmse``: least-squares fitted; ``quality``: the official DL-SR evaluation)."""

from inference.metrics.decorrelation import DecorrelationResult, decorrelation_resolution
from inference.metrics.error import nrmse
from inference.metrics.frc import FRCResult, frc, frc_resolution

__all__ = [
    "DecorrelationResult",
    "FRCResult",
    "decorrelation_resolution",
    "frc",
    "frc_resolution",
    "nrmse",
]
