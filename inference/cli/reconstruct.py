"""``livesr reconstruct``: Wiener-SIM of one raw SIM set, with the estimated parameters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    import numpy as np

    from inference.wiener_sim import OTFModel, SIMOptics

__all__ = ["add_parser", "run"]

#: the two orders' joint-fit scores closer than this (relative) are reported as ambiguous
AMBIGUOUS_ORDER = 0.05


def add_parser(subparsers: Any) -> None:
    """Add the ``reconstruct`` subcommand to the ``livesr`` parser."""
    parser = subparsers.add_parser(
        "reconstruct",
        help="conventional SIM reconstruction (Wiener-SIM) of a raw SIM set",
        description=(
            "Estimate the pattern (carriers, phases, modulation, with their confidence) from a "
            "raw set RAW (9 frames: linear SIM → 2×; 25 frames: nonlinear SIM → 3×) and write "
            "the Wiener-SIM reconstruction. The frame order (orientation- or phase-major) is "
            "detected unless given. What a SIM microscope guarantees is used: one |k| for all "
            "orientations, spaced 180°/n, phases stepped by 2π/n (--blind estimates each "
            "orientation on its own). A set that cannot support an estimate is refused with "
            "the reason."
        ),
    )
    parser.add_argument("--input", required=True, type=Path, metavar="RAW",
                        help=".mrc, .tif or .npy (n, H, W)")
    parser.add_argument("--output", required=True, type=Path, metavar="OUT",
                        help=".tif or .npy (float32, normalised to [0, 1])")
    add_raw_set_arguments(parser)
    parser.add_argument("--mode", choices=("auto", "linear", "nonlinear"), default="auto",
                        help="auto: from the frame count (9 linear, 25 nonlinear)")
    parser.add_argument("--wiener", type=float, default=0.1, help="Wiener parameter w")
    parser.add_argument("--calibration", type=Path, default=None, metavar="CAL.json",
                        help="a pattern from livesr calibrate: its carriers are used, the phases "
                        "and modulation estimated from this set")
    parser.add_argument("--carrier-window", type=float, default=0.0, metavar="FRACTION",
                        help="with --calibration: refine each carrier within this fraction of "
                        "|k| (default 0: as calibrated)")
    otf = parser.add_argument_group("detection OTF")
    otf.add_argument("--otf", choices=("damped", "ideal", "fit"), default="damped",
                     help="damped: ideal · curvature**(k/kc) (default); ideal: a perfect "
                     "pupil; fit: the damping fitted to this set's band overlaps")
    otf.add_argument("--otf-curvature", type=float, default=0.3, metavar="C",
                     help="curvature of the damped OTF (default 0.3)")
    otf.add_argument("--psf", type=Path, default=None, metavar="BEAD.tif",
                     help="a measured bead image (2-D, or a z-stack): its OTF replaces the model")
    otf.add_argument("--psf-pixel-size", type=float, default=None, metavar="µm",
                     help="the bead image's pixel in the sample (default: --pixel-size)")
    otf.add_argument("--bead-size", type=float, default=0.0, metavar="µm",
                     help="the bead's diameter, divided out of the measured OTF (default 0)")
    parser.set_defaults(func=run)


def add_raw_set_arguments(parser: Any) -> None:
    """Add the optics, frame-order and prior options that reading a raw SIM set takes."""
    parser.add_argument("--na", type=float, default=1.49)
    parser.add_argument("--wavelength", type=float, default=0.525, metavar="µm",
                        help="emission wavelength (µm)")
    parser.add_argument("--pixel-size", type=float, default=0.0626, metavar="µm",
                        help="camera pixel in the sample (µm)")
    parser.add_argument("--order", choices=("auto", "orientation-major", "phase-major"),
                        default="auto", help="frame order of RAW (auto: detected from the data)")
    parser.add_argument("--blind", action="store_true",
                        help="estimate each orientation on its own, without the pattern prior")


def optics_of(args: argparse.Namespace) -> SIMOptics:
    """Return the optics the options give; bad values raise ValueError."""
    from pydantic import ValidationError

    from inference.wiener_sim import SIMOptics

    otf: dict[str, Any] = {}
    if getattr(args, "otf", "damped") == "ideal":
        otf["otf_form"] = "ideal"
    if getattr(args, "otf_curvature", None) is not None:
        otf["otf_curvature"] = args.otf_curvature
    try:
        return SIMOptics(na=args.na, emission_um=args.wavelength, pixel_um=args.pixel_size,
                         **otf)
    except ValidationError as exc:
        raise ValueError(str(exc).replace("\n", "; ")) from None


def read_raw_set(path: Path, order: str, optics: SIMOptics) -> np.ndarray:
    """Read a raw SIM set, detect its frame order (``auto``) and return it orientation-major."""
    from inference.predict.image_io import read_image
    from inference.wiener_sim.frame_order import detect_order, to_orientation_major

    raw = read_image(path)
    if raw.ndim != 3:
        raise ValueError(f"{path}: expected a raw SIM set (n, H, W), got shape {raw.shape}")
    if order == "auto":
        detection = detect_order(raw, optics)
        order = detection.order
        print(f"{path.name}: {detection.describe()}")
        if detection.margin < AMBIGUOUS_ORDER:
            print(f"the order is ambiguous; taking {order} (give --order to be sure)")
    return to_orientation_major(raw, order)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    """Estimate, print the estimates, reconstruct, write. User errors raise ValueError."""
    import numpy as np
    from pydantic import ValidationError

    from inference.predict.image_io import WRITE_SUFFIXES, write_image
    from inference.wiener_sim import (
        EstimationError,
        OTFModel,
        ReconstructionPlan,
        WienerSettings,
        estimate_calibration,
    )
    from inference.wiener_sim.pattern_file import read_pattern
    from inference.wiener_sim.priors import PatternPrior

    if args.output.suffix.lower() not in WRITE_SUFFIXES:
        raise ValueError(f"{args.output}: output must be .tif, .tiff or .npy")
    optics = optics_of(args)
    try:
        settings = WienerSettings(wiener=args.wiener)
    except ValidationError as exc:
        raise ValueError(str(exc).replace("\n", "; ")) from None
    start = time.perf_counter()
    raw = read_raw_set(args.input, args.order, optics)
    expected = {"linear": 9, "nonlinear": 25}.get(args.mode)
    if expected is not None and raw.shape[0] != expected:
        raise ValueError(f"{args.input}: {args.mode} SIM needs {expected} frames, got "
                         f"{raw.shape[0]}")
    prior = None if args.blind else PatternPrior()
    if args.calibration is not None:
        pattern = read_pattern(args.calibration)
        pattern.check(raw.shape[0], optics)
        prior = pattern.prior(args.carrier_window)
        print(f"carriers from {args.calibration}"
              + (f" (refined within {100 * args.carrier_window:g} %)" if args.carrier_window
                 else ""))
    otf = _otf_of(args, optics)
    calibration = estimate_calibration(raw, optics, otf=otf, strict=False, prior=prior)
    if args.otf == "fit" and not calibration.notes:
        from inference.wiener_sim.otf_measure import fit_damping

        curvature = fit_damping(raw, calibration, optics)
        optics = optics.model_copy(update={"otf_form": "damped", "otf_curvature": curvature})
        otf = OTFModel(optics)
        print(f"OTF damping fitted to the band overlaps: curvature {curvature:.3f}")
        calibration = estimate_calibration(raw, optics, otf=otf, strict=False, prior=prior)
    print(calibration.summary())
    if calibration.notes:
        raise EstimationError("not reconstructed: " + "; ".join(calibration.notes))
    image = ReconstructionPlan(calibration, otf, settings).reconstruct(raw)
    image = np.clip(image, 0, None)
    image = (image / max(float(image.max()), 1e-12)).astype(np.float32)
    written = write_image(args.output, image)
    print(f"wrote {written} ({image.shape[0]}×{image.shape[1]} float32) in "
          f"{time.perf_counter() - start:.2f} s")
    return 0


def _otf_of(args: argparse.Namespace, optics: SIMOptics) -> OTFModel:
    """Return the OTF the options ask for: the model of ``optics``, or a bead's measured one."""
    from inference.wiener_sim import OTFModel

    if args.psf is None:
        return OTFModel(optics)
    if args.otf == "fit":
        raise ValueError("--psf and --otf fit exclude each other: the bead measures the OTF")
    from inference.predict.image_io import read_image
    from inference.wiener_sim.otf_measure import otf_from_psf

    pixel = args.psf_pixel_size or optics.pixel_um
    measured = otf_from_psf(read_image(args.psf), pixel, args.bead_size,
                            cutoff_per_um=optics.cutoff_per_um)
    print(f"OTF measured from {args.psf.name} ({pixel} µm pixels): to "
          f"{measured.cutoff_per_um:.2f}/µm, noise floor {measured.noise_floor:.3f}")
    return measured.model(optics)
