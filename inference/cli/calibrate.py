"""``livesr calibrate``: the SIM pattern of an instrument, from bright raw sets, to a JSON file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.cli.reconstruct import add_raw_set_arguments, optics_of, read_raw_set

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``calibrate`` subcommand to the ``livesr`` parser."""
    parser = subparsers.add_parser(
        "calibrate",
        help="estimate the SIM pattern from bright raw sets and save it",
        description=(
            "Estimate the illumination pattern (carriers, modulation) from one or more bright "
            "raw SIM sets (a bead slide, a bright frame of the sample) and write it as JSON. "
            "`livesr reconstruct --calibration CAL.json` then uses its carriers and estimates "
            "only the phases and modulation per set, which holds at light levels where the "
            "carriers cannot be found from the set alone. Every set must be estimated "
            "without a note, or nothing is written."
        ),
    )
    parser.add_argument("raw", nargs="+", type=Path, metavar="RAW",
                        help=".mrc, .tif or .npy (n, H, W), one set each")
    parser.add_argument("--out", required=True, type=Path, metavar="CAL.json")
    add_raw_set_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Estimate every set, combine the carriers, write the file."""
    import numpy as np

    from inference.wiener_sim import EstimationError, estimate_calibration
    from inference.wiener_sim.pattern_file import combine, write_pattern
    from inference.wiener_sim.priors import PatternPrior

    optics = optics_of(args)
    prior = None if args.blind else PatternPrior()
    estimates = []
    for path in args.raw:
        raw = read_raw_set(path, args.order, optics)
        estimate = estimate_calibration(raw, optics, strict=False, prior=prior)
        print(f"{path.name}:\n{estimate.summary()}")
        if estimate.notes:
            raise EstimationError(f"{path}: not a calibration: " + "; ".join(estimate.notes))
        estimates.append(estimate)
    pattern = combine(estimates, optics, [str(p) for p in args.raw])
    written = write_pattern(args.out, pattern, estimates)
    print(f"wrote {written}: |k| "
          + ", ".join(f"{k:.4f}" for k in np.hypot(*pattern.k_per_um.T))
          + f"/µm; the sets agree within {pattern.spread_per_um:.4f}/µm")
    return 0
