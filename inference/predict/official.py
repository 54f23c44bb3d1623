"""The official predict pipeline (``src/predict.py``) as a function.

``prctile_norm`` the input (a raw SIM stack jointly, as the official code does), run the model,
then ``rm_outliers(prctile_norm(output))`` and ``uint16(· 65535)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from inference.predict.processing import postprocess, prctile_norm, to_uint16

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from inference.models.dfcan import DFCAN

__all__ = ["Mode", "input_stack", "predict", "prepare_input", "resolve_device", "resolve_mode"]

Mode = Literal["sisr", "sim"]


def resolve_mode(mode: str | None, in_channels: int) -> Mode:
    """``mode`` checked against the model, or the model's own (1 channel: sisr, else sim)."""
    if mode is None:
        return "sisr" if in_channels == 1 else "sim"
    if mode not in ("sisr", "sim"):
        raise ValueError(f"unknown mode {mode!r} (sisr or sim)")
    if mode == "sisr" and in_channels != 1:
        raise ValueError(
            f"sisr mode needs a 1-channel model; this one takes {in_channels} raw frames (use sim)"
        )
    if mode == "sim" and in_channels == 1:
        raise ValueError(
            "sim mode needs a model trained on raw SIM stacks; this one takes 1 channel"
        )
    return "sisr" if mode == "sisr" else "sim"


def resolve_device(device: str | torch.device) -> torch.device:
    """Return a torch device, refusing CUDA when there is none."""
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but CUDA is not available here (use --device cpu)")
    return dev


def input_stack(image_or_stack: np.ndarray, mode: Mode, in_channels: int) -> np.ndarray:
    """Check a 2-D image or an ``(N, H, W)`` stack and return the model's ``(C, H, W)`` float64.

    sisr: a stack is averaged to its wide-field image. sim: the stack's frames are the channels.
    """
    array = np.asarray(image_or_stack)
    if array.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D image or an (N, H, W) stack, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"empty input, shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"input must be real numbers, got dtype {array.dtype}")
    data = array.astype(np.float64)
    if not np.isfinite(data).all():
        raise ValueError("input holds NaN or infinite values")
    if mode == "sisr":
        wf = data.mean(axis=0) if data.ndim == 3 else data
        stack = wf[None]
    else:
        if data.ndim != 3:
            raise ValueError(
                f"sim mode needs a raw stack (N, H, W) of {in_channels} frames, got a 2-D image"
            )
        stack = data
    if stack.shape[0] != in_channels:
        raise ValueError(f"the model takes {in_channels} channels, the input has "
                         f"{stack.shape[0]} (input shape {array.shape})")
    return stack


def prepare_input(
    image_or_stack: np.ndarray,
    mode: Mode,
    in_channels: int,
    min_prc: float = 0,
    max_prc: float = 100,
) -> np.ndarray:
    """Build the network input ``(1, C, H, W)`` float32 from a 2-D image or an ``(N, H, W)`` stack.

    sisr: a stack is averaged to its wide-field image. sim: the stack's frames are the channels
    and are normalised jointly.
    """
    stack = input_stack(image_or_stack, mode, in_channels)
    return prctile_norm(stack, min_prc, max_prc)[None].astype(np.float32)


def predict(
    model: DFCAN,
    image_or_stack: np.ndarray,
    mode: str | None = None,
    device: str | torch.device = "cpu",
    *,
    min_prc: float = 0,
    max_prc: float = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Super-resolve one image or raw stack as the official predict does.

    Returns ``(raw, image)``: the network's float32 output ``(H·s, W·s)`` and the post-processed
    uint16 image.
    """
    in_channels = model.config.in_channels
    chosen = resolve_mode(mode, in_channels)
    dev = resolve_device(device)
    x = torch.from_numpy(prepare_input(image_or_stack, chosen, in_channels, min_prc, max_prc))
    model = model.to(dev).eval()
    with torch.inference_mode(), _full_fp32_convolutions():
        raw = model(x.to(dev))[0, 0].float().cpu().numpy()
    return raw, to_uint16(postprocess(raw))


def _full_fp32_convolutions() -> AbstractContextManager[None]:
    """Return a context with CuDNN convolutions without TF32 (PyTorch allows it by default).

    The reference pipeline keeps the official model's float32 precision on GPUs too. No effect on
    CPU.
    """
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=cudnn.enabled,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=False,
    )
