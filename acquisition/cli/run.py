"""``livesr run PROTOCOL``: run an acquisition protocol (YAML) on the microscope it names.

Every raw frame is written (crash-safe; ``livesr recover`` finalizes an interrupted run), with
the WF and SR images the protocol asks for, as OME-TIFF in the output folder. ``--dry-run``
checks the protocol and prints the duration, data volume, RAM and disk it needs, touching no
device, and refuses when the disk is short.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def add_parser(subparsers: Any) -> None:
    """Register ``livesr run``."""
    p = subparsers.add_parser("run", help="run an acquisition protocol (YAML)",
                              description=__doc__)
    p.add_argument("protocol", type=Path, help="protocol file (YAML)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: the protocol's output)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the protocol and print what the run needs; touch no device")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous run in the output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the protocol file (or, with ``--dry-run``, print what it needs); return the status."""
    from acquisition.protocol import load_protocol

    protocol = load_protocol(args.protocol)
    out = args.out if args.out is not None else protocol.output_dir()
    if args.dry_run:
        print(dry_run_report(protocol, out))
        return 0
    return execute(protocol, out, progress=not args.no_progress, overwrite=args.overwrite)


def dry_run_report(protocol: Any, out: Path) -> str:
    """Describe what the run needs; raise a ValueError when the disk is short."""
    from acquisition.protocol import estimate, human_bytes, human_seconds
    from acquisition.runner import check_disk

    roi = protocol.microscope.roi
    if roi is not None:
        height = width = roi
        size_note = f"{roi}×{roi} ROI"
    else:
        height, width = _sensor_shape(protocol)
        size_note = f"full {width}×{height} sensor (read from the configuration)"
    est = estimate(protocol, height, width)
    probe = out
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    lines = [
        f"protocol {protocol.mode}: {len(protocol.channels)} channel(s) × "
        f"{protocol.timelapse.count} time point(s) × {protocol.n_positions} position(s), "
        f"{protocol.frames_per_set} frame(s) per set, {size_note}",
        f"frames: {est.frames} raw in {est.sets} sets",
        f"duration: about {human_seconds(est.seconds)} (exposures + "
        f"{protocol.timelapse.interval_s:g} s intervals; excludes the sample render of the "
        "demo microscope)",
        f"data: {human_bytes(est.bytes_total)} (raw {human_bytes(est.bytes_raw)}, WF "
        f"{human_bytes(est.bytes_wf)}, SR {human_bytes(est.bytes_sr)})",
        f"RAM: about {human_bytes(est.ram_bytes)} (writer queue, inference, working set)",
        f"disk: needs {human_bytes(est.disk_bytes)} at {out} ({human_bytes(free)} free; "
        "written once, in place)",
        f"images: {_format_line(protocol, est)}",
    ]
    check_disk(protocol, est, out)
    return "\n".join(lines)


def _format_line(protocol: Any, est: Any) -> str:
    """Say which format the images are written in, and why when ``auto`` chose it."""
    from acquisition.protocol import storage_format

    fmt = storage_format(protocol, est)
    text = {"ome-zarr": "OME-Zarr", "ome-tiff": "OME-TIFF"}[fmt]
    if fmt == "ome-zarr" and protocol.save.compression != "none":
        text += f" ({protocol.save.compression}-compressed chunks: less disk than counted)"
    if protocol.save.format == "auto":
        text += " (auto: OME-Zarr beyond 2 GB)"
    return text


def _sensor_shape(protocol: Any) -> tuple[int, int]:
    """Read the camera's frame size from the loaded configuration (no light, nothing moved)."""
    from hardware.microscope import Microscope

    with Microscope.open(protocol.config_path(), protocol.settings_path(),
                         protocol.microscope.backend) as scope:
        return scope.camera.shape


def execute(protocol: Any, out: Path, progress: bool = True, overwrite: bool = False,
            scope: Any = None) -> int:
    """Run ``protocol`` (on ``scope`` when given) and print what was done; 1 if stopped early."""
    from acquisition.runner import run as run_protocol
    from hardware.backend import DeviceError

    try:
        result = run_protocol(protocol, out, progress=progress, overwrite=overwrite, scope=scope)
    except (DeviceError, RuntimeError) as exc:
        print(f"the run stopped: {exc}\nwhat was acquired before is finalized in {out}")
        return 1
    print_result(result)
    return 0


def print_result(result: Any) -> None:
    """Print a finished run's counts, SR latency, reports, notes, dose advice, trust, output."""
    print(f"{result.frames_written} of {result.frames_requested} raw frames written "
          f"({result.sets_written} sets) in {result.seconds:.1f} s "
          f"({result.frames_per_s:.0f} frames/s after the first set); WF images "
          f"{result.wf_written}, SR images {result.sr_written} ({result.inferred} reconstructed, "
          f"{result.dropped_for_display} sets dropped for display)")
    if result.latency_p50_ms is not None:
        print(f"SR latency from set to display slot: p50 {result.latency_p50_ms:.0f} ms, "
              f"p99 {result.latency_p99_ms:.0f} ms")
    for report in result.reports:
        print(f"  {report}")
    for note in result.notes:
        print(f"note: {note}")
    for channel, advice in result.dose_advice.items():
        message = advice["last_set"]["message"] if "last_set" in advice else advice
        print(f"dose advice{'' if channel == 'note' else f' ({channel})'}: {message}")
    for channel, trust in getattr(result, "trust", {}).items():
        if trust["count"]:
            print(f"trust ({channel}, {trust['signal']}): {trust['count']} sets, min "
                  f"{trust['min']:.3f}, median {trust['median']:.3f}; "
                  f"{trust['below_threshold']} below the threshold, "
                  f"{trust['fallback_shown']} shown as {trust['fallback']}")
    print(f"output: {result.output}")
