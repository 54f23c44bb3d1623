"""``livesr demo``: a short SIM time-lapse on the simulated microscope, saved to disk.

For now the demo exercises the acquisition half of LiveSR: the demo ``.cfg`` in the real
Micro-Manager core, a hardware-sequenced SIM time-lapse (time × channels × 9 patterns), every raw
frame and the WF image of every set written as TIFF. Super-resolution joins it once the
acquisition pipeline streams to DFCAN.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

CHANNELS = ("488", "560")
N_PATTERNS = 9


def add_parser(subparsers: Any) -> None:
    """Register ``livesr demo``."""
    p = subparsers.add_parser(
        "demo", help="run a short SIM time-lapse on the simulated microscope and save it",
        description=__doc__)
    p.add_argument("--out", type=Path, default=Path("livesr-output/demo"), help="output folder")
    p.add_argument("--timepoints", type=int, default=5)
    p.add_argument("--roi", type=int, default=256,
                   help="centred camera ROI in pixels (0: the full 512² sensor)")
    p.add_argument("--exposure", type=float, default=10.0, help="ms per raw frame")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import useq
    from rich.progress import Progress

    from hardware.core import create_core, release_core
    from hardware.sim_events import expand_sim_events

    if args.timepoints < 1:
        raise ValueError(f"--timepoints must be ≥ 1, got {args.timepoints}")
    args.out.mkdir(parents=True, exist_ok=True)
    print("LiveSR demo: simulated TIRF-SIM microscope (demo.cfg) in the Micro-Manager core.\n"
          f"Acquiring {args.timepoints} time points × {len(CHANNELS)} channels × {N_PATTERNS} "
          "patterns, hardware-sequenced, and saving raw frames and WF images.\n"
          "No super-resolution in this demo yet: DFCAN inference is not wired in.")
    core = create_core("demo")
    frames: queue.Queue[tuple[np.ndarray, dict] | None] = queue.Queue()
    writer = _Writer(frames, args.out)
    try:
        sensor = core.getImageWidth()
        if args.roi:
            if not 32 <= args.roi <= sensor:
                raise ValueError(f"--roi must be in 32…{sensor}, got {args.roi}")
            start = (sensor - args.roi) // 2
            core.setROI(start, start, args.roi, args.roi)
        for line in CHANNELS:
            core.setShutterOpen(f"Laser{line}", True)
        core.setShutterOpen("AOTF", True)
        sequence = useq.MDASequence(
            time_plan=useq.TIntervalLoops(interval=0, loops=args.timepoints),
            channels=tuple(useq.Channel(config=c, exposure=args.exposure) for c in CHANNELS))
        events = expand_sim_events(sequence, N_PATTERNS)
        core.mda.events.frameReady.connect(
            lambda img, event, meta: frames.put((img, dict(event.index))))
        writer.start()
        t0 = time.perf_counter()
        first_frame: list[float] = []
        with Progress() as progress:
            task = progress.add_task("raw frames", total=len(events))

            def on_frame(*_: object) -> None:
                if not first_frame:
                    first_frame.append(time.perf_counter())
                progress.advance(task)

            core.mda.events.frameReady.connect(on_frame)
            core.mda.run(events)
        elapsed = time.perf_counter() - t0
        startup = (first_frame[0] if first_frame else t0) - t0
    finally:
        release_core(core)  # lasers off, AOTF blanked, devices unloaded
        frames.put(None)
        if writer.is_alive():
            writer.join()
    if writer.error is not None:
        raise OSError(f"writing to {args.out} failed: {writer.error}") from writer.error
    if writer.written != len(events):
        raise RuntimeError(f"{len(events)} frames were requested but {writer.written} written")
    acquiring = max(elapsed - startup, 1e-9)
    summary = {"frames": writer.written, "seconds": round(elapsed, 2),
               "first_frame_after_s": round(startup, 2),
               "frames_per_s_after_first": round((writer.written - 1) / acquiring, 1),
               "output": str(args.out)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{writer.written} raw frames in {elapsed:.1f} s: the first after {startup:.1f} s (the "
          f"simulated sample renders once), then {summary['frames_per_s_after_first']} frames/s "
          f"→ {args.out}/raw_<channel>.tif, wf_<channel>.tif")
    return 0


class _Writer(threading.Thread):
    """One BigTIFF page per raw frame, and the WF (mean) of each complete set; counts what it
    wrote and keeps the error that stopped it, if any."""

    def __init__(self, frames: queue.Queue[tuple[np.ndarray, dict] | None], out: Path) -> None:
        super().__init__(name="demo-writer")
        self.frames, self.out = frames, out
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        import tifffile

        raw = {c: tifffile.TiffWriter(self.out / f"raw_{c}.tif", bigtiff=True) for c in CHANNELS}
        wf = {c: tifffile.TiffWriter(self.out / f"wf_{c}.tif", bigtiff=True) for c in CHANNELS}
        sets: dict[str, list[np.ndarray]] = {c: [] for c in CHANNELS}
        try:
            while (item := self.frames.get()) is not None:
                img, index = item
                channel = CHANNELS[index["c"]]
                raw[channel].write(img, contiguous=True)
                self.written += 1
                sets[channel].append(img)
                if len(sets[channel]) == N_PATTERNS:
                    wf[channel].write(np.mean(sets[channel], axis=0, dtype=np.float32),
                                      contiguous=True)
                    sets[channel] = []
        except Exception as exc:
            self.error = exc
        finally:
            for w in (*raw.values(), *wf.values()):
                w.close()
