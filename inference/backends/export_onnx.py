"""ONNX export of DFCAN for one input shape, buildable by every TensorRT version.

The FCA spectrum is a DFT by matrix products (:mod:`inference.models.dft`), so the graph holds only
ordinary operators (Conv, MatMul, Gather, Pow, Erf, …). Precision lives in the graph, as
TensorRT 10+'s strongly typed networks need: ``fp16``/``bf16`` exports cast the float32 input
once, run the network in that type (the spectrum's amplitude in float32) and cast the output back
to float32. The graph's input is ``frames`` ``(1, C, H, W)`` float32 in [0, 1] (normalised),
its output ``sr`` ``(1, 1, H·s, W·s)`` float32.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from inference.models.dft import with_matmul_dft
from inference.models.subpixel_conv import with_subpixel_conv

if TYPE_CHECKING:
    from inference.models.dfcan import DFCAN

__all__ = [
    "DTYPES",
    "INPUT_NAME",
    "OPSET",
    "OUTPUT_NAME",
    "Precision",
    "export_onnx",
    "file_sha256",
    "onnx_op_types",
    "tensorrt_onnx_ops",
    "unsupported_by_tensorrt",
]

Precision = Literal["fp32", "fp16", "bf16"]
DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}
OPSET = 17  # the highest opset of the oldest TensorRT we target (8.5)
INPUT_NAME, OUTPUT_NAME = "frames", "sr"


class PrecisionWrapper(nn.Module):
    """float32 in, ``dtype`` inside, float32 out."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model.to(dtype)
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.to(self.dtype)).float()


def export_onnx(
    model: DFCAN,
    path: str | Path,
    height: int,
    width: int,
    precision: str = "fp32",
    opset: int = OPSET,
    *,
    subpixel_conv: bool = False,
) -> Path:
    """Write ``model`` for ``(1, C, height, width)`` inputs to ``path`` (``.onnx``).

    ``subpixel_conv``: the last conv before ``depth_to_space``
    (:mod:`inference.models.subpixel_conv`, the same output; faster on the CPU).
    The file carries metadata: the DFCAN config, precision, input shape.
    """
    import onnx

    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(DTYPES)})")
    if height < 1 or width < 1:
        raise ValueError(f"input shape must be positive, got {height}×{width}")
    path = Path(path)
    channels = model.config.in_channels
    fast = with_matmul_dft(model, height, width).eval()
    if subpixel_conv:
        fast = with_subpixel_conv(fast).eval()
    wrapped = PrecisionWrapper(fast, DTYPES[precision]).eval()
    example = torch.rand(1, channels, height, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            wrapped,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
        )
    graph = onnx.load(str(path))
    meta = {
        "livesr.architecture": type(model).__name__,
        "livesr.config": model.config.model_dump_json(),
        "livesr.precision": precision,
        "livesr.input_shape": json.dumps([1, channels, height, width]),
    }
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))
    return path


def onnx_op_types(path: str | Path) -> set[str]:
    """Return the operator types in an ONNX file, subgraphs included.

    Default-domain operators by name; others as ``domain::Op``.
    """
    import onnx

    found: set[str] = set()

    def walk(graph: Any) -> None:
        for node in graph.node:
            found.add(node.op_type if node.domain in ("", "ai.onnx") else
                      f"{node.domain}::{node.op_type}")
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                for sub in attr.graphs:
                    walk(sub)

    walk(onnx.load(str(path), load_external_data=False).graph)
    return found


@cache
def tensorrt_onnx_ops() -> dict[str, Any]:
    """Return TensorRT's published ONNX operator support.

    From ``inference/data/tensorrt_onnx_ops.json``: list, TensorRT version, source.
    """
    text = resources.files("inference").joinpath("data/tensorrt_onnx_ops.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def unsupported_by_tensorrt(path: str | Path) -> list[str]:
    """List the operators of the ONNX file missing from TensorRT's support list.

    Sorted; empty: all supported. An opset above the list's maximum is listed too.
    """
    import onnx

    table = tensorrt_onnx_ops()
    missing = sorted(onnx_op_types(path) - set(table["supported"]))
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version > table["max_opset"]:
            missing.append(f"opset {entry.version} > {table['max_opset']}")
    return missing


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
