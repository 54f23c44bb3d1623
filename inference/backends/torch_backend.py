"""DFCAN in PyTorch on CUDA or CPU: the matmul-DFT network, and on a GPU the fast path.

On CPU, float32: the 3×3 convolutions by Winograd F(6×6, 3×3) in a native kernel
(:mod:`inference.models.winograd`), channels-last, when that kernel builds here.
On CUDA: float16 or bfloat16 weights, channels_last, the frames uploaded as uint16 from a ring of
pinned host buffers on a copy stream, normalisation, the network (replayed as a CUDA graph after
warm-up, optionally ``torch.compile``d) and the official post-processing on a compute stream, the
result copied back into a pinned buffer. On CPU the same steps run synchronously.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from inference.backends.base import InferenceBackend
from inference.backends.errors import BackendUnavailable
from inference.backends.export_onnx import DTYPES
from inference.backends.processing_torch import normalise_frames, postprocess_t
from inference.models.dft import with_matmul_dft
from inference.models.fft_fca import with_fft_fold
from inference.models.mixed_precision import with_bf16_block_convs
from inference.models.subpixel_conv import with_subpixel_conv
from inference.models.winograd import with_winograd

if TYPE_CHECKING:
    from collections.abc import Callable

    from inference.models.dfcan import DFCAN

__all__ = ["Runner", "TorchBackend"]

WARMUP_CALLS = 3


@dataclass
class Runner:
    """What runs one input shape: ``(1, C, H, W)`` tensor → ``(1, 1, H·s, W·s)`` float32."""

    call: Callable[[Tensor], Tensor]
    input_dtype: torch.dtype
    channels_last: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def __call__(self, x: Tensor) -> Tensor:
        """Cast ``x`` to the input dtype (and layout) and run the network."""
        x = x.to(self.input_dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.call(x)


class GraphRunner:
    """A network replayed as a CUDA graph on static input/output buffers."""

    def __init__(self, fn: Callable[[Tensor], Tensor], example: Tensor) -> None:
        self.static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                fn(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_in)

    def __call__(self, x: Tensor) -> Tensor:
        self.static_in.copy_(x)
        self.graph.replay()
        return self.static_out


@dataclass
class _Staged:
    """A set on its way: its shape and, on CUDA, the ring slot and the copy's event."""

    shape: tuple[int, ...]
    frames: Tensor
    slot: int = -1
    copied: Any = None


class TorchBackend(InferenceBackend):
    """DFCAN run by PyTorch.

    Args:
        model: the DFCAN (its weights are copied, not changed).
        device: ``"cuda"`` (``"cuda:1"`` …) or ``"cpu"``.
        precision: ``fp32``, ``fp16`` or ``bf16`` (fp16 needs CUDA). bf16 on the CPU runs the
            FCABs' convolutions in bfloat16 and the rest in float32
            (:mod:`inference.models.mixed_precision`); it is fast only where the CPU has bf16
            instructions (AVX-512 BF16, AMX).
        dft: ``"matmul"`` (the FCA spectrum by matrix products, one network per shape; the
            CUDA default), ``"rfft-fold"`` (a real FFT of the folded map at the sampled
            frequencies only, :mod:`inference.models.fft_fca`; the CPU default) or ``"fft"``
            (the reference network, as trained).
        channels_last, cuda_graphs: default on for CUDA.
        subpixel_conv: run the last conv before ``depth_to_space``
            (:mod:`inference.models.subpixel_conv`; the same output); default on for the CPU
            but for the reference network.
        compile: a ``torch.compile`` mode (``"max-autotune"``, ``"default"``) or None.
        conv: ``"winograd"`` (the 3×3 convolutions by Winograd F(6×6, 3×3), channels-last:
            :mod:`inference.models.winograd`; CPU float32 only) or ``"direct"``. Default:
            Winograd for CPU float32 where its kernel builds (else direct, with a warning),
            direct otherwise.
        postprocess: apply the official post-processing (else return the sigmoid output).
        ring: pinned upload buffers per shape (CUDA).
    """

    def __init__(
        self,
        model: DFCAN,
        device: str | torch.device = "cuda",
        precision: str = "fp32",
        *,
        dft: str | None = None,
        channels_last: bool | None = None,
        cuda_graphs: bool | None = None,
        compile: str | None = None,
        subpixel_conv: bool | None = None,
        conv: str | None = None,
        postprocess: bool = True,
        ring: int = 3,
    ) -> None:
        super().__init__(model, precision, postprocess)
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        if cuda and not torch.cuda.is_available():
            raise BackendUnavailable("torch-cuda: CUDA is not available here")
        if self.device.type not in ("cuda", "cpu"):
            raise ValueError(f"torch backend runs on cuda or cpu, not {self.device}")
        if not cuda and precision not in ("fp32", "bf16"):
            raise ValueError(f"torch on cpu runs fp32 or bf16, not {precision}")
        dft = dft or ("matmul" if cuda else "rfft-fold")
        if dft not in ("matmul", "rfft-fold", "fft"):
            raise ValueError(f"dft must be 'matmul', 'rfft-fold' or 'fft', got {dft!r}")
        if conv not in (None, "winograd", "direct"):
            raise ValueError(f"conv must be 'winograd' or 'direct', got {conv!r}")
        if conv == "winograd" and (cuda or precision != "fp32"):
            raise ValueError("conv='winograd' runs on the CPU in fp32 only")
        if conv is None:
            conv = "winograd" if not cuda and precision == "fp32" and _winograd_here() \
                else "direct"
        elif conv == "winograd":
            from inference.kernels import load

            load()  # BackendUnavailable where it cannot be built
        self.conv = conv
        self.kind = f"torch-{self.device.type}"  # type: ignore[misc]
        self.dft = dft
        self.channels_last = (cuda or conv == "winograd") if channels_last is None \
            else channels_last
        self.cuda_graphs = cuda if cuda_graphs is None else (cuda_graphs and cuda)
        self.compile_mode = compile
        self.subpixel_conv = (not cuda and dft != "fft") if subpixel_conv is None \
            else subpixel_conv
        # bf16 on the CPU: float32 network with its FCAB convolutions in bfloat16
        self.dtype = torch.float32 if not cuda else DTYPES[precision]
        self.ring = ring
        self._runners: dict[tuple[int, int], Runner | GraphRunner] = {}
        self._buffers: dict[tuple[Any, ...], list[Tensor]] = {}
        self._events: dict[tuple[Any, ...], list[Any]] = {}
        self._next_slot: dict[tuple[Any, ...], int] = {}
        self._host_out: dict[tuple[int, ...], Tensor] = {}
        if cuda:
            self.copy_stream = torch.cuda.Stream(self.device)
            self.compute_stream = torch.cuda.Stream(self.device)

    @property
    def description(self) -> str:
        """``kind precision`` and the options in use, e.g. ``"torch-cuda fp16 channels_last"``."""
        options = [self.precision]
        if self.dft != "matmul":
            options.append(self.dft)
        if self.channels_last:
            options.append("channels_last")
        if self.subpixel_conv:
            options.append("subpixel-conv")
        if self.conv == "winograd":
            options.append("winograd")
        if self.cuda_graphs:
            options.append("cuda-graphs")
        if self.compile_mode:
            options.append(f"compile:{self.compile_mode}")
        return f"{self.kind} {' '.join(options)}"

    # -- building ------------------------------------------------------------------------------

    def network(self, height: int, width: int) -> nn.Module:
        """Return the network for one input shape on this device, in this precision and layout."""
        if self.dft == "matmul":
            net = with_matmul_dft(self.model, height, width)
        elif self.dft == "rfft-fold":
            net = with_fft_fold(self.model, height, width)
        else:
            net = copy.deepcopy(self.model)
        if self.subpixel_conv:
            net = with_subpixel_conv(net)
        net = net.to(device=self.device, dtype=self.dtype).eval()
        if self.device.type == "cpu" and self.precision == "bf16":
            net = with_bf16_block_convs(net).eval()
        if self.conv == "winograd":
            net = with_winograd(net).eval()
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return net

    def build_runner(self, height: int, width: int) -> Runner | GraphRunner:
        """Network, compilation, warm-up and (CUDA) graph capture for one shape."""
        net = self.network(height, width)
        fn: Callable[[Tensor], Tensor] = net
        if self.compile_mode:
            mode = self.compile_mode
            if self.cuda_graphs and mode == "max-autotune":
                mode = "max-autotune-no-cudagraphs"  # we capture the graph ourselves
            # one graph per network and shape: a process that builds several (``livesr
            # bench``, a predictor seeing new shapes) recompiles the same code, as it should
            dynamo = torch._dynamo.config  # noqa: SLF001 - torch's documented settings
            dynamo.recompile_limit = max(dynamo.recompile_limit, 64)
            dynamo.accumulated_recompile_limit = max(dynamo.accumulated_recompile_limit, 1024)
            fn = torch.compile(net, mode=mode, fullgraph=True, dynamic=False)
        example = torch.zeros(1, self.config.in_channels, height, width, device=self.device,
                              dtype=self.dtype)
        if self.channels_last:
            example = example.contiguous(memory_format=torch.channels_last)
        runner = Runner(fn, self.dtype, self.channels_last)
        with torch.inference_mode(), self._cudnn_flags():
            if self.cuda_graphs:
                with torch.cuda.device(self.device):
                    graph = GraphRunner(fn, example)
                return Runner(graph, self.dtype, self.channels_last, {"graph": graph})
            with warnings.catch_warnings():
                # the FFT of the FCA stays an ATen call when compiled, as intended
                warnings.filterwarnings("ignore", "Torchinductor does not support code "
                                        "generation for complex operators")
                for _ in range(WARMUP_CALLS if self.compile_mode else 1):
                    runner(example)
        return runner

    def prepare(self, height: int, width: int) -> None:
        """Build the runner for ``height × width`` unless already built."""
        if (height, width) not in self._runners:
            self._runners[(height, width)] = self.build_runner(height, width)

    def _runner(self, height: int, width: int) -> Runner | GraphRunner:
        self.prepare(height, width)
        return self._runners[(height, width)]

    def _cudnn_flags(self) -> Any:
        """CuDNN autotuning on; no TF32, so fp32 keeps the reference's precision on CUDA."""
        cudnn = torch.backends.cudnn
        return cudnn.flags(enabled=cudnn.enabled, benchmark=True,
                           deterministic=cudnn.deterministic, allow_tf32=False)

    # -- running -------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        """Run the network on a normalised ``(1, C, H, W)`` tensor on this device.

        Returns float32 ``(1, 1, H·s, W·s)``.
        """
        runner = self._runner(x.shape[-2], x.shape[-1])
        with torch.inference_mode(), self._cudnn_flags():
            return runner(x).float()

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the network on a normalised ``(1, C, H, W)`` array → ``(H·s, W·s)`` float32."""
        with torch.inference_mode():
            out = self.forward(torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
            return out[0, 0].cpu().numpy()

    def upload(self, frames: np.ndarray) -> _Staged:
        """Check the set and, on CUDA, copy it to the device from a pinned ring slot (async)."""
        stack = self.check(frames)
        if not (stack.dtype == np.uint16 or stack.dtype == np.float32):
            stack = stack.astype(np.float32)
        if self.device.type != "cuda":
            return _Staged(stack.shape, torch.from_numpy(np.ascontiguousarray(stack)))
        key = (stack.shape, stack.dtype.str)
        if key not in self._buffers:
            dtype = torch.from_numpy(stack[:0]).dtype
            self._buffers[key] = [torch.empty(stack.shape, dtype=dtype, pin_memory=True)
                                  for _ in range(self.ring)]
            self._buffers[("device", *key)] = [torch.empty(stack.shape, dtype=dtype,
                                                           device=self.device)
                                               for _ in range(self.ring)]
            self._events[key] = [None] * self.ring  # last copy out of each pinned slot
            self._events[("used", *key)] = [None] * self.ring  # last read of each device slot
            self._next_slot[key] = 0
        slot = self._next_slot[key]
        self._next_slot[key] = (slot + 1) % self.ring
        pinned = self._buffers[key][slot]
        on_device = self._buffers[("device", *key)][slot]
        if (previous := self._events[key][slot]) is not None:
            previous.synchronize()  # the pinned slot's last copy has left
        np.copyto(pinned.numpy(), stack)
        with torch.cuda.stream(self.copy_stream):
            if (used := self._events[("used", *key)][slot]) is not None:
                self.copy_stream.wait_event(used)
            on_device.copy_(pinned, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(self.copy_stream)
        self._events[key][slot] = copied
        return _Staged(stack.shape, on_device, slot, copied)

    def complete(self, staged: Any) -> np.ndarray:
        """Normalise, run and post-process a staged set; return the result as a host array.

        A set not yet uploaded is uploaded first; post-processing follows ``postprocess``.
        """
        if not isinstance(staged, _Staged):
            staged = self.upload(staged)
        if self.device.type != "cuda":
            with torch.inference_mode():
                return self._compute(staged.frames).numpy()
        key = (staged.shape, _numpy_dtype_str(staged.frames))
        with torch.cuda.stream(self.compute_stream), torch.inference_mode():
            self.compute_stream.wait_event(staged.copied)
            x = normalise_frames(staged.frames, self.mode == "sisr", self.normalisation)
            used = torch.cuda.Event()
            used.record(self.compute_stream)
            self._events[("used", *key)][staged.slot] = used
            result = self._finish(self.forward(x))
            host = self._host_out.get(tuple(result.shape))
            if host is None:
                host = torch.empty(result.shape, dtype=result.dtype, pin_memory=True)
                self._host_out[tuple(result.shape)] = host
            host.copy_(result, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.compute_stream)
        done.synchronize()
        return host.numpy().copy()

    def _compute(self, frames: Tensor) -> Tensor:
        x = normalise_frames(frames.to(self.device), self.mode == "sisr", self.normalisation)
        return self._finish(self.forward(x)).cpu()

    def _finish(self, out: Tensor) -> Tensor:
        raw = out[0, 0].float()
        if self.postprocess:
            return postprocess_t(raw, self.normalisation)
        self.normalisation.keep_raw()
        return raw


def _numpy_dtype_str(t: Tensor) -> str:
    return np.dtype(str(t.dtype).removeprefix("torch.")).str


def _winograd_here() -> bool:
    """Whether the native kernels build here (the loader warns, once, where they do not)."""
    from inference.kernels import load

    try:
        load()
    except BackendUnavailable:
        return False
    return True
