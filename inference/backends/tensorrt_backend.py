"""DFCAN as a TensorRT engine: ONNX (matmul DFT) → parser → builder → cached plan → runtime.

Written against TensorRT's Python API (8.5 to 11; ``tensorrt`` is imported only when this backend
is made). Networks are strongly typed where TensorRT offers it (10+; the default in 11), so the
precision is the exported graph's (:func:`inference.backends.export_onnx.export_onnx`); on older
versions the FP16/BF16 builder flag asks for it instead. One engine per input shape (camera
ROI), kept in an :class:`~inference.backends.engine_cache.EngineCache` with a timing cache.
Execution uses ``execute_async_v3`` on the backend's compute stream, with PyTorch owning the device
buffers, so
uploads, normalisation and post-processing are those of :class:`TorchBackend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from inference.backends.base import default_cache_dir
from inference.backends.engine_cache import CacheOutcome, EngineCache, EngineKey
from inference.backends.errors import BackendError, BackendUnavailable
from inference.backends.export_onnx import INPUT_NAME, OUTPUT_NAME, file_sha256
from inference.backends.onnxruntime_backend import cached_onnx
from inference.backends.torch_backend import Runner, TorchBackend

if TYPE_CHECKING:
    from types import ModuleType

    from inference.models.dfcan import DFCAN

__all__ = ["TensorRTBackend", "build_engine", "import_tensorrt", "load_engine"]

DEFAULT_WORKSPACE = 4 << 30


def import_tensorrt() -> ModuleType:
    """Import ``tensorrt``, or raise :class:`BackendUnavailable` saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(
            f"TensorRT is not installed ({exc}); on a GPU workstation: pip install 'livesr[trt]'"
        ) from None
    return tensorrt


def _major(trt: Any) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        return 0


def strongly_typed_flags(trt: Any) -> tuple[int, bool]:
    """Network creation flags and whether the network is strongly typed."""
    flag = trt.NetworkDefinitionCreationFlag
    if hasattr(flag, "STRONGLY_TYPED"):
        return 1 << int(flag.STRONGLY_TYPED), True
    if _major(trt) >= 11:
        return 0, True  # strongly typed is the only kind
    if hasattr(flag, "EXPLICIT_BATCH"):
        return 1 << int(flag.EXPLICIT_BATCH), False  # TensorRT 8.x
    return 0, False


def build_engine(
    trt: Any,
    onnx_bytes: bytes,
    precision: str,
    timing_cache: bytes | None,
    workspace: int = DEFAULT_WORKSPACE,
    logger: Any = None,
) -> tuple[bytes, bytes | None]:
    """Parse the ONNX graph and build a serialised engine; returns ``(plan, timing_cache)``.

    Raises :class:`BackendError` with the parser's messages when the graph does not parse, or
    when the builder returns nothing.
    """
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags, strongly_typed = strongly_typed_flags(trt)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT's ONNX parser refused the graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if not strongly_typed and precision in ("fp16", "bf16"):
        flag = {"fp16": "FP16", "bf16": "BF16"}[precision]
        if not hasattr(trt.BuilderFlag, flag):
            raise BackendUnavailable(f"TensorRT {trt.__version__} cannot build {precision}")
        config.set_flag(getattr(trt.BuilderFlag, flag))
    cache = config.create_timing_cache(timing_cache or b"")
    config.set_timing_cache(cache, False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendError("TensorRT's builder failed (see its log above)")
    new_cache = config.get_timing_cache()
    return bytes(plan), (bytes(new_cache.serialize()) if new_cache is not None else None)


_TORCH_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
                 "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}


class EngineRunner:
    """A deserialised engine with its execution context and PyTorch-owned I/O tensors."""

    def __init__(self, trt: Any, engine: Any, device: torch.device) -> None:
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise BackendError("TensorRT could not create an execution context (out of memory?)")
        self.tensors: dict[str, Tensor] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            dtype = _TORCH_DTYPES[engine.get_tensor_dtype(name).name]
            tensor = torch.empty(shape, dtype=dtype, device=device)
            self.tensors[name] = tensor
            self.context.set_tensor_address(name, tensor.data_ptr())
        missing = {INPUT_NAME, OUTPUT_NAME} - set(self.tensors)
        if missing:
            raise BackendError(f"engine lacks the tensors {sorted(missing)}")

    def __call__(self, x: Tensor) -> Tensor:
        self.tensors[INPUT_NAME].copy_(x)
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise BackendError("TensorRT execution failed")
        return self.tensors[OUTPUT_NAME]


def load_engine(
    trt: Any, data: bytes, device: torch.device, logger: Any = None
) -> EngineRunner | None:
    """Deserialise a plan (None if TensorRT refuses it: another version, another GPU, corrupt)."""
    runtime = trt.Runtime(logger or trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(data)
    return None if engine is None else EngineRunner(trt, engine, device)


class TensorRTBackend(TorchBackend):
    """DFCAN as TensorRT engines (fp16 by default), one per input shape, cached on disk.

    Args:
        model: the DFCAN.
        precision: ``fp16`` (default), ``bf16`` or ``fp32``.
        cache_dir: the cache folder (engines in ``engines/``, graphs in ``onnx/``).
        workspace: the builder's workspace limit in bytes.
    """

    def __init__(
        self,
        model: DFCAN,
        precision: str = "fp16",
        *,
        device: str | torch.device = "cuda",
        cache_dir: str | Path | None = None,
        workspace: int = DEFAULT_WORKSPACE,
        postprocess: bool = True,
    ) -> None:
        if not torch.cuda.is_available():
            raise BackendUnavailable("tensorrt: CUDA is not available here")
        self.trt = import_tensorrt()
        super().__init__(model, device, precision, channels_last=False, cuda_graphs=False,
                         postprocess=postprocess)
        self.kind = "tensorrt"  # type: ignore[misc]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache = EngineCache(self.cache_dir / "engines")
        self.workspace = workspace
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.outcomes: dict[tuple[int, int], CacheOutcome] = {}

    @property
    def description(self) -> str:
        """``tensorrt <version> <precision>``."""
        return f"tensorrt {self.trt.__version__} {self.precision}"

    def engine_key(self, onnx_path: Path, height: int, width: int) -> EngineKey:
        """Return the cache key of the engine for this graph, GPU, precision and input shape."""
        major, minor = torch.cuda.get_device_capability(self.device)
        return EngineKey(
            onnx_sha256=file_sha256(onnx_path),
            tensorrt_version=str(self.trt.__version__),
            gpu_name=torch.cuda.get_device_name(self.device),
            compute_capability=f"{major}.{minor}",
            precision=self.precision,
            input_shape=(1, self.config.in_channels, height, width),
        )

    def build_runner(self, height: int, width: int) -> Runner:
        """Load (or build and cache) the engine for ``height × width`` and warm it up."""
        onnx_path = cached_onnx(self.model, height, width, self.precision, self.cache_dir)
        key = self.engine_key(onnx_path, height, width)
        onnx_bytes = onnx_path.read_bytes()
        with torch.cuda.device(self.device):
            runner, outcome = self.cache.get_or_build(
                key,
                build=lambda timing: build_engine(self.trt, onnx_bytes, self.precision, timing,
                                                  self.workspace, self.logger),
                load=lambda data: load_engine(self.trt, data, self.device, self.logger),
            )
        self.outcomes[(height, width)] = outcome
        with torch.inference_mode():
            for _ in range(3):  # warm-up
                runner(torch.zeros(key.input_shape, device=self.device))
        torch.cuda.synchronize(self.device)
        return Runner(runner, torch.float32)
