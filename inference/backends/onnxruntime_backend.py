"""DFCAN exported to ONNX (matmul DFT) and run by ONNX Runtime on the CPU."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.backends.base import InferenceBackend, default_cache_dir, model_digest
from inference.backends.errors import BackendUnavailable
from inference.backends.export_onnx import INPUT_NAME, export_onnx

if TYPE_CHECKING:
    from inference.models.dfcan import DFCAN

__all__ = ["OnnxRuntimeBackend", "cached_onnx"]


def cached_onnx(model: DFCAN, height: int, width: int, precision: str, cache_dir: Path) -> Path:
    """Return the model's ONNX graph for one shape and precision, exporting it on first use.

    Exported once into ``cache_dir/onnx`` (named by the weights' digest; written atomically).
    """
    channels = model.config.in_channels
    path = (Path(cache_dir) / "onnx" /
            f"dfcan-{model_digest(model)}-{channels}x{height}x{width}-{precision}.onnx")
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    try:
        export_onnx(model, tmp, height, width, precision)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


class OnnxRuntimeBackend(InferenceBackend):
    """DFCAN on ONNX Runtime's CPU execution provider (float32).

    Args:
        model: the DFCAN.
        cache_dir: where the exported graphs are kept (default :func:`default_cache_dir`).
        threads: intra-op threads (default: ONNX Runtime's choice).
    """

    kind = "onnxruntime"

    def __init__(
        self,
        model: DFCAN,
        precision: str = "fp32",
        *,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        postprocess: bool = True,
    ) -> None:
        super().__init__(model, precision, postprocess)
        if precision != "fp32":
            raise ValueError(f"onnxruntime (CPU) runs fp32, not {precision}")
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from None
        self._ort = onnxruntime
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.threads = threads
        self._sessions: dict[tuple[int, int], Any] = {}

    def prepare(self, height: int, width: int) -> None:
        """Export (or reuse) the graph for ``height × width`` and open its session."""
        if (height, width) in self._sessions:
            return
        path = cached_onnx(self.model, height, width, self.precision, self.cache_dir)
        options = self._ort.SessionOptions()
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        self._sessions[(height, width)] = self._ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the session for ``x``'s shape (prepared on first use); ``(H·s, W·s)`` float32."""
        height, width = x.shape[-2:]
        self.prepare(height, width)
        out = self._sessions[(height, width)].run(
            None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)}
        )[0]
        return np.asarray(out[0, 0], dtype=np.float32)
