"""``livesr simulate``: one simulated raw set, its WF and its ground truth, written to disk."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .names import EMISSION_NM, MODES, STRUCTURES


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in 0…1, got {text}")
    return value


def _even_size(text: str) -> int:
    from .render import check_size

    try:
        return check_size(int(_number(text, int)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seed(text: str) -> int:
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def add_parser(subparsers: Any) -> None:
    """Register ``livesr simulate``."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate one raw SIM (or WF) set with its ground truth",
        description="Render a BioSR-like structure through the simulated SIM microscope and "
                    "write raw.tif (frames orientation-major), wf.tif, gt.tif (SR grid) and "
                    "params.json (pixel sizes, NA, wavelengths, pattern k-vectors and phases, "
                    "photons, camera).",
    )
    p.add_argument("--structure", required=True, choices=STRUCTURES)
    p.add_argument("--mode", default="tirf-sim", choices=MODES)
    p.add_argument("--photons", type=_positive_float, default=100.0,
                   help="average photon count per raw frame in the foreground (BioSR: 15…600)")
    p.add_argument("--size", type=_even_size, default=256, help="camera pixels per side (even)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--line", type=int, default=488, choices=sorted(EMISSION_NM),
                   help="excitation laser line in nm (sets the emission wavelength)")
    p.add_argument("--na", type=_positive_float, default=1.49)
    p.add_argument("--pixel-size", type=_positive_float, default=62.6,
                   help="camera pixel in the sample plane, nm")
    p.add_argument("--otf", choices=("ideal", "damped"), default="damped")
    bleach = p.add_argument_group(
        "photobleaching", "S(D) = (1−f)·exp(−k1·D) + f·exp(−k2·D), dose D in mJ = laser mW × "
        "AOTF fraction × exposure s; off unless --bleach-rate or --bleach-slow-rate is given")
    bleach.add_argument("--bleach-rate", type=_non_negative_float, default=0.0, metavar="K1",
                        help="first-order bleaching rate k1 (1/mJ)")
    bleach.add_argument("--bleach-slow-rate", type=_non_negative_float, default=0.0,
                        metavar="K2", help="rate k2 of the slower component (1/mJ)")
    bleach.add_argument("--bleach-slow-fraction", type=_fraction, default=0.0, metavar="F",
                        help="fraction f of the fluorophores bleaching at k2")
    bleach.add_argument("--dose", type=_non_negative_float, default=0.0, metavar="MJ",
                        help="dose received before this set (mJ)")
    bleach.add_argument("--frame-dose", type=_non_negative_float, default=None, metavar="MJ",
                        help="dose of each raw frame (mJ; default: the dose giving --photons "
                             "on the demo microscope, 0.1 mJ per 100 photons)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate the set the arguments ask for, write it to ``--out``, print a summary; return 0."""
    from .bleaching import Bleaching
    from .io import save_set
    from .optics import Optics
    from .render import simulate

    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a folder")
    optics = Optics.for_line(args.line, na=args.na, camera_pixel_nm=args.pixel_size,
                             otf_form=args.otf)
    bleaching = None
    if args.bleach_rate or args.bleach_slow_rate:
        bleaching = Bleaching(rate_per_mj=args.bleach_rate,
                              slow_rate_per_mj=args.bleach_slow_rate,
                              slow_fraction=args.bleach_slow_fraction)
    result = simulate(args.structure, args.mode, args.photons, args.size, args.seed, optics,
                      bleaching=bleaching, dose_mj=args.dose, frame_dose_mj=args.frame_dose)
    paths = save_set(result, args.out)
    p = result.params
    print(f"{args.structure}, {args.mode}: {result.raw.shape[0]} raw frames of "
          f"{args.size}×{args.size} px at {p['camera_pixel_nm']} nm, GT {result.gt.shape[0]}² px "
          f"at {p['sr_pixel_nm']:.1f} nm; photons requested {args.photons:g}, measured "
          f"{p['measured_photons']:.1f}")
    if "bleaching" in p:
        b = p["bleaching"]
        print(f"bleached: {b['bleached_fraction_per_frame'][-1]:.1%} after "
              f"{b['dose_after_mj']:g} mJ")
    for name, path in paths.items():
        print(f"  {name:7s}{path}")
    return 0
