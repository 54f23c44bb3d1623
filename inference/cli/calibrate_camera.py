"""``livesr calibrate-camera``: offset, gain and read noise by the photon-transfer method."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``calibrate-camera`` subcommand to the ``livesr`` parser."""
    parser = subparsers.add_parser(
        "calibrate-camera",
        help="measure a camera's offset, gain and read noise (photon transfer)",
        description=(
            "Measure the camera's offset, gain (ADU per photo-electron) and read noise from a "
            "stack of dark frames and stacks of flat frames at a few intensities (the "
            "photon-transfer method), and write the camera.calibration section of a "
            "microscope settings file. The QE comes from the data sheet (--qe)."
        ),
    )
    parser.add_argument("--dark", required=True, type=Path, metavar="DARK.tif",
                        help="frames with no light (n ≥ 2, same exposure)")
    parser.add_argument("--flat", required=True, type=Path, nargs="+", metavar="FLAT.tif",
                        help="one stack (n ≥ 2) per intensity of even illumination")
    parser.add_argument("--qe", type=float, required=True,
                        help="quantum efficiency at the emission wavelength (data sheet)")
    parser.add_argument("--out", type=Path, required=True, metavar="CAMERA.yaml",
                        help="where to write the settings section")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit, print the fit and write the section."""
    import yaml

    from inference.metrics.photon_transfer import photon_transfer
    from inference.predict.image_io import read_image

    fit = photon_transfer(read_image(args.dark), [read_image(f) for f in args.flat], args.qe)
    for signal, shot in fit.points:
        print(f"flat: {signal:.1f} ADU above dark, shot variance {shot:.1f} ADU² "
              f"(gain × signal = {fit.gain_adu_per_e * signal:.1f})")
    section = {"camera": {"calibration": fit.as_settings()}}
    text = yaml.safe_dump(section, sort_keys=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# measured by livesr calibrate-camera; paste into the microscope "
                        "settings file\n" + text, encoding="utf-8")
    print(text + f"wrote {args.out}")
    return 0
