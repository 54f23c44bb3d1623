"""What limits a DFCAN: registration, intensity, and where its spectrum falls, on held-out cells.

    python benchmarks/diagnose_dfcan.py                                  # the shipped weights
    python benchmarks/diagnose_dfcan.py --sim A.safetensors --sisr B.safetensors --label new

For every held-out set (seed 2024: never trained on) and method (bicubic WF, Wiener-SIM,
DFCAN-SISR, DFCAN-SIM), against the ground truth:

- the official NRMSE, and the NRMSE after the best affine fit ``a·x + b`` (with a and b);
- the best integer shift (±3 SR pixels, by the official NRMSE) and the sub-pixel shift by
  phase correlation: a registration error would show here;
- the radial power spectrum (of the image fitted to the truth) over the truth's, in three
  bands of the detection cutoff k_c: below 0.8 k_c (what WF has), 1.05–1.45 k_c and
  1.45–1.85 k_c (what only SIM, or a network that super-resolves, can put there). An
  under-trained regressor predicting the blurred mean sits below the bicubic WF there.

Writes ``benchmarks/results/dfcan_diagnosis_<label>.json`` and a PNG of the mean spectra.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.metrics.affine import nrmse_affine  # noqa: E402
from inference.metrics.quality import nrmse  # noqa: E402
from inference.predict.processing import prctile_norm  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BANDS = {"below_0.8kc": (0.0, 0.8), "1.05-1.45kc": (1.05, 1.45), "1.45-1.85kc": (1.45, 1.85)}


def radial_power(image: np.ndarray, truth: np.ndarray, pixel_nm: float, edges: np.ndarray
                 ) -> np.ndarray:
    """Mean power of the spectrum of ``image`` fitted to ``truth`` (least-squares ``a·x + b``,
    so that intensity scales do not count), mean removed and Hann-windowed, in rings between
    ``edges`` (cycles/nm).
    """
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    x = image.astype(np.float64)
    a, b = np.polyfit(x.ravel(), truth.astype(np.float64).ravel(), 1)
    x = a * x + b
    power = np.abs(np.fft.fft2((x - x.mean()) * window)) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(h, pixel_nm), np.fft.fftfreq(w, pixel_nm),
                              indexing="ij"))
    index = np.digitize(k.ravel(), edges) - 1
    sums = np.bincount(index, power.ravel(), minlength=len(edges))[:len(edges) - 1]
    counts = np.bincount(index, minlength=len(edges))[:len(edges) - 1]
    return sums / np.maximum(counts, 1)


def best_integer_shift(image: np.ndarray, truth: np.ndarray, reach: int = 3
                       ) -> tuple[tuple[int, int], float]:
    """The shift within ±reach that minimises the official NRMSE (on the overlap), and the
    NRMSE there.
    """
    best = ((0, 0), np.inf)
    m = reach
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            shifted = np.roll(image, (dy, dx), axis=(0, 1))[m:-m, m:-m]
            score = nrmse(truth[m:-m, m:-m], shifted)
            if score < best[1]:
                best = ((dy, dx), score)
    return best


def subpixel_shift(image: np.ndarray, truth: np.ndarray) -> float:
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(truth, image, upsample_factor=20, normalization=None)
    return float(np.hypot(*shift))


def affine_coefficients(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    x, y = prctile_norm(image).ravel(), prctile_norm(truth).ravel()
    a, b = np.polyfit(x, y, 1)
    return float(a), float(b)


def diagnose(sim: Path, sisr: Path, cells: int, levels: list[float], seed: int
             ) -> dict[str, Any]:
    from inference.evaluation.config import SimulatedSource
    from inference.evaluation.methods import build_methods
    from inference.evaluation.sources import iter_sets
    from simulators.optics import Optics

    methods = build_methods({"wf": None, "wiener-sim": None, "dfcan-sisr": sisr,
                             "dfcan-sim": sim})
    source = SimulatedSource(photon_levels=tuple(levels), sets_per_cell=cells, seed=seed)
    kc = Optics().cutoff_per_nm
    edges = np.linspace(0, 2.2 * kc, 45)
    centres = 0.5 * (edges[1:] + edges[:-1]) / kc
    rows: list[dict[str, Any]] = []
    spectra: dict[tuple[str, float], list[np.ndarray]] = defaultdict(list)
    for item in iter_sets(source):
        pixel = item.camera_pixel_nm / item.scale
        truth_power = radial_power(item.gt, item.gt, pixel, edges)
        spectra[("ground truth", item.level)].append(truth_power)
        for name, reconstruct in methods.items():
            image = reconstruct(item.raw).image
            power = radial_power(image, item.gt, pixel, edges)
            spectra[(name, item.level)].append(power)
            shift, shifted_nrmse = best_integer_shift(image, item.gt)
            a, b = affine_coefficients(image, item.gt)
            row = {"structure": item.structure, "level": item.level, "cell": item.cell,
                   "method": name, "nrmse": nrmse(item.gt, image),
                   "nrmse_affine": nrmse_affine(image, item.gt), "affine_a": a, "affine_b": b,
                   "best_shift": list(shift), "nrmse_at_best_shift": shifted_nrmse,
                   "subpixel_shift_px": subpixel_shift(image, item.gt)}
            for band, (low, high) in BANDS.items():
                inside = (centres >= low) & (centres < high)
                row[f"power_vs_truth_{band}"] = float(power[inside].sum()
                                                      / truth_power[inside].sum())
            rows.append(row)
    summary: dict[str, Any] = {}
    for name in methods:
        for level in levels:
            chosen = [r for r in rows if r["method"] == name and r["level"] == level]
            summary[f"{name} @ {level:g}"] = {
                key: round(float(np.mean([r[key] for r in chosen])), 4)
                for key in ("nrmse", "nrmse_affine", "affine_a", "affine_b",
                            "nrmse_at_best_shift", "subpixel_shift_px",
                            *(f"power_vs_truth_{b}" for b in BANDS))}
            summary[f"{name} @ {level:g}"]["shifts_not_zero"] = sum(
                r["best_shift"] != [0, 0] for r in chosen)
    mean_spectra = {f"{name} @ {level:g}": np.mean(v, axis=0).tolist()
                    for (name, level), v in spectra.items()}
    return {"rows": rows, "summary": summary, "spectra": mean_spectra,
            "frequency_over_kc": centres.tolist()}


def real_data(path: Path, sim: Path, sisr: Path, png: Path) -> dict[str, Any]:
    """DFCAN-SIM and DFCAN-SISR on a real raw SIM set (no ground truth): resolution by
    decorrelation beside the wide field's, and a figure of the three.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inference.metrics.decorrelation import decorrelation_resolution
    from inference.predict.image_io import read_image
    from inference.reconstructor import DFCANReconstructor

    raw = read_image(path).astype(np.float32)
    camera_nm = 62.6
    wf = raw.mean(axis=0)
    images = {"wide field": (wf, camera_nm),
              "DFCAN-SISR": (DFCANReconstructor.from_file(sisr).reconstruct(wf[None]),
                             camera_nm / 2),
              "DFCAN-SIM": (DFCANReconstructor.from_file(sim).reconstruct(raw), camera_nm / 2)}
    resolution = {name: round(decorrelation_resolution(image, pixel).resolution_nm, 1)
                  for name, (image, pixel) in images.items()}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    for ax, (name, (image, _)) in zip(axes, images.items(), strict=True):
        ax.imshow(prctile_norm(image), cmap="gray", extent=(0, 256 * camera_nm / 1e3,) * 2)
        ax.set(title=f"{name}: {resolution[name]:.0f} nm (decorrelation)", xlabel="µm")
    fig.suptitle(f"{path.name}: a real raw TIRF-SIM set, never seen in training")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return {"file": path.name, "decorrelation_resolution_nm": resolution}


def plot(result: dict[str, Any], levels: list[float], path: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 4), squeeze=False)
    k = np.array(result["frequency_over_kc"])
    for ax, level in zip(axes[0], levels, strict=True):
        for name in ("ground truth", "wf", "wiener-sim", "dfcan-sisr", "dfcan-sim"):
            values = result["spectra"].get(f"{name} @ {level:g}")
            if values is not None:
                ax.semilogy(k, values, label=name, lw=2 if name == "ground truth" else 1.2)
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        ax.axvline(1.9, color="grey", ls=":", lw=1)
        ax.set(title=f"{level:g} photons", xlabel="spatial frequency / k_c",
               ylabel="radial power (fitted to the truth)")
        ax.legend(fontsize=8)
    fig.suptitle(f"Radial spectra on held-out cells ({label}); dotted: WF and SIM cut-off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from inference.training.demo_weights import demo_weights_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, help="DFCAN-SIM weights (default: shipped)")
    parser.add_argument("--sisr", type=Path, help="DFCAN-SISR weights (default: shipped)")
    parser.add_argument("--label", default="shipped")
    parser.add_argument("--cells", type=int, default=3, help="held-out cells per structure")
    parser.add_argument("--levels", type=float, nargs="+", default=[15.0, 100.0, 600.0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared/reference/dlsr/MT.mrc",
                        help="a real raw SIM set (9 frames, 62.6 nm pixels) to check too")
    args = parser.parse_args(argv)
    sim = args.sim or demo_weights_path("dfcan-sim")
    sisr = args.sisr or demo_weights_path("dfcan-sisr")
    result = diagnose(sim, sisr, args.cells, args.levels, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"dfcan_diagnosis_{args.label}.json"
    png = out.with_suffix(".png")
    plot(result, args.levels, png, args.label)
    record = {"benchmark": "DFCAN diagnosis on held-out cells",
              "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "weights": {"dfcan-sim": str(sim), "dfcan-sisr": str(sisr)},
              "cells_per_structure": args.cells, "seed": args.seed, **result}
    if args.real.is_file():
        record["real_data"] = real_data(args.real, sim, sisr,
                                        out.with_name(out.stem + "_real.png"))
        print(f"real data {args.real.name}: {record['real_data']}")
    out.write_text(json.dumps(record, indent=1) + "\n")
    for key, values in result["summary"].items():
        print(f"{key:24s} " + ", ".join(f"{k} {v}" for k, v in values.items()))
    print(f"wrote {out} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
