"""Anchored normalisation: SR intensity follows the sample's brightness over a run.

A dimmer set stays dimmer (per set it would not), the anchors come from the first sets and then
stay fixed, brighter sets are clipped (never wrapped), the protocol option is checked, the
PyTorch path (the CUDA backend's functions, on CPU tensors) matches the NumPy one, and a run
records the anchors it used.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile
import torch
from acquisition_support import one_channel_protocol, small_cfg, tiny_dfcan, write_protocol

import acquisition
from acquisition.protocol import load_protocol
from inference.backends.base import InferenceBackend
from inference.backends.processing_torch import normalise_frames, postprocess_t
from inference.backends.select import FallbackBackend
from inference.backends.torch_backend import TorchBackend
from inference.models.dfcan import DFCAN, DFCANConfig
from inference.predict.normalisation import NORMALISATION_MODES, Normalisation
from inference.predict.official import Mode, prepare_input
from inference.predict.processing import postprocess
from inference.registry import build_reconstructor
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

OFFSET = 100.0


def _model(in_channels: int = 9) -> DFCAN:
    torch.manual_seed(0)
    return DFCAN(DFCANConfig(in_channels=in_channels, scale=2, n_groups=1, n_blocks=1,
                             features=16, reduction=4, size_psc=None))


class LinearStub(InferenceBackend):
    """A 'network' that is linear in its input: the mean of the channels, upsampled 2×."""

    kind = "stub"

    def prepare(self, height: int, width: int) -> None:
        pass

    def infer(self, x: np.ndarray) -> np.ndarray:
        mean = x[0].mean(axis=0)
        return (0.25 + 0.5 * np.kron(mean, np.ones((2, 2)))).astype(np.float32)


def _sample(size: int = 32, seed: int = 0) -> np.ndarray:
    """A fixed fluorescent pattern, photons per pixel (0 … about 200)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size))
    for y, x in rng.uniform(4, size - 4, (6, 2)):
        image += 200 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.0)
    return image


def _set(brightness: float, seed: int = 0, noise: bool = False) -> np.ndarray:
    """A 9-frame set of the sample at ``brightness``, in ADU over the camera offset."""
    rng = np.random.default_rng(seed)
    frames = np.stack([_sample() * brightness * (0.8 + 0.05 * k) for k in range(9)])
    if noise:
        frames = rng.poisson(frames).astype(np.float64)
    return np.rint(OFFSET + frames).astype(np.uint16)


def _stub(mode: str, **anchors: float) -> LinearStub:
    stub = LinearStub(_model())
    stub.normalisation = Normalisation(mode, **anchors)  # type: ignore[arg-type]
    return stub


def test_anchored_keeps_a_dimmer_set_dimmer_per_set_does_not() -> None:
    means = {}
    for mode in NORMALISATION_MODES:
        stub = _stub(mode, anchor_sets=1) if mode == "anchored" else _stub(mode)
        means[mode] = [float(stub.reconstruct(_set(b)).mean()) for b in (1.0, 1.0, 0.5, 0.25)]
    per_set, anchored = np.array(means["per-set"]), np.array(means["anchored"])
    np.testing.assert_allclose(per_set, per_set[0], rtol=0.05)  # brightness normalised away
    # anchored: the SR mean falls with the sample (the linear stub: in proportion)
    assert anchored[2] == pytest.approx(0.5 * anchored[0], rel=0.02)
    assert anchored[3] == pytest.approx(0.25 * anchored[0], rel=0.02)


def test_the_trained_network_keeps_a_dimmer_set_dimmer_too() -> None:
    """The bundled DFCAN-SIM on the PyTorch CPU backend (the CUDA path's functions)."""
    from acquisition.demo import bundled_weights
    from inference.models.weights import load_model

    weights = bundled_weights().get("sim")
    if weights is None:
        pytest.skip("no DFCAN-SIM weights bundled")
    model = load_model(weights)
    assert isinstance(model, DFCAN)
    found = {}
    for mode in NORMALISATION_MODES:
        norm = Normalisation(mode, anchor_sets=1)  # type: ignore[arg-type]
        rec = build_reconstructor("dfcan", model=model, backend="torch", device="cpu",
                                  normalisation=norm).reconstructor
        found[mode] = [float(rec.reconstruct(_set(b)).mean()) for b in (1.0, 0.4)]
    assert found["per-set"][1] == pytest.approx(found["per-set"][0], rel=0.02)
    assert found["anchored"][1] < 0.6 * found["anchored"][0]


def test_anchors_come_from_the_first_sets_then_stay_fixed() -> None:
    norm = Normalisation("anchored", anchor_sets=3, headroom=0.0)
    stub = LinearStub(_model())
    stub.normalisation = norm
    sets = [_set(b, seed=i, noise=True) for i, b in enumerate((1.0, 0.9, 1.1, 3.0, 0.2))]
    # with no headroom, the first set is scaled exactly as per set
    first = norm.prepare(sets[0], "sim", 9)
    np.testing.assert_allclose(first, prepare_input(sets[0], "sim", 9), atol=1e-6)
    norm.finish(stub.infer(first))
    reports = [norm.report()]
    for frames in sets[1:]:
        stub.reconstruct(frames)
        reports.append(stub.last_report)
    assert [r["normalisation"] for r in reports] == ["anchoring", "anchoring", "anchored",
                                                    "anchored", "anchored"]
    lows = [float(s.astype(float).min()) for s in sets[:3]]
    highs = [float(s.astype(float).max()) for s in sets[:3]]
    assert norm.input is not None and norm.fixed
    assert norm.input.offset == pytest.approx(np.mean(lows))
    assert norm.input.scale == pytest.approx(np.mean(highs) - np.mean(lows), rel=1e-6)
    # the 3× brighter and the dim set changed nothing
    for key in ("input_offset", "input_scale", "output_offset", "output_scale"):
        assert reports[2][key] == reports[3][key] == reports[4][key]
    recorded = norm.to_dict()
    assert recorded["fixed"] and recorded["sets_counted"] == 3
    assert recorded["input"] == {"offset": norm.input.offset, "scale": norm.input.scale}
    assert json.loads(json.dumps(recorded)) == recorded


def test_anchored_values_above_the_range_are_clipped_not_wrapped() -> None:
    norm = Normalisation("anchored", anchor_sets=1, headroom=0.0)
    stub = LinearStub(_model())
    stub.normalisation = norm
    dim = stub.reconstruct(_set(1.0))
    bright = _set(3.0)
    x = norm.prepare(bright, "sim", 9)[0]
    above = bright > _set(1.0).max()  # beyond the anchored range
    assert above.any() and (x[above] == 1.0).all() and x.min() >= 0.0  # saturated, in place
    out = stub.reconstruct(bright)
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() == 1.0
    # nothing wraps round: every pixel of the brighter set is at least as bright as before
    assert (out >= dim - 1e-6).all()
    # the headroom keeps a set up to (1 + headroom)× the anchors unclipped
    roomy = Normalisation("anchored", anchor_sets=1, headroom=0.5)
    roomy.finish(stub.infer(roomy.prepare(_set(1.0), "sim", 9)))
    assert roomy.prepare(_set(1.4), "sim", 9).max() < 1.0


def test_a_backend_fallen_back_to_keeps_the_channels_anchors() -> None:
    class Failing(LinearStub):
        def infer(self, x: np.ndarray) -> np.ndarray:
            raise RuntimeError("device lost")

    norm = Normalisation("anchored", anchor_sets=1)
    backend = FallbackBackend([("failing", lambda: Failing(_model())),
                               ("stub", lambda: LinearStub(_model()))])
    backend.normalisation = norm
    with pytest.warns(RuntimeWarning, match="device lost"):
        backend.reconstruct(_set(1.0))
    assert isinstance(backend.active, LinearStub) and backend.active.normalisation is norm
    assert norm.fixed and norm.to_dict()["sets_counted"] == 1  # the failed try not counted
    assert backend.last_report["normalisation"] == "anchored"


def test_the_protocol_option_is_checked(tmp_path: Path) -> None:
    tiny_dfcan(tmp_path / "tiny.safetensors")

    def protocol(reconstruction: str) -> Path:
        return one_channel_protocol(tmp_path, reconstruction)

    good = load_protocol(protocol("{method: dfcan, weights: tiny.safetensors, "
                                  "normalisation: anchored, anchor_sets: 5}"))
    rec = good.channels[0].reconstruction
    assert (rec.normalisation, rec.anchor_sets, rec.anchor_headroom) == ("anchored", 5, 0.1)
    default = load_protocol(protocol("{method: dfcan, weights: tiny.safetensors}"))
    assert default.channels[0].reconstruction.normalisation == "per-set"
    bad = {
        "{method: dfcan, weights: tiny.safetensors, normalisation: per-frame}":
            r"normalisation: .*'per-set' or 'anchored'",
        "{method: wiener-sim, normalisation: anchored}":
            r"normalisation: anchored is for method dfcan, not wiener-sim",
        "{method: dfcan, weights: tiny.safetensors, anchor_sets: 4}":
            r"anchor_sets: applies to normalisation: anchored only",
        "{method: dfcan, weights: tiny.safetensors, normalisation: anchored, anchor_sets: 0}":
            r"anchor_sets: .*greater than or equal to 1",
    }
    for text, message in bad.items():
        with pytest.raises(ConfigError) as info:
            load_protocol(protocol(text))
        assert any(re.search(rf":\d+:\d+: .*{message}", m)
                   for m in info.value.messages), info.value.messages
    with pytest.raises(ValueError, match="unknown normalisation"):
        Normalisation("per-frame")  # type: ignore[arg-type]


@pytest.mark.parametrize("sisr", [False, True])
def test_the_torch_path_matches_numpy_for_anchored_sets(sisr: bool) -> None:
    numpy_norm = Normalisation("anchored", anchor_sets=2)
    torch_norm = Normalisation("anchored", anchor_sets=2)
    mode: Mode = "sisr" if sisr else "sim"
    rng = np.random.default_rng(1)
    for i, brightness in enumerate((1.0, 1.2, 0.6, 2.0)):
        frames = _set(brightness, seed=i, noise=True)
        x_np = numpy_norm.prepare(frames, mode, 1 if sisr else 9)
        x_t = normalise_frames(torch.from_numpy(frames), sisr, torch_norm)
        np.testing.assert_allclose(x_t.numpy(), x_np, atol=2e-6)
        raw = (0.3 + 0.4 * rng.random((64, 64))).astype(np.float32)
        raw[10, 10] = 0.99  # a hot pixel to remove
        y_np = numpy_norm.finish(raw)
        y_t = postprocess_t(torch.from_numpy(raw), torch_norm).numpy()
        np.testing.assert_allclose(y_t, y_np, atol=2e-6)
        assert torch_norm.report() == pytest.approx(numpy_norm.report())
    # per set, both are still the official functions
    frames = _set(1.0)
    np.testing.assert_allclose(normalise_frames(torch.from_numpy(frames), False).numpy(),
                               prepare_input(frames, "sim", 9), atol=1e-6)
    np.testing.assert_allclose(postprocess_t(torch.from_numpy(raw)).numpy(), postprocess(raw),
                               atol=1e-6)


def test_the_torch_backend_matches_the_numpy_pipeline_when_anchored() -> None:
    backend = TorchBackend(_model(), "cpu")
    backend.normalisation = Normalisation("anchored", anchor_sets=2)
    reference = TorchBackend(_model(), "cpu")
    reference.normalisation = Normalisation("anchored", anchor_sets=2)
    for i, brightness in enumerate((1.0, 0.8, 0.5)):
        frames = _set(brightness, seed=i, noise=True)
        fast = backend.reconstruct(frames)  # processing_torch around the network
        slow = InferenceBackend.complete(reference, frames)  # NumPy around the same network
        np.testing.assert_allclose(fast, slow, atol=1e-4)


def test_a_run_records_its_anchors(tmp_path: Path) -> None:
    """An anchored run with a calibrated camera: its zero, the anchors in run.json and per set."""
    cfg = small_cfg(tmp_path, 64)
    tiny_dfcan(tmp_path / "tiny.safetensors")
    (tmp_path / "settings.yaml").write_text(
        "camera:\n  calibration: {offset_adu: 100.0, gain_adu_per_e: 2.0, qe: 0.8, "
        "read_noise_e: 1.5}\n")
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}, settings: settings.yaml}}
        mode: tirf-sim
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 2,
              reconstruction: {{method: dfcan, weights: tiny.safetensors,
                                normalisation: anchored, anchor_sets: 2}}}}
        timelapse: {{count: 4}}
        save: {{wf: false, sr: every}}
        output: run
        inference: {{backend: torch, device: cpu}}
        """)
    result = acquisition.run(path, progress=False)
    assert result.completed and result.sr_written == 4
    out = tmp_path / "run"
    summary = json.loads((out / "run.json").read_text())["summary"]
    anchors = summary["reconstruction"]["488"]["normalisation"]
    assert anchors["mode"] == "anchored" and anchors["fixed"] and anchors["sets_counted"] == 2
    assert anchors["input_zero"] == "camera offset" and anchors["input"]["offset"] == 100.0
    assert anchors["input"]["scale_photons"] == pytest.approx(anchors["input"]["scale"] / 1.6)
    assert anchors["output"]["scale"] > 0
    lines = [json.loads(line) for line in
             (out / "sr" / "sr_p000_488.jsonl").read_text().splitlines()[1:]]
    assert [e["normalisation"] for e in lines] == ["anchoring", "anchored", "anchored",
                                                   "anchored"]
    assert {e["input_scale"] for e in lines[1:]} == {anchors["input"]["scale"]}
    assert {e["output_offset"] for e in lines[1:]} == {anchors["output"]["offset"]}
    with tifffile.TiffFile(out / "sr" / "sr_p000_488.ome.tif") as tif:
        xml = tif.ome_metadata or ""
    assert "livesr.normalisation" in xml and "camera offset" in xml
