"""``livesr gui``: the desktop GUI at the microscope.

It shows raw, WF and SR live, device panels and protocol runs.

``livesr gui --demo`` opens the simulated demo microscope with the bundled DFCAN weights;
``--screenshot OUT.png --frames N`` acquires N raw frames live, saves a picture of the window
and exits (no display needed: set QT_QPA_PLATFORM=offscreen on a headless machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register ``livesr gui``."""
    p = subparsers.add_parser("gui", help="the desktop GUI (live raw, WF and SR; protocols)",
                              description=__doc__)
    p.add_argument("--config", default="demo",
                   help="Micro-Manager .cfg to load, or demo (the simulated microscope)")
    p.add_argument("--settings", type=Path, default=None,
                   help="roles settings YAML (default: the demo microscope's roles)")
    p.add_argument("--demo", action="store_true",
                   help="the demo microscope, the bundled DFCAN-SIM weights, TIRF-SIM")
    p.add_argument("--roi", type=int, default=None,
                   help="centred camera ROI in pixels (--demo: 256 on a CPU)")
    p.add_argument("--protocol", type=Path, default=None, help="a protocol to open")
    p.add_argument("--screenshot", type=Path, default=None,
                   help="acquire --frames raw frames live, save the window as this PNG, exit")
    p.add_argument("--frames", type=int, default=27,
                   help="raw frames to acquire before the screenshot (default 27)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import pyqtgraph  # noqa: F401
        import qtpy.QtWidgets  # noqa: F401
    except ImportError as exc:
        raise ValueError(f'the GUI needs the gui extra (pip install "livesr[gui]"): {exc}') \
            from None
    from gui.app import GuiOptions, launch

    if args.frames < 1:
        raise ValueError(f"--frames must be ≥ 1, got {args.frames}")
    if args.demo and args.config != "demo":
        raise ValueError("--demo uses the demo microscope; leave out --config")
    options = GuiOptions(config=args.config, settings=args.settings, demo=args.demo,
                         roi=args.roi, protocol=args.protocol, screenshot=args.screenshot,
                         frames=args.frames)
    return launch(options)
