"""The one registry, ``build_reconstructor``: every name builds; unfit weights are refused; the
runner, the GUI (``channel_reconstructor``) and the evaluation (``build_methods``) go through it;
its DFCAN on a CPU backend gives the reference pipeline's output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from inference.models.dfcan import DFCAN, DFCANConfig
from inference.models.weights import save_weights
from inference.reconstructor import DFCANReconstructor, Reconstructor
from inference.registry import (
    RECONSTRUCTOR_NAMES,
    BuiltReconstructor,
    SetwiseWienerSIM,
    WidefieldReconstructor,
    build_reconstructor,
    file_sha256,
)
from inference.training.metrics import upsample_wf

WEIGHTS = Path(__file__).resolve().parents[1] / "inference" / "weights"
#: what the torch backend on the CPU runs (where the native kernels build, as here)
CPU_TORCH = "torch-cpu fp32 rfft-fold channels_last subpixel-conv winograd"
SIM_DEMO = WEIGHTS / "dfcan_sim_demo.safetensors"
SISR_DEMO = WEIGHTS / "dfcan_sisr_demo.safetensors"
DFGAN_DEMO = WEIGHTS / "dfgan_demo.safetensors"
#: the reference output is uint16-quantised (1/65535 = 1.53e-5): that, and float noise
TOLERANCE = 2e-5


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exported ONNX graphs go to the test's folder, not the user's cache."""
    monkeypatch.setenv("LIVESR_CACHE_DIR", str(tmp_path / "cache"))


def _frames(n: int = 9, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 4000, (n, size, size)).astype(np.float32)


def _tiny(path: Path, in_channels: int, scale: int = 2) -> Path:
    torch.manual_seed(0)
    config = DFCANConfig(in_channels=in_channels, scale=scale, n_groups=1, n_blocks=1,
                         features=16, reduction=8, size_psc=None)
    return save_weights(DFCAN(config), path)


# -- every name builds ---------------------------------------------------------------------------

def test_wf_is_the_bicubic_mean() -> None:
    built = build_reconstructor("wf", scale=2)
    assert isinstance(built, BuiltReconstructor)
    recon = built.reconstructor
    assert isinstance(recon, WidefieldReconstructor) and isinstance(recon, Reconstructor)
    assert built.info == {"method": "wf", "model": "wf", "scale": 2, "backend": "numpy"}
    frames = _frames()
    assert np.array_equal(recon.reconstruct(frames), upsample_wf(frames.mean(axis=0), 2))


def test_wiener_sim_live_and_set_wise() -> None:
    pytest.importorskip("inference.wiener_sim.wiener_reconstructor")
    from inference.wiener_sim.wiener_reconstructor import WienerSIMReconstructor

    live = build_reconstructor("wiener-sim", frames_per_set=9)
    assert isinstance(live.reconstructor, WienerSIMReconstructor)
    assert live.info["method"] == "wiener-sim" and live.info["scale"] == 2
    setwise = build_reconstructor("wiener-sim", wiener_estimate="every-set").reconstructor
    assert isinstance(setwise, SetwiseWienerSIM) and setwise.frames_per_set is None
    with pytest.raises(ValueError, match="25 frames per set give 3×, the data 2×"):
        build_reconstructor("wiener-sim", frames_per_set=25, scale=2)


@pytest.mark.parametrize(("name", "weights", "model", "channels"), [
    ("dfcan", SIM_DEMO, "dfcan-sim", 9),
    ("dfcan-sim", SIM_DEMO, "dfcan-sim", 9),
    ("dfcan-sisr", SISR_DEMO, "dfcan-sisr", 1),
    ("dfgan", DFGAN_DEMO, "dfcan-sisr", 1),
])
def test_each_dlsr_name_builds_on_a_backend(name: str, weights: Path, model: str,
                                            channels: int) -> None:
    built = build_reconstructor(name, weights=weights, backend="torch", device="cpu")
    assert isinstance(built.reconstructor, Reconstructor)
    assert built.info == {"method": name, "model": model, "weights": weights.name,
                          "weights_sha256": file_sha256(weights), "scale": 2,
                          "in_channels": channels,
                          "backend": CPU_TORCH}


def test_every_name_is_known() -> None:
    assert set(RECONSTRUCTOR_NAMES) == {"wf", "wiener-sim", "dfcan", "dfcan-sim", "dfcan-sisr",
                                        "dfgan"}
    with pytest.raises(ValueError, match="unknown reconstruction 'dfcan-9000'"):
        build_reconstructor("dfcan-9000")


# -- unfit weights are refused -------------------------------------------------------------------

def test_wrong_weights_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dfcan-sim: needs a weights file"):
        build_reconstructor("dfcan-sim")
    with pytest.raises(ValueError, match=r"is a single-image \(SISR\) model"):
        build_reconstructor("dfcan-sim", weights=SISR_DEMO)
    with pytest.raises(ValueError, match="takes 9 raw frames, not one wide-field image"):
        build_reconstructor("dfcan-sisr", weights=SIM_DEMO)
    with pytest.raises(ValueError, match="upsamples 3×, the data 2×"):
        build_reconstructor("dfcan", weights=_tiny(tmp_path / "x3.safetensors", 1, 3), scale=2)
    from inference.models.dfgan import Discriminator, DiscriminatorConfig

    critic = save_weights(Discriminator(DiscriminatorConfig(widths=(8,))),
                          tmp_path / "critic.safetensors")
    with pytest.raises(ValueError, match="holds a Discriminator, not a DFCAN generator"):
        build_reconstructor("dfgan", weights=critic)


def test_wiener_sim_missing_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "inference.wiener_sim.wiener_reconstructor", None)
    with pytest.raises(ValueError, match="wiener-sim is not available in this installation"):
        build_reconstructor("wiener-sim")


# -- the backend path equals the reference ---------------------------------------------------

@pytest.mark.parametrize("backend", ["onnxruntime", "torch", "auto"])
@pytest.mark.parametrize(("name", "weights"), [("dfcan-sim", SIM_DEMO),
                                               ("dfcan-sisr", SISR_DEMO)])
def test_backend_output_equals_the_reference_pipeline(backend: str, name: str,
                                                      weights: Path) -> None:
    frames = _frames(9, 48)
    reference = DFCANReconstructor.from_file(weights)
    expected = reference.reconstruct(frames if reference.frames_per_set else
                                     frames.mean(axis=0)[None])
    recon = build_reconstructor(name, weights=weights, backend=backend,
                                device="cpu").reconstructor
    out = recon.reconstruct(frames)
    assert out.shape == expected.shape == (96, 96) and out.dtype == np.float32
    assert np.abs(out - expected).max() <= TOLERANCE


# -- the runner, the GUI and the evaluation go through the registry ------------------------------

def _spy(monkeypatch: pytest.MonkeyPatch, module: str) -> list[tuple[str, dict[str, Any]]]:
    """Record every call of ``module.build_reconstructor``, still building the real thing."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def spy(name: str, **kwargs: Any) -> BuiltReconstructor:
        calls.append((name, kwargs))
        return build_reconstructor(name, **kwargs)

    monkeypatch.setattr(f"{module}.build_reconstructor", spy)
    return calls


def test_channel_reconstructor_goes_through_the_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from acquisition.protocol import protocol_from_text
    from acquisition.reconstruction import channel_reconstructor

    _tiny(tmp_path / "tiny.safetensors", 9)
    protocol = protocol_from_text("""
        mode: tirf-sim
        channels:
          - {preset: "488", power_mw: 5, exposure_ms: 1,
             reconstruction: {method: dfcan, weights: tiny.safetensors}}
          - {preset: "561", power_mw: 5, exposure_ms: 1}
        inference: {backend: torch, device: cpu}
        """, base=tmp_path, check=False)
    calls = _spy(monkeypatch, "acquisition.reconstruction")
    built = channel_reconstructor(protocol, protocol.channels[0], (32, 32))
    assert built is not None
    recon, info = built
    assert calls == [("dfcan", {"weights": tmp_path / "tiny.safetensors", "backend": "torch",
                                "device": "cpu", "shape": (32, 32), "frames_per_set": 9,
                                "pattern": None, "normalisation": None})]
    assert list(info) == ["method", "model", "weights", "weights_sha256", "scale",
                          "in_channels", "backend"]
    assert (info["method"], info["model"], info["backend"]) == (
        "dfcan", "dfcan-sim", CPU_TORCH)
    assert recon.reconstruct(_frames()).shape == (64, 64)
    assert channel_reconstructor(protocol, protocol.channels[1], None) is None
    assert len(calls) == 1


def test_build_methods_goes_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference.evaluation.methods import MethodOutput, build_methods

    calls = _spy(monkeypatch, "inference.evaluation.methods")
    methods = build_methods({"wf": None, "dfcan-sim": SIM_DEMO})
    assert [(name, kw["backend"], kw["device"], kw["scale"]) for name, kw in calls] == [
        ("wf", "auto", "cpu", 2), ("dfcan-sim", "auto", "cpu", 2)]
    frames = _frames()
    out = methods["dfcan-sim"](frames)
    assert isinstance(out, MethodOutput) and out.note is None
    expected = DFCANReconstructor.from_file(SIM_DEMO).reconstruct(frames)
    assert np.abs(out.image - expected).max() <= TOLERANCE
    with pytest.raises(ValueError, match="dfcan-sisr: needs a weights file"):
        build_methods({"dfcan-sisr": None})
