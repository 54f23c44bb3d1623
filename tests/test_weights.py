"""Weight files: Keras HDF5 import (by order, both naming schemes), safetensors with the
architecture inside, and clear refusals of files that are not what they claim.
"""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.dfgan import Discriminator, DiscriminatorConfig, Generator
from inference.models.weights import (
    WeightsError,
    import_keras_h5,
    keras_order_layers,
    load_model,
    load_weights,
    read_keras_h5,
    read_safetensors_config,
    save_weights,
)

GOLDEN_H5 = Path(__file__).parent / "data" / "golden" / "dfcan_sisr_random_seed0.h5"
INFERENCE = Path(__file__).resolve().parents[1] / "inference"
SMALL = DFCANConfig(in_channels=9, scale=3, gamma=0.5, size_psc=None, n_groups=1, n_blocks=2)

Layer = tuple[str, np.ndarray, np.ndarray]


def write_keras_h5(path: Path, layers: list[Layer]) -> Path:
    """A Keras 2 weights file: ``layer_names`` (with a weightless layer), ``weight_names``."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array(["input_1"] + [n for n, _, _ in layers], dtype="S")
        f.attrs["backend"] = b"tensorflow"
        f.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S")
        for name, kernel, bias in layers:
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/kernel:0", f"{name}/bias:0"], dtype="S")
            g.create_dataset(f"{name}/kernel:0", data=kernel)
            g.create_dataset(f"{name}/bias:0", data=bias)
    return path


def keras_layers_of(model: nn.Module, first_index: int = 0) -> list[Layer]:
    """Our model's weights in Keras layout and naming (``conv2d``, ``conv2d_1``... or from 1)."""
    layers = []
    for i, m in enumerate(keras_order_layers(model), start=first_index):
        w = m.weight.detach().numpy()
        kernel = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T
        name = "conv2d" if i == 0 else f"conv2d_{i}"
        assert m.bias is not None
        layers.append((name, np.ascontiguousarray(kernel), m.bias.detach().numpy()))
    return layers


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ----------------------------------------------------------------------------- Keras HDF5


def test_golden_h5_layout() -> None:
    layers = read_keras_h5(GOLDEN_H5)
    assert len(layers) == 83
    assert (layers[0].name, layers[-1].name) == ("conv2d", "conv2d_82")
    assert layers[0].kernel.shape == (3, 3, 1, 64)
    assert layers[-2].kernel.shape == (3, 3, 64, 256)


def test_golden_h5_import_maps_kernels_hwio_to_oihw() -> None:
    model = load_model(GOLDEN_H5)
    layers = read_keras_h5(GOLDEN_H5)
    assert isinstance(model, DFCAN)
    head = layers[0].kernel  # (kh, kw, in, out)
    assert torch.equal(model.head.weight[5, 0, 1, 2], torch.tensor(head[1, 2, 0, 5]))
    tail = layers[-2].kernel
    assert torch.equal(model.tail.weight[200, 7, 2, 0], torch.tensor(tail[2, 0, 7, 200]))
    down = layers[4].kernel  # first FCA 1x1 down: (1, 1, 64, 4)
    blk = model.groups[0].blocks[0]
    assert torch.equal(blk.fca.down.weight[3, 60, 0, 0], torch.tensor(down[0, 0, 60, 3]))


def test_keras_224_names_map_by_order(tmp_path: Path) -> None:
    """Keras 2.2.4 names start at conv2d_1; layer_names order, not the names, decides."""
    torch.manual_seed(0)
    model = DFCAN(SMALL)
    path = write_keras_h5(tmp_path / "k224.h5", keras_layers_of(model, first_index=1))
    assert read_keras_h5(path)[0].name == "conv2d_1"
    fresh = DFCAN(SMALL)
    import_keras_h5(fresh, path)
    assert_same_weights(model, fresh)


def test_keras_dfgan_depth_config_is_inferred(tmp_path: Path) -> None:
    torch.manual_seed(0)
    gen = Generator(in_channels=9, scale=3)
    path = write_keras_h5(tmp_path / "dfgan.h5", keras_layers_of(gen))
    loaded = load_model(path)
    assert isinstance(loaded, DFCAN)
    assert loaded.config == gen.config
    assert_same_weights(gen, loaded)


def test_keras_discriminator_import(tmp_path: Path) -> None:
    torch.manual_seed(0)
    disc = Discriminator()
    path = write_keras_h5(tmp_path / "disc.h5", keras_layers_of(disc))
    fresh = Discriminator()
    import_keras_h5(fresh, path)
    assert_same_weights(disc, fresh)


def test_h5_with_a_wrong_shape_names_the_layer(tmp_path: Path) -> None:
    layers = [
        (n, k, b)
        for n, k, b in (
            (layer.name, layer.kernel, layer.bias) for layer in read_keras_h5(GOLDEN_H5)
        )
    ]
    name, kernel, bias = layers[7]
    layers[7] = (name, kernel[:, :, :, :32], bias[:32])
    path = write_keras_h5(tmp_path / "bad.h5", layers)
    with pytest.raises(
        WeightsError, match=r"layer 7 \('conv2d_7'\).*\(3, 3, 64, 64\).*\(3, 3, 64, 32\)"
    ):
        import_keras_h5(DFCAN(), path)


def test_h5_with_a_missing_layer_is_refused(tmp_path: Path) -> None:
    layers = [(layer.name, layer.kernel, layer.bias) for layer in read_keras_h5(GOLDEN_H5)]
    path = write_keras_h5(tmp_path / "short.h5", layers[:-1])
    with pytest.raises(
        WeightsError, match=r"82 layers with weights, the model 83; first missing: layer 82"
    ):
        import_keras_h5(DFCAN(), path)
    with pytest.raises(WeightsError, match="not 3 \\+ 5 per FCAB"):
        load_model(path)


def test_h5_of_another_model_is_refused() -> None:
    with pytest.raises(
        WeightsError, match=r"layer 0 \('conv2d'\): expected kernel \(3, 3, 9, 64\)"
    ):
        import_keras_h5(DFCAN(DFCANConfig(in_channels=9)), GOLDEN_H5)
    with pytest.raises(WeightsError, match=r"83 layers with weights, the model 253; layer 81"):
        import_keras_h5(Generator(), GOLDEN_H5)


def test_h5_that_is_not_hdf5_or_not_keras(tmp_path: Path) -> None:
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(WeightsError, match="not a readable HDF5 file"):
        load_model(text)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsError, match="no 'layer_names'"):
        load_model(plain)


# ----------------------------------------------------------------------------- safetensors


def test_safetensors_roundtrip_rebuilds_the_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DFCAN(SMALL).eval()
    path = save_weights(model, tmp_path / "small.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["livesr.architecture"] == "dfcan"
    assert json.loads(meta["livesr.config"]) == SMALL.model_dump()
    loaded = load_model(path)
    assert isinstance(loaded, DFCAN) and loaded.config == SMALL
    assert_same_weights(model, loaded)
    x = torch.rand(1, 9, 12, 10)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


def test_golden_h5_to_safetensors_keeps_the_output(tmp_path: Path) -> None:
    model = load_model(GOLDEN_H5)
    path = save_weights(model, tmp_path / "golden.safetensors")
    assert read_safetensors_config(path) == ("dfcan", DFCANConfig().model_dump())
    assert_same_weights(model, load_model(path))


def test_discriminator_roundtrip(tmp_path: Path) -> None:
    disc = Discriminator(DiscriminatorConfig(in_channels=1))
    loaded = load_model(save_weights(disc, tmp_path / "d.safetensors"))
    assert isinstance(loaded, Discriminator)
    assert_same_weights(disc, loaded)


def test_safetensors_wrong_shape_names_the_tensor(tmp_path: Path) -> None:
    model = DFCAN(SMALL)
    path = save_weights(model, tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = dict(model.state_dict())
    tensors["groups.0.blocks.1.fca.up.weight"] = torch.zeros(64, 8, 1, 1)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(
        WeightsError, match=r"'groups.0.blocks.1.fca.up.weight': expected shape \(64, 4, 1, 1\)"
    ):
        load_model(tmp_path / "bad.safetensors")
    del tensors["groups.0.blocks.1.fca.up.weight"]
    save_file(tensors, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match=r"'groups.0.blocks.1.fca.up.weight'.*missing"):
        load_model(tmp_path / "missing.safetensors")


def test_safetensors_claiming_another_architecture(tmp_path: Path) -> None:
    path = save_weights(DFCAN(SMALL), tmp_path / "m.safetensors")
    with pytest.raises(WeightsError, match=r"'head.weight': expected shape \(64, 1, 3, 3\)"):
        load_weights(DFCAN(), path)
    tensors = DFCAN(SMALL).state_dict()
    meta = {"livesr.architecture": "dfcan", "livesr.config": json.dumps({"in_channels": 0})}
    save_file(tensors, str(tmp_path / "cfg.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="invalid dfcan config"):
        load_model(tmp_path / "cfg.safetensors")
    meta = {"livesr.architecture": "resnet", "livesr.config": "{}"}
    save_file(tensors, str(tmp_path / "arch.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="unknown architecture 'resnet'"):
        load_model(tmp_path / "arch.safetensors")


def test_safetensors_without_metadata_or_corrupt(tmp_path: Path) -> None:
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(WeightsError, match="no LiveSR architecture"):
        load_model(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_model(tmp_path / "junk.safetensors")


def test_pickles_are_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"head.weight": np.zeros(3)}))
    with pytest.raises(WeightsError, match="unknown weights format"):
        load_model(path)
    sources = "\n".join(p.read_text() for p in INFERENCE.rglob("*.py"))
    for path in INFERENCE.rglob("*.py"):  # torch.load only of tensors (training checkpoints)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert keywords.get("weights_only") == "True", f"{path.name}: {ast.unparse(node)}"
    assert "import pickle" not in sources
    assert "allow_pickle=True" not in sources


def test_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_model(tmp_path / "nope.safetensors")


def test_save_refuses_other_suffixes_and_models(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"\.safetensors"):
        save_weights(DFCAN(SMALL), tmp_path / "m.pt")
    with pytest.raises(WeightsError, match="not a known architecture"):
        save_weights(nn.Linear(2, 2), tmp_path / "m.safetensors")
