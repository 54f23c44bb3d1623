"""Image-quality metrics: Fourier ring correlation, decorrelation analysis, ground-truth errors.

The errors against a ground truth are ``nrmse_affine`` (after a least-squares fit) and
``quality.nrmse`` (the official DL-SR evaluation).
"""

from inference.metrics.affine import nrmse_affine
from inference.metrics.decorrelation import DecorrelationResult, decorrelation_resolution
from inference.metrics.frc import FRCResult, frc, frc_resolution

__all__ = [
    "DecorrelationResult",
    "FRCResult",
    "decorrelation_resolution",
    "frc",
    "frc_resolution",
    "nrmse_affine",
]
