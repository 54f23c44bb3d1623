"""Photometry of a DFCAN time-lapse: per-set vs anchored normalisation.

1. A static sample: one simulated TIRF-SIM scene (no bleaching, fixed dose), recorded
   ``--timepoints`` times with fresh camera noise, at a low and a moderate photon count. Each
   series is reconstructed by the shipped DFCAN-SIM weights on the PyTorch CPU backend with
   each normalisation (a fresh one per series). The frame-to-frame jitter of the SR intensity is
   the coefficient of variation over time of the mean SR image, and of the mean over a fixed
   bright-structure region (the brightest 2 % of the ground truth); the raw frames' mean (in
   photons) gives the floor set by the photon noise itself.
2. Bleaching: the same scene bleached set after set (a law that leaves about 45 % after the
   series, at the moderate dose). The SR mean, normalised to its first sets, is compared with
   the ground truth's mean: Pearson correlation over the series, and the ratio of the last three
   sets to the first three.

Normalisations: ``per-set`` (the official predict), ``anchored`` (input zero and both scales
from the first 3 sets) and ``anchored-camera`` (the input's zero at the camera's calibrated
offset). Run: ``python benchmarks/bench_photometry.py [--timepoints 30] [--size 128]``; writes
``benchmarks/results/photometry_cpu.json`` and a PNG beside it.
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

from inference.models.weights import load_model
from inference.predict.normalisation import Normalisation
from inference.registry import build_reconstructor
from simulators.bleaching import Bleaching, dose_for_photons
from simulators.camera import CameraModel
from simulators.render import NoiselessSet, render_set

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "inference" / "weights" / "dfcan_sim_demo.safetensors"
MODES = ("per-set", "anchored", "anchored-camera")
#: about 45 % left after 30 sets of 9 frames at 100 photons (0.9 mJ per set)
BLEACHING = Bleaching(rate_per_mj=0.04, slow_rate_per_mj=0.005, slow_fraction=0.2)
ANCHOR_SETS = 3


def normalisation(mode: str, camera: CameraModel) -> Normalisation:
    if mode == "per-set":
        return Normalisation("per-set")
    norm = Normalisation("anchored", anchor_sets=ANCHOR_SETS)
    if mode == "anchored-camera":
        norm.use_camera(camera.offset, 1.0 / (camera.gain * camera.qe))
    return norm


def cv(values: np.ndarray) -> float:
    return float(np.std(values) / np.mean(values))


def step_jitter(values: np.ndarray) -> float:
    """Mean |frame-to-frame change| over the mean."""
    return float(np.mean(np.abs(np.diff(values))) / np.mean(values))


def series(model: Any, scenes: list[NoiselessSet], photons: float, camera: CameraModel,
           seed: int, mask: np.ndarray) -> dict[str, Any]:
    """Record ``scenes`` (one per time point) and reconstruct them with every normalisation."""
    raws = [s.at_photons(photons, camera, seed=seed + t).raw for t, s in enumerate(scenes)]
    wf_photons = np.array([camera.photons_from_adu(r).mean() for r in raws])
    found: dict[str, Any] = {"wf_photons_mean": wf_photons.tolist()}
    for mode in MODES:
        norm = normalisation(mode, camera)
        rec = build_reconstructor("dfcan", model=model, backend="torch", device="cpu",
                                  normalisation=norm).reconstructor
        images = [rec.reconstruct(r) for r in raws]
        found[mode] = {"sr_mean": [float(i.mean()) for i in images],
                       "sr_structure_mean": [float(i[mask].mean()) for i in images],
                       "anchors": norm.to_dict()}
    return found


def jitter(result: dict[str, Any]) -> dict[str, Any]:
    wf = np.array(result["wf_photons_mean"])
    out: dict[str, Any] = {"wf_photons": {"cv_mean": cv(wf), "step_jitter_mean": step_jitter(wf)}}
    for mode in MODES:
        mean = np.array(result[mode]["sr_mean"])
        structure = np.array(result[mode]["sr_structure_mean"])
        out[mode] = {"cv_mean": cv(mean), "cv_structure": cv(structure),
                     "step_jitter_mean": step_jitter(mean),
                     "step_jitter_structure": step_jitter(structure),
                     # once the anchors are fixed (the same sets for every normalisation)
                     "cv_mean_after_anchoring": cv(mean[ANCHOR_SETS:]),
                     "cv_structure_after_anchoring": cv(structure[ANCHOR_SETS:])}
    return out


def follows(curve: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How a curve follows the ground truth: correlation, end/start ratios, RMS deviation."""
    norm_curve = curve / curve[:3].mean()
    norm_truth = truth / truth[:3].mean()
    return {"pearson_r": float(np.corrcoef(curve, truth)[0, 1]),
            "end_over_start": float(curve[-3:].mean() / curve[:3].mean()),
            "rms_deviation_from_truth": float(np.sqrt(np.mean((norm_curve - norm_truth) ** 2)))}


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    static = data["static"]
    fig, axes = plt.subplots(1, len(static) + 1, figsize=(5 * (len(static) + 1), 4))
    colours = {"per-set": "tab:red", "anchored": "tab:blue", "anchored-camera": "tab:green"}
    for ax, (label, result) in zip(axes, static.items(), strict=False):
        t = np.arange(len(result["wf_photons_mean"]))
        wf = np.array(result["wf_photons_mean"])
        ax.plot(t, wf / wf.mean(), "k:", label="raw mean (photons)")
        for mode in MODES:
            values = np.array(result[mode]["sr_structure_mean"])
            ax.plot(t, values / values.mean(), color=colours[mode],
                    label=f"{mode} (CV {100 * cv(values):.1f} %)")
        ax.set_title(f"static sample, {label}: SR structure mean")
        ax.set_xlabel("time point")
        ax.set_ylabel("relative to its mean")
        ax.legend(fontsize=8)
    bleach = data["bleaching"]
    ax = axes[-1]
    truth = np.array(bleach["gt_mean"])
    t = np.arange(len(truth))
    ax.plot(t, truth / truth[:3].mean(), "k-", lw=2, label="ground truth")
    for mode in MODES:
        values = np.array(bleach[mode]["sr_mean"])
        r = bleach["follows"][mode]["sr_mean"]["pearson_r"]
        ax.plot(t, values / values[:3].mean(), color=colours[mode], label=f"{mode} (r {r:.3f})")
    ax.set_title(f"bleaching, {bleach['photons']:g} photons: SR mean")
    ax.set_xlabel("time point")
    ax.set_ylabel("relative to the first 3 sets")
    ax.set_ylim(0, 1.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timepoints", type=int, default=30)
    parser.add_argument("--size", type=int, default=128, help="camera pixels per side")
    parser.add_argument("--structure", default="microtubules")
    parser.add_argument("--doses", type=float, nargs="+", default=[15.0, 100.0],
                        help="average photon counts of the static series")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "photometry_cpu.json")
    args = parser.parse_args()
    start = time.perf_counter()
    model = load_model(WEIGHTS)
    camera = CameraModel()
    scene = render_set(args.structure, "tirf-sim", args.size, seed=7)
    mask = scene.gt >= np.percentile(scene.gt, 98)
    static: dict[str, Any] = {}
    for i, photons in enumerate(args.doses):
        result = series(model, [scene] * args.timepoints, photons, camera, 1000 * (i + 1), mask)
        result["photons"] = photons
        result["jitter"] = jitter(result)
        static[f"{photons:g} photons"] = result
    photons = max(args.doses)
    step = dose_for_photons(photons)
    n_frames = len(scene.raw_photons)
    bleached = [scene.bleached(BLEACHING, t * n_frames * step, step)
                for t in range(args.timepoints)]
    bleach = series(model, bleached, photons, camera, 9000, mask)
    truth = np.array([float(s.gt.mean()) for s in bleached])
    bleach.update(photons=photons, law=BLEACHING.model_dump(), gt_mean=truth.tolist(),
                  frame_dose_mj=step)
    bleach["follows"] = {
        "wf_photons": follows(np.array(bleach["wf_photons_mean"]), truth),
        **{mode: {"sr_mean": follows(np.array(bleach[mode]["sr_mean"]), truth),
                  "sr_structure": follows(np.array(bleach[mode]["sr_structure_mean"]), truth)}
           for mode in MODES}}
    bleach["gt_end_over_start"] = float(truth[-3:].mean() / truth[:3].mean())
    data = {
        "benchmark": "photometry", "command": "python benchmarks/bench_photometry.py",
        "weights": WEIGHTS.name, "backend": "torch-cpu fp32", "structure": args.structure,
        "size_px": args.size, "timepoints": args.timepoints, "anchor_sets": ANCHOR_SETS,
        "camera": camera.model_dump(), "structure_region": "brightest 2 % of the ground truth",
        "static": static, "bleaching": bleach,
        "seconds": round(time.perf_counter() - start, 1),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    plot(data, args.out.with_suffix(".png"))
    print(f"{'series':<16}{'normalisation':<18}{'CV mean %':>10}{'CV struct %':>12}"
          f"{f'(t ≥ {ANCHOR_SETS})':>12}")
    for label, result in static.items():
        j = result["jitter"]
        print(f"{label:<16}{'raw (photons)':<18}{100 * j['wf_photons']['cv_mean']:>10.2f}")
        for mode in MODES:
            print(f"{'':<16}{mode:<18}{100 * j[mode]['cv_mean']:>10.2f}"
                  f"{100 * j[mode]['cv_structure']:>12.2f}"
                  f"{100 * j[mode]['cv_structure_after_anchoring']:>12.2f}")
    print(f"bleaching: ground truth end/start {bleach['gt_end_over_start']:.3f}")
    for mode, f in bleach["follows"].items():
        m = f.get("sr_mean", f)
        print(f"  {mode:<18} r {m['pearson_r']:.3f}  end/start {m['end_over_start']:.3f}  "
              f"RMS dev {m['rms_deviation_from_truth']:.3f}")
    print(f"wrote {args.out} ({data['seconds']} s)")


if __name__ == "__main__":
    main()
