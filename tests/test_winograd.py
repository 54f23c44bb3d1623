"""Winograd 3×3 convolutions and the channels-last fold: the native CPU kernels and the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inference import kernels
from inference.backends.errors import BackendUnavailable
from inference.backends.torch_backend import TorchBackend
from inference.kernels import load
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.dft import fold_axis
from inference.models.weights import load_model
from inference.models.winograd import (
    InferenceFCAB,
    WinogradConv2d,
    eligible,
    with_winograd,
)

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dlsr" / "golden"
ACTIVATION = {None: lambda y: y, "relu": torch.relu, "gelu": nn.functional.gelu}


def conv(c_in: int, c_out: int, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    layer = nn.Conv2d(c_in, c_out, 3, padding=1)
    nn.init.normal_(layer.bias, std=0.5)
    return layer


@pytest.mark.parametrize("tile", [4, 6])
@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
@pytest.mark.parametrize(("c_in", "c_out", "shape"), [
    (16, 16, (1, 24, 24)),  # whole tiles
    (32, 48, (2, 37, 50)),  # a batch, partial tiles at the bottom and right
    (64, 4, (1, 13, 7)),  # outputs padded to 16 in the kernel; smaller than a tile
    (9, 64, (1, 30, 30)),  # inputs padded to 16 (a SIM head)
])
def test_winograd_equals_the_direct_convolution(tile: int, activation: str | None, c_in: int,
                                                c_out: int, shape: tuple[int, int, int]) -> None:
    layer = conv(c_in, c_out)
    n, h, w = shape
    x = torch.randn(n, c_in, h, w)
    with torch.no_grad():
        expected = ACTIVATION[activation](layer(x))
        got = WinogradConv2d(layer, activation, tile)(x)
    assert got.shape == expected.shape
    assert got.is_contiguous(memory_format=torch.channels_last) or c_out % 16
    scale = float(expected.abs().max())
    assert float((got - expected).abs().max()) < 2e-5 * scale


def test_the_kernel_gelu_is_torchs_exact_gelu() -> None:
    layer = nn.Conv2d(16, 16, 3, padding=1)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:, :, 1, 1] = torch.eye(16)  # identity: the output is the activation alone
        layer.bias.zero_()
        x = torch.linspace(-9, 9, 16 * 8 * 8).reshape(1, 16, 8, 8)
        before = WinogradConv2d(layer)(x)  # x, to Winograd's rounding
        got = WinogradConv2d(layer, "gelu")(x)
    assert float((before - x).abs().max()) < 1e-5
    assert float((got - nn.functional.gelu(before)).abs().max()) < 5e-7


def test_what_winograd_takes_and_refuses() -> None:
    assert eligible(conv(16, 4)) and eligible(nn.Conv2d(1, 16, 3, padding=1))  # zero-padded
    assert not eligible(nn.Conv2d(16, 16, 3, padding=1, padding_mode="reflect"))
    assert not eligible(nn.Conv2d(16, 16, 5, padding=2))
    assert not eligible(nn.Conv2d(16, 16, 3, padding=1, stride=2))
    assert not eligible(nn.Conv2d(16, 16, 3, padding=1).to(torch.bfloat16))
    with pytest.raises(ValueError, match="3×3"):
        WinogradConv2d(nn.Conv2d(16, 16, 5, padding=2))
    with pytest.raises(ValueError, match="not grouped"):
        WinogradConv2d(nn.Conv2d(16, 16, 3, padding=1, groups=2))
    with pytest.raises(ValueError, match="activation"):
        WinogradConv2d(conv(16, 16), "tanh")
    with pytest.raises(ValueError, match="tile"):
        WinogradConv2d(conv(16, 16), tile=5)
    with pytest.raises(ValueError, match=r"expected \(N, 16, H, W\)"):
        WinogradConv2d(conv(16, 16))(torch.zeros(1, 8, 8, 8))
    ops = load()
    with pytest.raises(RuntimeError, match="contiguous float32"):
        ops.conv3x3(torch.zeros(1, 8, 8, 16).transpose(1, 2), torch.zeros(64, 16, 16),
                    torch.zeros(16), 0, 6, 32)
    with pytest.raises(RuntimeError, match="4×4 or 6×6"):
        ops.conv3x3(torch.zeros(1, 8, 8, 16), torch.zeros(64, 16, 16), torch.zeros(16), 0, 5, 32)


@pytest.mark.parametrize(("folds", "shape"), [((2, 2), (2, 32, 64, 48)), ((1, 3), (1, 16, 9, 30))])
def test_fold_writes_the_channels_first_sum_of_blocks(folds: tuple[int, int],
                                                      shape: tuple[int, int, int, int]) -> None:
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    fh, fw = folds
    h, w = shape[2] // fh, shape[3] // fw
    expected = fold_axis(fold_axis(x, -2, fh, h), -1, fw, w)
    got = load().fold_nchw(x.permute(0, 2, 3, 1), fh, fw)
    assert got.is_contiguous() and got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)


def test_the_network_with_winograd_matches_the_reference() -> None:
    torch.manual_seed(0)
    model = DFCAN(DFCANConfig(n_groups=2, n_blocks=2, features=32, reduction=8, size_psc=32))
    reference = TorchBackend(model, "cpu", dft="fft", conv="direct", postprocess=False)
    fast = TorchBackend(model, "cpu", postprocess=False)
    assert fast.conv == "winograd" and "winograd" in fast.description
    net = fast.network(64, 64)
    assert sum(isinstance(m, InferenceFCAB) for m in net.modules()) == 4
    convs = [m for m in net.modules() if isinstance(m, WinogradConv2d)]
    assert len(convs) == 1 + 2 * 4 + 4 + 2  # head, FCAB pairs, FCA convs, tail, last conv
    x = torch.rand(1, 1, 64, 64)
    assert float((fast.forward(x) - reference.forward(x)).abs().max()) < 1e-5
    assert model.groups[0].blocks[0].conv1.weight.dtype == torch.float32  # the model untouched
    assert isinstance(model.tail, nn.Conv2d)


@pytest.mark.skipif(not GOLDEN.is_dir(), reason="../shared/reference is missing")
def test_winograd_on_the_golden_case_stays_within_1e_5_of_the_official_output() -> None:
    model = load_model(GOLDEN / "dfcan_sisr_random_seed0.h5")
    x = np.load(GOLDEN / "input_crop128.npy").transpose(0, 3, 1, 2).copy()
    official = np.load(GOLDEN / "output_crop128.npy")[0, :, :, 0]
    for tile in (4, 6):
        net = with_winograd(TorchBackend(model, "cpu", conv="direct").network(128, 128), tile)
        assert {m.tile for m in net.modules() if isinstance(m, WinogradConv2d)} == {tile}
        with torch.no_grad():
            out = net(torch.from_numpy(x).contiguous(memory_format=torch.channels_last))
        assert float(np.abs(out[0, 0].numpy() - official).max()) < 1e-5


def test_without_a_compiler_the_cpu_runs_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "_loaded", [])
    monkeypatch.setattr(kernels, "_failed", ["the native CPU kernels could not be built here"])
    model = DFCAN(DFCANConfig(n_groups=1, n_blocks=1, features=16, reduction=8, size_psc=16))
    backend = TorchBackend(model, "cpu")
    assert backend.conv == "direct" and "winograd" not in backend.description
    assert backend.infer(np.zeros((1, 1, 16, 16), np.float32)).shape == (32, 32)
    with pytest.raises(BackendUnavailable, match="could not be built"):
        TorchBackend(model, "cpu", conv="winograd")
    with pytest.raises(ValueError, match="CPU in fp32 only"):
        TorchBackend(model, "cpu", "bf16", conv="winograd")


def test_torch_compile_traces_the_kernels() -> None:
    layer = conv(16, 16)
    module = WinogradConv2d(layer, "gelu")
    x = torch.randn(1, 16, 20, 20).contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(module, fullgraph=True, dynamic=False)
    with torch.no_grad():
        assert torch.allclose(compiled(x), module(x))


def test_an_unwritable_cache_means_no_kernels_not_a_crash(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LIVESR_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    monkeypatch.setattr(kernels, "_loaded", [])
    monkeypatch.setattr(kernels, "_failed", [])
    with pytest.raises(BackendUnavailable, match="could not be built here"):
        kernels.load()
    with pytest.raises(BackendUnavailable):  # the reason is kept: no second attempt
        kernels.load()


def test_a_winograd_network_copies_and_runs_with_grad_enabled() -> None:
    import copy

    torch.manual_seed(0)
    model = DFCAN(DFCANConfig(n_groups=1, n_blocks=1, features=16, reduction=8, size_psc=16))
    net = TorchBackend(model, "cpu").network(32, 32)
    twin = copy.deepcopy(net)  # the operators are looked up when called, not held
    x = torch.rand(1, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    out = net(x)  # grad mode on: the copy needs no grad, so the in-place passes are allowed
    assert not out.requires_grad
    assert torch.equal(out, twin(x))


def test_the_amplitude_kernel_at_the_edges_of_the_float_range() -> None:
    ops = load()
    values = torch.tensor([3e19 + 4e19j, 1e-30 + 0j, 0j, complex("nan"), complex("inf"),
                           1 + 1j, -2 - 2j, 5j] * 2, dtype=torch.complex64).reshape(1, 1, 1, 16)
    got = ops.fca_amplitude(values, torch.arange(16), 1.0, 1e-12, 0.8)[0, :, 0]
    expected = (values.abs().double().flatten() + 1e-12) ** 0.8
    finite = torch.isfinite(expected)
    assert torch.allclose(got.double()[finite], expected[finite], rtol=1e-5, atol=0)
    assert torch.isnan(got[3]) and torch.isinf(got[4])  # NaN and inf pass through


def test_a_nan_is_kept_by_the_fused_relu() -> None:
    layer = conv(16, 16)
    x = torch.randn(1, 16, 6, 6)
    x[0, 0, 3, 3] = float("nan")
    with torch.no_grad():
        got = WinogradConv2d(layer, "relu")(x)
        expected = torch.relu(layer(x))
    # as torch's relu: not turned into 0 (and spread over its Winograd tile, not only 3×3)
    assert torch.isnan(expected).any() and torch.isnan(got)[torch.isnan(expected)].all()
