"""Which trust signal ranks DFCAN-SIM output by its error on held-out sets.

Held-out cells (root seed 7021: training drew from seeds 0 and 1, the evaluation matrix from
2024) of every structure are recorded at photon levels from 10 to 600 with the camera noise
:func:`simulators.pairs.training_pairs` would give them. Each set is reconstructed by the shipped
DFCAN-SIM weights (PyTorch, CPU) and scored against its ground truth (the official NRMSE, as in
the evaluation matrix); each candidate signal of :mod:`inference.evaluation.trust` is measured
on the same set, the ``agreement`` signals against a Wiener-SIM that estimates the pattern from
the set itself. The figure of merit is the Spearman rank correlation between the signal and
−NRMSE over all sets (1: the signal ranks the sets exactly by their error), also within each
structure. ``dose`` is measured with the structure given (a protocol's ``structure:``) and
without (``dose-any``); ``combined`` is :func:`inference.evaluation.trust.combine` of
``agreement`` and ``spectrum``.

Run: ``python benchmarks/bench_trust.py [--size 64] [--cells 5]``; writes
``benchmarks/results/trust_cpu.json`` and a PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from inference.evaluation.trust import HIGH_BAND, TrustMeter, band_agreement, combine
from inference.metrics.quality import nrmse
from inference.models.weights import load_model
from inference.registry import SetwiseWienerSIM, build_reconstructor
from simulators.pairs import noise_seed, sample_scenes

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "inference" / "weights" / "dfcan_sim_demo.safetensors"
STRUCTURES = ("ccp", "er", "microtubules", "factin")
LEVELS = (10, 15, 25, 40, 60, 100, 150, 250, 400, 600)
HELD_OUT_SEED = 7021
#: camera pixels a side of the live timing (a 256² ROI: 512² SR)
LIVE_SIZE = 256
CANDIDATES = ("combined", "agreement", "agreement-high", "dose", "dose-any", "spectrum")


def measure(size: int, cells: int, levels: tuple[float, ...], seed: int = HELD_OUT_SEED,
            structures: tuple[str, ...] = STRUCTURES) -> list[dict[str, Any]]:
    """One row per held-out set: structure, level, photons, NRMSE and every candidate signal."""
    model = load_model(WEIGHTS)
    dfcan = build_reconstructor("dfcan-sim", model=model, backend="torch", device="cpu",
                                scale=2).reconstructor
    wiener = SetwiseWienerSIM(9)
    agreement = TrustMeter("agreement", wiener=wiener)
    high = TrustMeter("agreement-high", wiener=wiener)
    spectrum = TrustMeter("spectrum")
    dose_any = TrustMeter("dose")
    dose = {s: TrustMeter("dose", structure=s) for s in structures}
    rows: list[dict[str, Any]] = []
    for structure, sample_seed, scene in sample_scenes(list(structures), "tirf-sim", size, seed,
                                                       cells * len(structures)):
        for level in levels:
            recorded = scene.at_photons(level, None,
                                        np.random.default_rng(noise_seed(sample_seed, level)))
            raw = recorded.raw.astype(np.float32)
            sr = dfcan.reconstruct(raw)
            reading = agreement.measure(raw, sr)
            assert reading.reference is not None
            # the high band against the same Wiener-SIM image (estimated once per set)
            pixel = high.optics.pixel_um / 2
            rows.append({
                "structure": structure, "sample_seed": sample_seed, "level": float(level),
                "photons": float(recorded.params["measured_photons"]),
                "nrmse": nrmse(recorded.gt, sr),
                "nrmse_wiener": nrmse(recorded.gt, reading.reference),
                "agreement": reading.value,
                "agreement-high": band_agreement(sr, reading.reference, pixel,
                                                 high.optics.cutoff_per_um, HIGH_BAND),
                "dose": dose[structure].measure(raw, sr).value,
                "dose-any": dose_any.measure(raw, sr).value,
                "spectrum": spectrum.measure(raw, sr).value,
            })
            rows[-1]["combined"] = combine(rows[-1]["agreement"], rows[-1]["spectrum"])
    return rows


def rank_correlation(rows: list[dict[str, Any]], signal: str) -> float:
    """Spearman correlation of ``signal`` with −NRMSE (1: ranks the sets exactly by error)."""
    values = np.array([r[signal] for r in rows])
    errors = np.array([r["nrmse"] for r in rows])
    return float(spearmanr(values, -errors).statistic)


def timing(size: int, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per set of each live signal at ``size``² camera pixels.

    One simulated scene at 100 photons with fresh noise per set; the live Wiener-SIM estimates
    the pattern from the first set and then tracks its phases.
    """
    from simulators.render import render_set

    scene = render_set("microtubules", "tirf-sim", size, 1)
    sets = [scene.at_photons(100, None, np.random.default_rng(s)).raw.astype(np.float32)
            for s in range(repeats + 1)]
    sr = np.zeros((2 * size, 2 * size), np.float32)
    found = {}
    for signal in ("combined", "agreement", "dose", "spectrum"):
        meter = TrustMeter(signal)
        meter.measure(sets[0], sr)  # the first set: pattern estimate, caches
        t0 = time.perf_counter()
        for raw in sets[1:]:
            meter.measure(raw, sr)
        found[signal] = round((time.perf_counter() - t0) / repeats * 1000, 1)
    return found


def plot(rows: list[dict[str, Any]], correlations: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CANDIDATES), figsize=(4 * len(CANDIDATES), 3.6))
    colours = dict(zip(STRUCTURES, ("tab:blue", "tab:orange", "tab:green", "tab:red"),
                       strict=True))
    for ax, signal in zip(axes, CANDIDATES, strict=True):
        for structure in STRUCTURES:
            mine = [r for r in rows if r["structure"] == structure]
            ax.scatter([r[signal] for r in mine], [r["nrmse"] for r in mine], s=8,
                       color=colours[structure], label=structure, alpha=0.7)
        ax.set_xlabel(signal)
        ax.set_title(f"{signal}: ρ = {correlations[signal]:.2f}")
    axes[0].set_ylabel("DFCAN-SIM NRMSE")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="camera pixels a side")
    parser.add_argument("--cells", type=int, default=5, help="held-out cells per structure")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED,
                        help="root seed of the held-out cells (not 0, 1 or 2024)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "trust_cpu.json")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.seed in (0, 1, 2024):
        parser.error(f"seed {args.seed} drew training or evaluation-matrix cells")
    rows = measure(args.size, args.cells, LEVELS, seed=args.seed)
    seconds = time.perf_counter() - t0
    overall = {s: round(rank_correlation(rows, s), 3) for s in CANDIDATES}
    per_structure = {st: {s: round(rank_correlation([r for r in rows if r["structure"] == st], s),
                                   3) for s in CANDIDATES} for st in STRUCTURES}
    best = max(overall, key=overall.__getitem__)
    live = timing(LIVE_SIZE)
    data = {
        "what": "Spearman rank correlation of each trust signal with -NRMSE of DFCAN-SIM on "
                "held-out simulated TIRF-SIM sets (1: ranks the sets exactly by their error)",
        "weights": WEIGHTS.name, "backend": "torch-cpu fp32", "held_out_seed": args.seed,
        "structures": list(STRUCTURES), "levels": list(LEVELS), "cells_per_structure": args.cells,
        "size_px": args.size, "sets": len(rows), "seconds": round(seconds, 1),
        "spearman": overall, "spearman_per_structure": per_structure, "best": best,
        "live_ms_per_set": {"size_px": LIVE_SIZE, **live},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}
                 for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    plot(rows, overall, args.out.with_suffix(".png"))
    print(f"{len(rows)} held-out sets at {args.size}² in {seconds:.0f} s")
    for signal in CANDIDATES:
        within = ", ".join(f"{st} {per_structure[st][signal]:+.2f}" for st in STRUCTURES)
        print(f"  {signal:15s} ρ = {overall[signal]:+.3f}   (within: {within})")
    print(f"best: {best}; live ms per set at {LIVE_SIZE}²: {live}")
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}")


if __name__ == "__main__":
    main()
