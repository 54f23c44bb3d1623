"""DFCAN exported to ONNX (matmul DFT) and run by ONNX Runtime on the CPU, float32 or int8.

float32: the exported graph (last conv before ``depth_to_space``), every graph optimisation on,
one intra-op thread per physical core. int8: the same graph with its convolutions quantized
statically (``onnxruntime.quantization``, QDQ: weights int8 per output channel, activations
uint8 with ranges calibrated on inputs like the ones it will see), run by ONNX Runtime's integer
kernels (VNNI where the CPU has it); everything else (the FCA spectrum, GELU, the attention)
stays float32. Its error against float32 is measured by ``livesr bench`` and is larger than
bf16's: :func:`inference.backends.select.select_backend` never picks it by itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.backends.base import InferenceBackend, default_cache_dir, model_digest
from inference.backends.cpu_choice import physical_cores
from inference.backends.errors import BackendUnavailable
from inference.backends.export_onnx import INPUT_NAME, export_onnx

if TYPE_CHECKING:
    from collections.abc import Callable

    from inference.models.dfcan import DFCAN

__all__ = ["OnnxRuntimeBackend", "cached_onnx", "quantize_int8"]

log = logging.getLogger(__name__)

#: bumped when the exported graph changes for the same weights (names the cached files)
GRAPH_VERSION = 2
#: opset of the graphs quantized to int8 (Gelu is one operator from opset 20, so it stays fused)
INT8_OPSET = 20


def _atomic(path: Path, write: Callable[[str], Any]) -> Path:
    """Write ``path`` through a temporary file in its folder, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def cached_onnx(model: DFCAN, height: int, width: int, precision: str, cache_dir: Path,
                *, subpixel_conv: bool = False, opset: int | None = None) -> Path:
    """Return the model's ONNX graph for one shape and precision, exporting it on first use.

    Exported once into ``cache_dir/onnx`` (named by the weights' digest and the export's
    options; written atomically).
    """
    channels = model.config.in_channels
    tags = "".join([f"-g{GRAPH_VERSION}", "-sp" if subpixel_conv else "",
                    f"-op{opset}" if opset else ""])
    path = (Path(cache_dir) / "onnx" /
            f"dfcan-{model_digest(model)}-{channels}x{height}x{width}-{precision}{tags}.onnx")
    if path.is_file():
        return path
    extra: dict[str, Any] = {"opset": opset} if opset else {}
    return _atomic(path, lambda tmp: export_onnx(model, tmp, height, width, precision,
                                                 subpixel_conv=subpixel_conv, **extra))


def quantize_int8(source: Path, target: Path, calibration: list[np.ndarray]) -> Path:
    """Quantize ``source``'s convolutions to int8 (QDQ, per-channel weights) into ``target``.

    ``calibration``: normalised inputs ``(1, C, H, W)`` float32 whose activation ranges
    (min–max) set the uint8 scales.
    """
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise BackendUnavailable(f"onnxruntime.quantization is missing ({exc})") from None

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.inputs = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.inputs, None)
            return None if x is None else {INPUT_NAME: np.ascontiguousarray(x, np.float32)}

    def write(tmp: str) -> None:
        with tempfile.TemporaryDirectory() as work:
            pre = Path(work) / "pre.onnx"
            quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), tmp, Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                            calibrate_method=CalibrationMethod.MinMax)

    return _atomic(target, write)


def _calibration_digest(calibration: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for x in calibration:
        digest.update(np.ascontiguousarray(x, np.float32).tobytes())
    return digest.hexdigest()[:12]


class OnnxRuntimeBackend(InferenceBackend):
    """DFCAN on ONNX Runtime's CPU execution provider, float32 or int8.

    Args:
        model: the DFCAN.
        precision: ``fp32`` or ``int8`` (convolutions quantized; see the module).
        cache_dir: where the exported graphs are kept (default :func:`default_cache_dir`).
        threads: intra-op threads (default: one per physical core).
        calibration: int8 only: normalised inputs ``(1, C, H, W)`` per shape to calibrate on;
            default: the first input of each shape (the first set seen).
    """

    kind = "onnxruntime"

    def __init__(
        self,
        model: DFCAN,
        precision: str = "fp32",
        *,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        calibration: list[np.ndarray] | None = None,
        postprocess: bool = True,
    ) -> None:
        if precision not in ("fp32", "int8"):
            raise ValueError(f"onnxruntime (CPU) runs fp32 or int8, not {precision}")
        super().__init__(model, "fp32", postprocess)
        self.precision = precision
        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from None
        self._ort = onnxruntime
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.threads = threads or physical_cores()
        self.calibration = calibration
        self._sessions: dict[tuple[int, int], Any] = {}

    def prepare(self, height: int, width: int) -> None:
        """Export (or reuse) the graph for ``height × width`` and open its session.

        int8 without calibration inputs waits for the first input of the shape.
        """
        if (height, width) in self._sessions:
            return
        if self.precision == "int8":
            if self.calibration is None:
                return  # calibrated on the first input (see infer)
            path = self._int8_graph(height, width, self.calibration)
        else:
            path = cached_onnx(self.model, height, width, "fp32", self.cache_dir,
                               subpixel_conv=True)
        self._sessions[(height, width)] = self._session(path)

    def _int8_graph(self, height: int, width: int, calibration: list[np.ndarray]) -> Path:
        source = cached_onnx(self.model, height, width, "fp32", self.cache_dir,
                             subpixel_conv=True, opset=INT8_OPSET)
        target = source.with_name(f"{source.stem}-int8-{_calibration_digest(calibration)}.onnx")
        if not target.is_file():
            log.info("quantizing %s to int8 on %d calibration inputs", source.name,
                     len(calibration))
            quantize_int8(source, target, calibration)
        return target

    def _session(self, path: Path) -> Any:
        options = self._ort.SessionOptions()
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        return self._ort.InferenceSession(str(path), options,
                                          providers=["CPUExecutionProvider"])

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the session for ``x``'s shape (prepared on first use); ``(H·s, W·s)`` float32."""
        height, width = x.shape[-2:]
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.prepare(height, width)
        if (height, width) not in self._sessions:  # int8, calibrated on this first input
            self._sessions[(height, width)] = self._session(
                self._int8_graph(height, width, [x]))
        out = self._sessions[(height, width)].run(None, {INPUT_NAME: x})[0]
        return np.asarray(out[0, 0], dtype=np.float32)
