"""``livesr demo``: the bundled protocol on the simulated microscope, with the bundled weights.

It loads the demo microscope (``simulators/demo.cfg``) into the real Micro-Manager core and runs
``acquisition/protocols/demo.yaml``: a hardware-sequenced TIRF-SIM time-lapse (5 time points ×
the 488 and 560 nm channels × 9 patterns) through the acquisition pipeline: every raw frame and
the WF image of every set to OME-TIFF, every set streamed to DFCAN for the live display and its
SR image saved. On a CPU it uses a 256² ROI; with a CUDA GPU the full 512² sensor. The time
points are spaced by the SR time measured here first (one set per channel, after a warm-up), so
that the SR of every set keeps up with the acquisition. When the
installation has no trained weights (``inference/weights/*.safetensors``) it says so and saves
raw and WF only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register ``livesr demo``."""
    p = subparsers.add_parser(
        "demo", help="run the bundled SIM protocol on the simulated microscope",
        description=__doc__)
    p.add_argument("--out", type=Path, default=Path("livesr-output/demo"),
                   help="output folder (a previous demo there is replaced)")
    p.add_argument("--timepoints", type=int, default=None, help="time points (default 5)")
    p.add_argument("--roi", type=int, default=None,
                   help="centred camera ROI in pixels (default 256 on a CPU, 512 with a GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from acquisition.cli.run import execute
    from acquisition.demo import bundled_weights, demo_protocol
    from acquisition.protocol import check_protocol
    from yamlconfig.located import ConfigError

    gpu = torch.cuda.is_available()
    roi = args.roi if args.roi is not None else (0 if gpu else None)
    weights = bundled_weights()
    protocol = demo_protocol(roi, args.timepoints, weights)
    if problems := check_protocol(protocol):
        raise ConfigError(problems)
    size = protocol.microscope.roi
    per_set_s = None
    if weights:
        from acquisition.demo import paced_for_sr

        protocol, per_set_s = paced_for_sr(protocol)
    print("LiveSR demo: the simulated TIRF-SIM microscope (demo.cfg) in the Micro-Manager core, "
          f"{protocol.timelapse.count} time points × {len(protocol.channels)} channels × "
          f"{protocol.frames_per_set} patterns, "
          + (f"a {size}² ROI of the 512² sensor" if size else "the full 512² sensor")
          + (" (CPU: a smaller ROI keeps the demo short)." if size and not gpu else "."))
    if weights:
        used = weights.get("sim") or weights.get("sisr")
        assert used is not None
        assert per_set_s is not None
        print(f"Super-resolution: DFCAN with the bundled weights {used.name}, on the "
              f"{'GPU' if gpu else 'CPU'}: {1000 * per_set_s:.0f} ms per set here, so the time "
              f"points are {protocol.timelapse.interval_s:g} s apart and the SR of every set "
              "is shown live and saved.")
    else:
        print("No trained DFCAN weights are bundled with this installation "
              "(inference/weights/ has none), so this demo does NOT super-resolve: it acquires "
              "and saves every raw frame and the wide-field image of every set (SR: none).")
    print("The simulated sample renders once, before the first time point (about 10–30 s on "
          "2 CPU cores).")
    from acquisition.modes import set_mode_illumination
    from hardware.microscope import Microscope

    with Microscope.open(protocol.config_path(), protocol.settings_path(),
                         protocol.microscope.backend) as scope:
        # rendered now, the sample does not hold up the first time point, and the time points
        # keep their spacing (they are scheduled from the start of the acquisition)
        set_mode_illumination(scope, protocol)
        backend = scope.backend
        if "Sample" in backend.loaded_devices() and "Render" in backend.property_names("Sample"):
            backend.set_property("Sample", "Render", "Now")
        return execute(protocol, args.out, progress=not args.no_progress, overwrite=True,
                       scope=scope)
