"""Pattern estimation at low light: blind, with the pattern prior, calibrated and tracked, and true.

    python benchmarks/bench_estimation_priors.py            # 256² TIRF-SIM sets, 5–100 photons

For each pattern modulation (the simulator's 0.9, and 0.2 as in the real MT.mrc), structure,
photon level and seed: a simulated raw set (the simulator's default TIRF-SIM pattern, phases
stepped by 2π/3 from a random offset) is estimated blind (each
orientation on its own), with :class:`~inference.wiener_sim.priors.PatternPrior` (one |k|,
orientations 60° apart, the phase step known), and ``calibrated``: the pattern estimated from a
bright set (300 photons) of the same sample before the phases drifted by a random amount per
orientation, the drift measured and undone per set (:mod:`inference.wiener_sim.phase_tracking`,
as a live run does). Reported per level: how often each is accepted (no note; calibrated: the
drift trusted), the carrier error (|k| relative, angle in degrees), the phase-offset error, and the
Wiener-SIM affine NRMSE against the ground truth relative to the reconstruction with the true
parameters. Writes ``benchmarks/results/estimation_priors.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from inference.metrics import nrmse_affine
from inference.wiener_sim import (
    OTFModel,
    ReconstructionPlan,
    SIMCalibration,
    SIMGeometry,
    SIMOptics,
    WienerSettings,
    estimate_calibration,
)
from inference.wiener_sim.phase_tracking import PhaseTracker
from inference.wiener_sim.priors import PatternPrior
from simulators import CameraModel, PatternSettings, render_set

OUT = Path("benchmarks/results/estimation_priors.json")
LEVELS = (5, 8, 10, 15, 25, 50, 100)
STRUCTURES = ("microtubules", "er")
SEEDS = (1, 2, 3)
SIZE = 256
MODULATIONS = (0.9, 0.2)
NAMES = ("blind", "prior", "calibrated")
BRIGHT = 300  # photons of the calibration set


def true_calibration(params: dict, shape: tuple[int, int], pixel_um: float,
                     background: float) -> SIMCalibration:
    """The simulator's pattern as a calibration (phase offsets exact, modulation as set)."""
    pattern = params["pattern"]
    k = np.array(pattern["k_vectors_per_um"])
    phases = np.array(pattern["phases_rad"])
    n = len(k)
    amplitudes = np.full((n, 1), pattern["modulation"] / 2, dtype=complex)
    return SIMCalibration(SIMGeometry.for_frames(9), shape, pixel_um, background, k, phases,
                          amplitudes, np.ones(n), np.ones(n), np.zeros((n, 3)),
                          np.zeros((n, 1)))


def errors(cal: SIMCalibration, params: dict) -> dict[str, float]:
    """Worst carrier and phase-offset errors against the truth (k and −k are one pattern)."""
    k_true = np.array(params["pattern"]["k_vectors_per_um"])
    phases_true = np.array(params["pattern"]["phases_rad"])
    k_err, angle_err, phase_err = [], [], []
    for o in range(len(k_true)):
        sign = 1.0 if np.dot(cal.k_per_um[o], k_true[o]) > 0 else -1.0
        k = sign * cal.k_per_um[o]
        k_err.append(abs(np.hypot(*k) / np.hypot(*k_true[o]) - 1))
        turn = np.angle(complex(k[1], k[0]) / complex(k_true[o][1], k_true[o][0]))
        angle_err.append(abs(np.degrees(turn)))
        # the offset the reconstruction uses: phases plus the band amplitude's angle
        offset = sign * (cal.phases_rad[o] + np.angle(cal.amplitudes[o, 0])) - phases_true[o]
        phase_err.append(float(np.max(np.abs(np.angle(np.exp(1j * offset))))))
    return {"k_rel": float(max(k_err)), "angle_deg": float(max(angle_err)),
            "phase_rad": float(max(phase_err))}


def main() -> int:
    optics = SIMOptics()
    otf = OTFModel(optics)
    settings = WienerSettings()
    rows = []
    for modulation, structure, seed in ((m, s, e) for m in MODULATIONS for s in STRUCTURES
                                        for e in SEEDS):
        patterns = PatternSettings(modulation=modulation)
        bright_scene = render_set(structure, "tirf-sim", size=SIZE, seed=seed, patterns=patterns)
        # the sets to estimate: the same sample, the pattern drifted since the bright set
        drift = np.random.default_rng(seed).uniform(-np.pi, np.pi, 3)
        phases = np.array(bright_scene.params["pattern"]["phases_rad"]) + drift[:, None]
        scene = render_set(structure, "tirf-sim", size=SIZE, seed=seed, patterns=patterns,
                           phases_rad=phases)
        bright = bright_scene.at_photons(BRIGHT, CameraModel(), seed=seed + 50)
        calibrated = estimate_calibration(bright.raw, optics, otf=otf, prior=PatternPrior())
        tracker = PhaseTracker(calibrated, otf, bright.raw)
        calibrated_plan = ReconstructionPlan(calibrated, otf, settings)
        for photons in LEVELS:
            item = scene.at_photons(photons, CameraModel(), seed=seed + 100)
            row: dict = {"modulation": modulation, "structure": structure, "seed": seed,
                         "photons": photons}
            images = {}
            for name, prior in (("blind", None), ("prior", PatternPrior())):
                cal = estimate_calibration(item.raw, optics, otf=otf, strict=False,
                                           prior=prior)
                row[name] = {"accepted": not cal.notes, **errors(cal, item.params)}
                images[name] = ReconstructionPlan(cal, otf, settings).reconstruct(item.raw)
                background = cal.background
            measured = tracker.measure(item.raw)
            tracked = replace(calibrated,
                              phases_rad=calibrated.phases_rad + measured.drift_rad[:, None])
            row["calibrated"] = {"accepted": measured.ok, **errors(tracked, item.params)}
            images["calibrated"] = calibrated_plan.reconstruct(
                item.raw, measured.corrections(1) if measured.ok else None)
            truth = true_calibration(item.params, item.raw.shape[1:], optics.pixel_um,
                                     background)
            images["true"] = ReconstructionPlan(truth, otf, settings).reconstruct(item.raw)
            scores = {name: nrmse_affine(image, item.gt) for name, image in images.items()}
            for name in NAMES:
                row[name]["nrmse_over_true"] = scores[name] / scores["true"]
            rows.append(row)
            print(f"m {modulation} {structure:12s} seed {seed} {photons:4d} photons: "
                  + "; ".join(f"{n} {'ok' if row[n]['accepted'] else 'refused'} "
                              f"k {100 * row[n]['k_rel']:.2f} % "
                              f"{row[n]['angle_deg']:.2f}° φ {row[n]['phase_rad']:.2f} "
                              f"NRMSE ×{row[n]['nrmse_over_true']:.3f}"
                              for n in NAMES), flush=True)
    summary: dict[str, dict] = {}
    for modulation, photons in ((m, p) for m in MODULATIONS for p in LEVELS):
        at = [r for r in rows if r["photons"] == photons and r["modulation"] == modulation]
        summary.setdefault(f"modulation {modulation}", {})[str(photons)] = {
            name: {"accepted": float(np.mean([r[name]["accepted"] for r in at])),
                   "worst_k_rel": float(max(r[name]["k_rel"] for r in at)),
                   "worst_angle_deg": float(max(r[name]["angle_deg"] for r in at)),
                   "worst_phase_rad": float(max(r[name]["phase_rad"] for r in at)),
                   "worst_nrmse_over_true": float(max(r[name]["nrmse_over_true"] for r in at))}
            for name in NAMES}
    result = {"benchmark": __doc__.splitlines()[0],
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "size": SIZE,
              "modulations": MODULATIONS, "structures": STRUCTURES, "seeds": SEEDS,
              "summary": summary, "sets": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
