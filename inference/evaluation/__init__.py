"""The evaluation matrix (structures × photon levels × reconstructions × metrics)."""

from inference.evaluation.config import EvaluationConfig
from inference.evaluation.matrix import MatrixResult, run_matrix
from inference.evaluation.report import write_report

__all__ = ["EvaluationConfig", "MatrixResult", "run_matrix", "write_report"]
