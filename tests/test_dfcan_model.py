"""DFCAN / DFGAN architecture: shapes, parameter counts, gradients, losses, isolation."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from skimage.metrics import structural_similarity

from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.dfgan import Discriminator, Generator
from inference.training.losses import (
    binary_crossentropy,
    dfcan_loss,
    dfgan_discriminator_loss,
    dfgan_generator_loss,
    gaussian_window,
    ssim,
)

INFERENCE = Path(__file__).resolve().parents[1] / "inference"


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_params(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def fcab_params(f: int = 64, r: int = 16) -> int:
    return 3 * conv_params(3, f, f) + conv_params(1, f, f // r) + conv_params(1, f // r, f)


def test_parameter_counts_of_the_paper() -> None:
    assert n_params(DFCAN(DFCANConfig(in_channels=1, scale=2))) == 1_930_753
    assert n_params(DFCAN(DFCANConfig(in_channels=9, scale=2))) == 1_935_361


def test_parameter_counts_follow_the_layers() -> None:
    tail3 = conv_params(3, 64, 64 * 9) + conv_params(3, 64, 1)
    assert n_params(DFCAN(DFCANConfig(in_channels=25, scale=3))) == (
        conv_params(3, 25, 64) + 16 * fcab_params() + tail3
    )
    tail2 = conv_params(3, 64, 256) + conv_params(3, 64, 1)
    assert n_params(Generator(1, 2)) == conv_params(3, 1, 64) + 50 * fcab_params() + tail2
    widths = [32, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512]
    disc = sum(conv_params(3, a, b) for a, b in zip([1, *widths[:-1]], widths, strict=True))
    disc += 512 * 256 + 256 + 256 + 1
    assert n_params(Discriminator()) == disc


@pytest.mark.parametrize("in_channels", [1, 9, 25])
@pytest.mark.parametrize("scale", [2, 3])
def test_sisr_and_sim_shapes(in_channels: int, scale: int) -> None:
    torch.manual_seed(0)
    model = DFCAN(DFCANConfig(in_channels=in_channels, scale=scale)).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, in_channels, 24, 20))
    assert out.shape == (2, 1, 24 * scale, 20 * scale)
    assert bool(((out > 0) & (out < 1)).all())


@pytest.mark.parametrize("size_psc", [128, None])
def test_odd_sizes_with_and_without_the_spectrum_resize(size_psc: int | None) -> None:
    model = DFCAN(DFCANConfig(size_psc=size_psc, n_groups=2, n_blocks=2)).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 1, 15, 17))
    assert out.shape == (1, 1, 30, 34)
    assert bool(torch.isfinite(out).all())


def test_generator_and_discriminator_shapes() -> None:
    torch.manual_seed(0)
    gen = Generator(in_channels=9, scale=2).eval()
    cfg = gen.config
    assert (cfg.n_groups, cfg.n_blocks, cfg.gamma) == (5, 10, 0.1)
    disc = Discriminator().eval()
    with torch.inference_mode():
        fake = gen(torch.rand(1, 9, 16, 16))
        judged = disc(torch.cat([fake, torch.rand(1, 1, 32, 32)]))
    assert fake.shape == (1, 1, 32, 32)
    assert judged.shape == (2, 1)
    assert bool(((judged > 0) & (judged < 1)).all())


def test_wrong_input_channels_are_refused() -> None:
    model = DFCAN(DFCANConfig(in_channels=9))
    with pytest.raises(ValueError, match=r"expects \(N, 9, H, W\)"):
        model(torch.rand(1, 1, 16, 16))


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="multiple of reduction"):
        DFCANConfig(features=64, reduction=5)
    with pytest.raises(ValidationError):
        DFCANConfig(in_channels=0)
    with pytest.raises(ValidationError):
        DFCANConfig(n_blocks=4, unknown=1)  # type: ignore[call-arg]
    cfg = DFCANConfig(size_psc=None, gamma=0.5)
    assert DFCANConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_gradients_flow_to_every_parameter() -> None:
    """Every parameter gets a finite gradient, non-zero except behind a dead attention bottleneck
    (all of ReLU(down(·)) zero: possible with any init, the official Keras one included).
    """
    torch.manual_seed(0)
    model = DFCAN(DFCANConfig(in_channels=9, scale=2))
    bottlenecks: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if name.endswith("fca.down"):
            prefix = name.removesuffix("down")
            module.register_forward_hook(
                lambda _m, _i, out, p=prefix: bottlenecks.__setitem__(p, out.detach())
            )
    x = torch.rand(2, 9, 32, 32, requires_grad=True)
    dfcan_loss(model(x), torch.rand(2, 1, 64, 64)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    dead = {p for p, out in bottlenecks.items() if not bool((out > 0).any())}
    assert len(dead) <= 4, f"too many dead attention bottlenecks: {sorted(dead)}"
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
        behind_dead = any(name.startswith(d) for d in dead) and not name.endswith("up.bias")
        assert (p.grad.abs().sum() > 0) != behind_dead, name


def test_gan_losses_backpropagate() -> None:
    torch.manual_seed(0)
    disc = Discriminator()
    fake = torch.rand(2, 1, 32, 32, requires_grad=True)
    real = torch.rand(2, 1, 32, 32)
    g_loss = dfgan_generator_loss(fake, real, disc(fake))
    d_loss = dfgan_discriminator_loss(disc(real), disc(fake.detach()))
    g_loss.backward()
    d_loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())


def test_loss_of_identical_inputs_is_zero() -> None:
    y = torch.rand(3, 1, 48, 40)
    assert dfcan_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert dfcan_loss(y * 5 + 2, y).item() == pytest.approx(0.0, abs=1e-6)  # min-max normalised
    assert dfcan_loss(torch.rand(3, 1, 48, 40), y).item() > 0.05


def test_ssim_matches_skimage_with_tf_settings() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((40, 36))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    expected = structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    ours = ssim(torch.from_numpy(a)[None, None].float(), torch.from_numpy(b)[None, None].float())
    assert ours.shape == (1,)
    assert ours.item() == pytest.approx(expected, abs=1e-5)


def test_gaussian_window() -> None:
    w = gaussian_window(11, 1.5)
    assert w.shape == (11, 11)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert w[5, 5] / w[5, 6] == pytest.approx(math.exp(0.5 / 1.5**2), rel=1e-5)


def test_binary_crossentropy_keras_clipping() -> None:
    assert binary_crossentropy(torch.tensor([0.5]), 1.0).item() == pytest.approx(math.log(2))
    clipped = -math.log(1 - float(np.float32(1 - 1e-7)))  # the clip happens in float32
    assert binary_crossentropy(torch.tensor([1.0]), 0.0).item() == pytest.approx(clipped, rel=1e-3)
    d = dfgan_discriminator_loss(torch.tensor([[0.9]]), torch.tensor([[0.2]]))
    assert d.item() == pytest.approx(0.5 * (-math.log(0.9) - math.log(0.8)), rel=1e-6)


def test_inference_never_imports_hardware_acquisition_or_simulators() -> None:
    forbidden = ("hardware", "acquisition", "simulators", "gui")
    for path in INFERENCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            # training and evaluation may draw their data from the simulated microscope, and
            # the dose advisor count photons as it does (BioSR's definition), inside functions
            allowed = (("simulators",) if path.parent.name in ("training", "evaluation")
                       or path.name == "dose_advisor.py" else ())
            for name in names:
                top = name.split(".")[0]
                assert top not in forbidden or top in allowed, f"{path.name} imports {name}"
    code = (
        "import sys, pkgutil, importlib, inference\n"
        "for m in pkgutil.iter_modules(inference.__path__):\n"
        "    importlib.import_module('inference.' + m.name)\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({forbidden!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
