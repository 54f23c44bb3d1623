"""The trust signal per SR set: it ranks held-out sets by DFCAN's error, the fallback replaces
exactly the sets below the threshold, the protocol option is checked, and a run records it.

The rank correlation is measured on held-out cells (root seed 9191: training drew from seeds 0
and 1, the evaluation matrix from 2024, ``benchmarks/bench_trust.py`` from 7021).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from acquisition_support import one_channel_protocol, small_cfg, tiny_dfcan, write_protocol
from scipy.stats import spearmanr

import acquisition
from acquisition.display import DisplaySlot, SRDisplay
from acquisition.protocol import load_protocol
from acquisition.set_info import SetInfo
from acquisition.trust import TrustedReconstructor, TrustTally
from inference.evaluation.trust import (
    DEFAULT_SIGNAL,
    TrustMeter,
    TrustReading,
    band_agreement,
    spectral_snr,
)
from inference.registry import WidefieldReconstructor
from inference.streaming import StreamingPredictor
from yamlconfig.located import ConfigError

#: the chosen signal's Spearman correlation with −NRMSE on the test's 32 held-out sets is at
#: least this (the issue's target; measured here: 0.716)
RANK_BOUND = 0.6


def test_the_chosen_signal_ranks_held_out_sets_by_their_error() -> None:
    """4 structures × 2 held-out cells × 4 doses at 64².

    The shipped DFCAN-SIM's official NRMSE against the trust: Spearman ρ ≥ :data:`RANK_BOUND`.
    """
    from inference.metrics.quality import nrmse
    from inference.models.weights import load_model
    from inference.registry import SetwiseWienerSIM, build_reconstructor
    from simulators.pairs import noise_seed, sample_scenes

    weights = Path(__file__).resolve().parents[1] / "inference/weights/dfcan_sim_demo.safetensors"
    dfcan = build_reconstructor("dfcan-sim", model=load_model(weights), backend="torch",
                                device="cpu", scale=2).reconstructor
    meter = TrustMeter(DEFAULT_SIGNAL, wiener=SetwiseWienerSIM(9))
    trust, error = [], []
    structures = ["ccp", "er", "microtubules", "factin"]
    for _, sample_seed, scene in sample_scenes(structures, "tirf-sim", 64, 9191, 8):
        for level in (10, 25, 100, 600):
            recorded = scene.at_photons(level, None, np.random.default_rng(
                noise_seed(sample_seed, level)))
            raw = recorded.raw.astype(np.float32)
            sr = dfcan.reconstruct(raw)
            trust.append(meter.measure(raw, sr).value)
            error.append(nrmse(recorded.gt, sr))
    rho = float(spearmanr(trust, -np.array(error)).statistic)
    assert rho >= RANK_BOUND, (rho, trust, error)


def test_band_agreement_is_affine_invariant_and_falls_with_noise() -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((128, 128), np.float32)
    image[rng.integers(8, 120, 40), rng.integers(8, 120, 40)] = 1.0
    from scipy.ndimage import gaussian_filter

    image = gaussian_filter(image, 1.5)
    pixel, cutoff = 0.0313, 5.68
    assert band_agreement(image, 3 * image + 7, pixel, cutoff) == pytest.approx(1.0, abs=1e-5)
    noisy = [band_agreement(image, image + s * rng.standard_normal(image.shape).astype(
        np.float32), pixel, cutoff) for s in (0.001, 0.01, 0.1)]
    assert noisy[0] > noisy[1] > noisy[2]
    frames = np.stack([image[::2, ::2] * 1000 + 100] * 9)
    dim = frames / 50 + 100 + rng.poisson(5, frames.shape)
    assert spectral_snr(frames, 0.0626, cutoff) > spectral_snr(dim, 0.0626, cutoff)


class _Half:
    """A stand-in DFCAN: every set → 0.5 on the 2× grid."""

    name = "dfcan-test"
    scale = 2
    frames_per_set: int | None = 9

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        return np.full((2 * frames.shape[1], 2 * frames.shape[2]), 0.5, np.float32)


class _Scripted:
    """Trust values in a given order; its 'Wiener-SIM' image is 0.25 everywhere."""

    signal = "scripted"

    def __init__(self, values: list[float]) -> None:
        self.values = iter(values)

    def measure(self, frames: np.ndarray, sr: np.ndarray) -> TrustReading:
        return TrustReading(next(self.values), self.signal, np.full(sr.shape, 0.25, np.float32))


VALUES = [0.9, 0.2, 0.5, 0.4999, 0.7, -0.3]
LOW = [False, True, False, True, False, True]


def _stream(reconstructor: TrustedReconstructor, sets: list[np.ndarray]
            ) -> tuple[list[np.ndarray], list[dict[str, object]], TrustTally, SRDisplay]:
    tally, display = TrustTally(), SRDisplay(DisplaySlot())
    tally.configure("488", "scripted", reconstructor.threshold, reconstructor.fallback)
    images, reports = [], []
    with StreamingPredictor[SetInfo](reconstructor, mode="every") as predictor:
        for t, frames in enumerate(sets):
            predictor.submit(frames, SetInfo(t, 0, "488", 0.0, 1.0))
        for _ in sets:
            result = predictor.get(timeout=10)
            tally.add(result)
            display.show(result)
            assert result.image is not None
            images.append(result.image)
            reports.append(result.report)
    return images, reports, tally, display


@pytest.mark.parametrize("fallback", ["none", "wiener-sim", "wf"])
def test_the_fallback_replaces_exactly_the_sets_below_the_threshold(fallback: str) -> None:
    rng = np.random.default_rng(3)
    sets = [(100 + 50 * rng.random((9, 16, 16))).astype(np.float32) for _ in VALUES]
    wf = WidefieldReconstructor(2) if fallback == "wf" else None
    rec = TrustedReconstructor(_Half(), _Scripted(VALUES), threshold=0.5, fallback=fallback,
                               fallback_reconstructor=wf)
    images, reports, tally, display = _stream(rec, sets)
    assert [r["trust_low"] for r in reports] == LOW
    assert [r["trust"] for r in reports] == VALUES
    for frames, image, report, low in zip(sets, images, reports, LOW, strict=True):
        if not low or fallback == "none":
            assert "shown" not in report
            np.testing.assert_array_equal(image, 0.5)
        elif fallback == "wiener-sim":
            assert report["shown"] == "wiener-sim"
            np.testing.assert_array_equal(image, 0.25)
        else:
            assert report["shown"] == "wf"
            up = WidefieldReconstructor(2).reconstruct(frames)
            np.testing.assert_allclose(image, (up - up.min()) / np.ptp(up), atol=1e-6)
    summary = tally.summary()["488"]
    assert summary["count"] == 6 and summary["below_threshold"] == 3
    assert summary["fallback_shown"] == (0 if fallback == "none" else 3)
    assert summary["min"] == -0.3 and summary["max"] == 0.9
    assert summary["median"] == pytest.approx(np.median(VALUES))
    assert summary["sets"]["low"] == LOW and summary["sets"]["t"] == list(range(6))
    assert display.low_trust == 3


def test_a_set_the_signal_cannot_judge_is_shown_as_it_is() -> None:
    class Failing:
        signal = "agreement"

        def measure(self, frames: np.ndarray, sr: np.ndarray) -> TrustReading:
            raise ValueError("no pattern found")

    rec = TrustedReconstructor(_Half(), Failing(), threshold=0.5, fallback="wiener-sim")
    images, reports, tally, _ = _stream(rec, [np.ones((9, 8, 8), np.float32)])
    np.testing.assert_array_equal(images[0], 0.5)
    assert reports[0]["trust_error"] == "ValueError: no pattern found"
    assert tally.summary()["488"]["unmeasured"] == 1


def test_the_protocol_option_is_checked(tmp_path: Path) -> None:
    tiny_dfcan(tmp_path / "tiny.safetensors")
    tiny_dfcan(tmp_path / "sisr.safetensors", in_channels=1)

    def protocol(reconstruction: str, mode: str = "tirf-sim") -> Path:
        return one_channel_protocol(tmp_path, reconstruction, mode)

    good = load_protocol(protocol("{method: dfcan, weights: tiny.safetensors, "
                                  "trust: {threshold: 0.4, fallback: wiener-sim}}"))
    trust = good.channels[0].reconstruction.trust
    assert trust is not None
    assert (trust.signal, trust.threshold, trust.fallback) == ("combined", 0.4, "wiener-sim")
    assert load_protocol(protocol("{method: dfcan, weights: tiny.safetensors}")
                         ).channels[0].reconstruction.trust is None
    bad = {
        ("{method: wiener-sim, trust: {threshold: 0.5}}", "tirf-sim"):
            r"trust: the trust signal judges DFCAN output, not wiener-sim",
        ("{method: dfcan, weights: tiny.safetensors, trust: {fallback: wf}}", "tirf-sim"):
            r"fallback: fallback wf needs a threshold",
        ("{method: dfcan, weights: tiny.safetensors, trust: {signal: psnr}}", "tirf-sim"):
            r"signal: .*'combined'",
        ("{method: dfcan, weights: tiny.safetensors, trust: {threshold: 0.5, fallbak: wf}}",
         "tirf-sim"): r"fallbak: .*not permitted",
        ("{method: dfcan, weights: sisr.safetensors, trust: {threshold: 0.5}}", "wf"):
            r"signal: combined needs 9-frame linear SIM sets, not wf",
        ("{method: dfcan, weights: sisr.safetensors, trust: {signal: spectrum, threshold: 1, "
         "fallback: wiener-sim}}", "wf"): r"fallback: wiener-sim needs SIM sets, not wf mode",
    }
    for (text, mode), message in bad.items():
        with pytest.raises(ConfigError) as info:
            load_protocol(protocol(text, mode))
        assert any(re.search(rf":\d+:\d+: .*{message}", m)
                   for m in info.value.messages), info.value.messages


def test_a_run_records_each_sets_trust_and_falls_back_below_the_threshold(
        tmp_path: Path) -> None:
    """The demo microscope, a 64² sensor, a tiny DFCAN: every SR set's trust in its JSON line
    and in run.json; the sets below the threshold are saved as their Wiener-SIM image.
    """
    cfg = small_cfg(tmp_path, 64)
    tiny_dfcan(tmp_path / "tiny.safetensors")
    path = write_protocol(tmp_path, f"""
        microscope: {{config: {cfg.name}}}
        mode: tirf-sim
        channels:
          - {{preset: "488", power_mw: 20, exposure_ms: 2, structure: microtubules,
              reconstruction: {{method: dfcan, weights: tiny.safetensors,
                                trust: {{threshold: 100, fallback: wiener-sim}}}}}}
        timelapse: {{count: 3}}
        save: {{wf: false, sr: every}}
        output: run
        inference: {{backend: torch, device: cpu}}
        """)
    result = acquisition.run(path, progress=False)
    assert result.completed and result.sr_written == 3
    out = tmp_path / "run"
    summary = json.loads((out / "run.json").read_text())["summary"]["trust"]["488"]
    assert summary["signal"] == "combined" and summary["threshold"] == 100
    assert summary["count"] + summary["unmeasured"] == 3
    lines = [json.loads(line) for line in
             (out / "sr" / "sr_p000_488.jsonl").read_text().splitlines()[1:]]
    measured = [e for e in lines if "trust" in e]
    assert len(measured) == summary["count"] and summary["count"] >= 2
    assert summary["sets"]["trust"] == [e["trust"] for e in measured]
    for entry in measured:  # every trust is below 100: each set was saved as its Wiener-SIM
        assert entry["trust_low"] and entry["shown"] == "wiener-sim" and entry["trust"] < 100
    assert summary["below_threshold"] == summary["fallback_shown"] == summary["count"]
    assert result.trust["488"]["count"] == summary["count"]
