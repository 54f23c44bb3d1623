"""Frames per second of the simulated camera through the real Micro-Manager core.

For each sensor size (512², 1024² uint16) the demo microscope runs with the 488 line lit and a
9-pattern SIM sequence loaded on the pattern device, so every frame is a rendered SIM frame:

- ``sequence``: ``startSequenceAcquisition`` + ``popNextImage`` (hardware-sequenced camera),
  with the real-time (``fast``) noise and with exact Poisson noise;
- ``mda``: pymmcore-plus's MDA of SIM events (time × 9 patterns), hardware-sequenced.

Run: ``python benchmarks/bench_camera.py [--sizes 512 1024] [--out FILE]``.
Prints a table and writes JSON (default ``benchmarks/results/camera_cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import useq

from hardware.core import create_core, release_core, resolve_config
from hardware.sim_events import expand_sim_events
from simulators.optical_bench import get_bench

if TYPE_CHECKING:
    from pymmcore_plus.experimental.unicore import UniMMCore

EXPOSURE_MS = 1.0  # the exposure is honoured: this caps any path at 1000 frames/s
GOAL_512 = 500.0


def _core_with_sensor(size: int, folder: Path) -> UniMMCore:
    line = "#py Property,Camera,SensorSize,512"
    text = resolve_config("demo").read_text()
    if line not in text:
        raise RuntimeError(f"the demo cfg no longer has the line {line!r}")
    text = text.replace(line, f"#py Property,Camera,SensorSize,{size}")
    cfg = folder / f"demo_{size}.cfg"
    cfg.write_text(text)
    core = create_core(cfg)
    bench = get_bench("demo")
    assert bench is not None
    bench.wait_until_rendered()  # rendering must not compete with the measurement
    core.setExposure(EXPOSURE_MS)
    core.setConfig("Channel", "488")
    core.setShutterOpen("Laser488", True)
    core.setShutterOpen("AOTF", True)
    return core


def _sequence_fps(core: UniMMCore, n: int) -> float:
    core.loadPropertySequence("Pattern", "Pattern", [str(k) for k in range(9)])
    core.startPropertySequence("Pattern", "Pattern")
    start = time.perf_counter()
    core.startSequenceAcquisition(n, 0, True)
    got = 0
    while got < n:
        if core.getRemainingImageCount():
            core.popNextImage()
            got += 1
        elif not core.isSequenceRunning():
            if not core.getRemainingImageCount():
                raise RuntimeError(f"sequence stopped after {got} of {n} frames")
        else:
            time.sleep(0.0002)  # poll the circular buffer
    elapsed = time.perf_counter() - start
    core.stopPropertySequence("Pattern", "Pattern")
    return n / elapsed


def _mda_fps(core: UniMMCore, timepoints: int) -> tuple[float, bool]:
    sequence = useq.MDASequence(time_plan={"interval": 0, "loops": timepoints},
                                channels=[{"config": "488", "exposure": EXPOSURE_MS}])
    events = expand_sim_events(sequence, 9)
    flags: list[bool] = []
    core.mda.events.frameReady.connect(lambda img, ev, meta: flags.append(
        bool(meta.get("hardware_triggered"))))
    start = time.perf_counter()
    core.mda.run(events)
    elapsed = time.perf_counter() - start
    core.mda.events.frameReady.disconnect()
    return len(flags) / elapsed, all(flags) and len(flags) == len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--frames", type=int, default=2000, help="frames per fast measurement")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/camera_cpu.json"))
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            core = _core_with_sensor(size, Path(folder))
            try:
                scale = (512 / size) ** 2
                n_fast = max(200, int(args.frames * scale))
                row: dict[str, Any] = {
                    "sensor": f"{size}x{size}", "dtype": "uint16", "exposure_ms": EXPOSURE_MS,
                    "sequence_fast_noise_fps": round(_sequence_fps(core, n_fast), 1),
                    "sequence_exact_noise_fps": None,
                }
                core.setProperty("Camera", "Noise", "exact")
                row["sequence_exact_noise_fps"] = round(
                    _sequence_fps(core, max(50, int(200 * scale))), 1)
                core.setProperty("Camera", "Noise", "fast")
                mda_fps, hw = _mda_fps(core, max(20, n_fast // 9))
                row["mda_sim_fast_noise_fps"] = round(mda_fps, 1)
                row["mda_hardware_sequenced"] = hw
                results.append(row)
                print(row)
            finally:
                core.setShutterOpen("Laser488", False)
                core.setShutterOpen("AOTF", False)
                release_core(core)

    fps_512 = next((r["sequence_fast_noise_fps"] for r in results if r["sensor"] == "512x512"),
                   None)
    report = {
        "benchmark": "simulated camera through the Micro-Manager core (UniMMCore)",
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "python": platform.python_version()},
        "command": "python benchmarks/bench_camera.py",
        "goal": f">= {GOAL_512:.0f} frames/s at 512x512, sequenced",
        "goal_met": fps_512 is not None and fps_512 >= GOAL_512,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'sensor':>10} {'seq fast':>10} {'seq exact':>10} {'MDA SIM':>10}  (frames/s)")
    for r in results:
        print(f"{r['sensor']:>10} {r['sequence_fast_noise_fps']:>10} "
              f"{r['sequence_exact_noise_fps']:>10} {r['mda_sim_fast_noise_fps']:>10}")
    print(f"goal {report['goal']}: {'met' if report['goal_met'] else 'NOT met'} → {args.out}")


if __name__ == "__main__":
    main()
