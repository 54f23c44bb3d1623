"""``livesr recover DIR``: finish the metadata of the images a killed or crashed run left in DIR."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def add_parser(subparsers: Any) -> None:
    """Register ``livesr recover``."""
    p = subparsers.add_parser(
        "recover",
        help="finish the metadata of an interrupted run's OME-TIFF or OME-Zarr images",
        description=__doc__)
    p.add_argument("dir", type=Path, help="the run's output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Finish the images in ``args.dir`` and print what was recovered; return 0."""
    from acquisition.storage.recover import recover

    reports = recover(args.dir)
    for report in reports:
        print(report.describe())
    incomplete = sum(r.missing for r in reports)
    print(f"recovered {sum(r.frames for r in reports)} frames in {len(reports)} file(s) in "
          f"{args.dir} (metadata only: no pixel was rewritten)"
          + (f"; {incomplete} planes not written (zeros)" if incomplete else ""))
    return 0
