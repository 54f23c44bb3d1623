"""Weight files: official Keras HDF5 import, our own safetensors with the architecture inside.

- Keras HDF5 (``model.save_weights`` of the official TF1/Keras code, Keras 2.2.4 or TF2): layers
  with weights are taken in the file's ``layer_names`` order and mapped *by order* onto our
  ``Conv2d`` / ``Linear`` modules (Keras 2.2.4 names start at ``conv2d_1``, TF2 at ``conv2d``).
  Conv kernels HWIO → OIHW, Dense kernels (in, out) → (out, in). The tail conv needs no
  permutation: our models upsample in TF's ``depth_to_space`` order.
- safetensors: the state dict plus metadata ``livesr.architecture`` and ``livesr.config`` (JSON),
  so that a file alone rebuilds its model. Nothing is ever unpickled.

Any file that does not fit its model raises :class:`WeightsError` naming the first mismatch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ValidationError
from torch import nn

from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.dfgan import Discriminator, DiscriminatorConfig

__all__ = [
    "ARCHITECTURES",
    "KerasLayer",
    "WeightsError",
    "build_model",
    "import_keras_h5",
    "infer_dfcan_config",
    "keras_order_layers",
    "load_model",
    "load_weights",
    "read_keras_h5",
    "read_safetensors_config",
    "save_weights",
]

#: architecture name (stored in the files) -> (config class, model class)
ARCHITECTURES: dict[str, tuple[type[BaseModel], type[nn.Module]]] = {
    "dfcan": (DFCANConfig, DFCAN),
    "dfgan_discriminator": (DiscriminatorConfig, Discriminator),
}
_META_FORMAT = "livesr.format"
_META_ARCH = "livesr.architecture"
_META_CONFIG = "livesr.config"
_FORMAT_VERSION = "1"
_H5_SUFFIXES = (".h5", ".hdf5", ".keras.h5")


class WeightsError(ValueError):
    """A weights file that cannot be read, or does not fit the model it claims."""


@dataclass(frozen=True)
class KerasLayer:
    """One Keras layer with weights: its name, kernel and bias (as stored, HWIO or (in, out))."""

    name: str
    kernel: np.ndarray
    bias: np.ndarray | None


def build_model(architecture: str, config: BaseModel | dict[str, Any]) -> nn.Module:
    """Instantiate ``architecture`` (a key of :data:`ARCHITECTURES`) from its config."""
    if architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise WeightsError(f"unknown architecture {architecture!r} (known: {known})")
    config_cls, model_cls = ARCHITECTURES[architecture]
    try:
        cfg = config if isinstance(config, config_cls) else config_cls.model_validate(config)
    except ValidationError as exc:
        raise WeightsError(f"invalid {architecture} config: {exc}") from None
    return model_cls(cfg)


def _architecture_of(model: nn.Module) -> tuple[str, BaseModel]:
    for name, (config_cls, model_cls) in ARCHITECTURES.items():
        if type(model) is model_cls:
            config = getattr(model, "config", None)
            if not isinstance(config, config_cls):
                raise WeightsError(f"{type(model).__name__} has no {config_cls.__name__}")
            return name, config
    raise WeightsError(f"cannot save a {type(model).__name__}: not a known architecture")


# --------------------------------------------------------------------------- safetensors


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s weights and architecture to a ``.safetensors`` file."""
    from safetensors.torch import save_file

    architecture, config = _architecture_of(model)
    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: our weights are written as .safetensors")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {
        _META_FORMAT: _FORMAT_VERSION,
        _META_ARCH: architecture,
        _META_CONFIG: config.model_dump_json(),
    }
    save_file(tensors, str(path), metadata=metadata)
    return path


def read_safetensors_config(path: str | Path) -> tuple[str, dict[str, Any]]:
    """Read the architecture name and config stored in a LiveSR ``.safetensors`` file."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if _META_ARCH not in metadata or _META_CONFIG not in metadata:
        raise WeightsError(
            f"{path}: no LiveSR architecture in its metadata (keys: {sorted(metadata)}); "
            "build the model yourself and use load_weights()"
        )
    try:
        config = json.loads(metadata[_META_CONFIG])
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: config metadata is not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: config metadata is not a JSON object")
    return metadata[_META_ARCH], config


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights into ``model`` from our ``.safetensors`` or an official Keras HDF5 file.

    Every tensor must be present with the model's shape; the first mismatch is reported.
    """
    path = _existing(path)
    if _is_h5(path):
        return import_keras_h5(model, path)
    tensors = _read_safetensors(path)
    expected = model.state_dict()
    for key, param in expected.items():
        if key not in tensors:
            raise WeightsError(f"{path}: tensor {key!r} (shape {tuple(param.shape)}) is missing")
        found = tuple(tensors[key].shape)
        if found != tuple(param.shape):
            raise WeightsError(
                f"{path}: tensor {key!r}: expected shape {tuple(param.shape)}, found {found}"
            )
    extra = [k for k in tensors if k not in expected]
    if extra:
        raise WeightsError(f"{path}: unexpected tensor {extra[0]!r} ({len(extra)} extra in all)")
    model.load_state_dict(tensors, strict=True)
    return model


# --------------------------------------------------------------------------- Keras HDF5


def _is_h5(path: Path) -> bool:
    return path.name.lower().endswith(_H5_SUFFIXES)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras_h5(path: str | Path) -> list[KerasLayer]:
    """Read the layers with weights of a Keras HDF5 weights file, in the file's layer order."""
    import h5py

    path = _existing(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        root = f.get("model_weights", f)
        if "layer_names" not in root.attrs:
            raise WeightsError(
                f"{path}: no 'layer_names' attribute: not a Keras 2 / tf.keras HDF5 weights file"
            )
        layers: list[KerasLayer] = []
        for layer_name in (_text(n) for n in root.attrs["layer_names"]):
            group = root[layer_name]
            names = [_text(n) for n in group.attrs.get("weight_names", [])]
            if not names:
                continue
            arrays = {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n]) for n in names}
            if "kernel" not in arrays or set(arrays) - {"kernel", "bias"}:
                raise WeightsError(
                    f"{path}: layer {len(layers)} ({layer_name!r}) holds {sorted(arrays)}, "
                    "expected a kernel and a bias"
                )
            layers.append(KerasLayer(layer_name, arrays["kernel"], arrays.get("bias")))
    return layers


def keras_order_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """List the model's layers with weights in the order Keras creates them (registration order)."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _keras_shapes(module: nn.Conv2d | nn.Linear) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Kernel (Keras layout) and bias shapes that ``module`` expects."""
    w = tuple(module.weight.shape)
    kernel = (w[2], w[3], w[1], w[0]) if isinstance(module, nn.Conv2d) else (w[1], w[0])
    bias = None if module.bias is None else tuple(module.bias.shape)
    return kernel, bias


def _first_mismatch(layers: list[KerasLayer], modules: list[nn.Conv2d | nn.Linear]) -> str | None:
    """Describe the first layer (by order) whose shapes differ or that one side lacks, or None."""
    for i, (layer, module) in enumerate(zip(layers, modules, strict=False)):
        kernel_shape, bias_shape = _keras_shapes(module)
        found_bias = None if layer.bias is None else tuple(layer.bias.shape)
        if tuple(layer.kernel.shape) != kernel_shape or found_bias != bias_shape:
            return (
                f"layer {i} ({layer.name!r}): expected kernel {kernel_shape} and bias "
                f"{bias_shape}, found kernel {tuple(layer.kernel.shape)} and bias {found_bias}"
            )
    i = min(len(layers), len(modules))
    if i < len(modules):
        module = modules[i]
        return f"first missing: layer {i} ({type(module).__name__}, {_keras_shapes(module)[0]})"
    if i < len(layers):
        return f"first extra: layer {i} ({layers[i].name!r}, kernel {layers[i].kernel.shape})"
    return None


def import_keras_h5(model: nn.Module, path: str | Path) -> nn.Module:
    """Copy an official Keras HDF5 file's weights into ``model``, layer by layer in order."""
    path = Path(path)
    layers = read_keras_h5(path)
    modules = keras_order_layers(model)
    problem = _first_mismatch(layers, modules)
    if problem is not None:
        counts = ""
        if len(layers) != len(modules):
            counts = f"the file has {len(layers)} layers with weights, the model {len(modules)}; "
        raise WeightsError(f"{path}: {counts}{problem}")
    with torch.no_grad():
        for layer, module in zip(layers, modules, strict=True):
            axes = (3, 2, 0, 1) if isinstance(module, nn.Conv2d) else (1, 0)
            kernel = np.ascontiguousarray(np.transpose(layer.kernel, axes))
            module.weight.copy_(torch.from_numpy(kernel))
            if module.bias is not None and layer.bias is not None:
                module.bias.copy_(torch.from_numpy(np.asarray(layer.bias)))
    return model


#: FCABs in all -> (groups, blocks per group, γ) of the official models
_OFFICIAL_DEPTHS: dict[int, tuple[int, int, float]] = {16: (4, 4, 0.8), 50: (5, 10, 0.1)}


def infer_dfcan_config(layers: list[KerasLayer], **overrides: Any) -> DFCANConfig:
    """Guess a DFCAN config from a Keras file's layers.

    Input channels and features come from the head kernel, the scale from the tail conv, the
    reduction from the first 1×1 kernel and the depth from the conv count (16 FCABs: DFCAN16,
    4 × 4, γ 0.8; 50: DFGAN50, 5 × 10, γ 0.1). ``overrides`` (e.g. ``gamma``, ``size_psc``,
    ``n_groups``, ``n_blocks``) take precedence; other depths need ``n_groups`` and ``n_blocks``.
    """
    if len(layers) < 8 or any(layer.kernel.ndim != 4 for layer in layers):
        raise WeightsError(
            f"{len(layers)} layers with weights: not a DFCAN (head, FCABs of 5 convs, tail, out)"
        )
    head, tail = layers[0].kernel, layers[-2].kernel
    in_channels, features = int(head.shape[2]), int(head.shape[3])
    n_fcab, rest = divmod(len(layers) - 3, 5)
    if rest:
        raise WeightsError(f"{len(layers)} conv layers: not 3 + 5 per FCAB")
    scale = round((tail.shape[3] / features) ** 0.5)
    reduction = features // max(int(layers[4].kernel.shape[3]), 1)
    guessed: dict[str, Any] = {
        "in_channels": in_channels,
        "features": features,
        "scale": scale,
        "reduction": reduction,
    }
    if n_fcab in _OFFICIAL_DEPTHS:
        guessed["n_groups"], guessed["n_blocks"], guessed["gamma"] = _OFFICIAL_DEPTHS[n_fcab]
    guessed.update(overrides)
    if "n_groups" not in guessed or "n_blocks" not in guessed:
        raise WeightsError(
            f"{n_fcab} FCABs is not an official depth (16 or 50): pass n_groups and n_blocks"
        )
    if guessed["n_groups"] * guessed["n_blocks"] != n_fcab:
        raise WeightsError(
            f"the file has {n_fcab} FCABs, not {guessed['n_groups']} × {guessed['n_blocks']}"
        )
    try:
        return DFCANConfig.model_validate(guessed)
    except ValidationError as exc:
        raise WeightsError(f"inferred config is invalid: {exc}") from None


def load_model(path: str | Path, device: str | torch.device = "cpu", **overrides: Any) -> nn.Module:
    """Rebuild a model from a weights file, in eval mode on ``device``.

    ``.safetensors``: architecture and config from its metadata (``overrides`` may change
    settings that do not touch the weights' shapes, e.g. ``size_psc``). Keras ``.h5``: a DFCAN
    whose config is inferred by :func:`infer_dfcan_config` (``overrides`` passed on).
    """
    path = _existing(path)
    if _is_h5(path):
        model: nn.Module = DFCAN(infer_dfcan_config(read_keras_h5(path), **overrides))
        import_keras_h5(model, path)
    elif path.suffix == ".safetensors":
        architecture, config = read_safetensors_config(path)
        model = build_model(architecture, {**config, **overrides})
        load_weights(model, path)
    else:
        raise WeightsError(f"{path}: unknown weights format (expected .safetensors or .h5)")
    return model.to(device).eval()
