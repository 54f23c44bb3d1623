"""Does the GUI's display slow the acquisition? Raw frames/s of live acquisition with the main
window showing the newest set (display on) against the same live session with the window's
timers stopped and the window hidden (display off), in one run.

The camera is paced at ~100 raw frames/s (10 ms exposure, no reconstruction, so only the
display competes with the acquisition): TIRF-SIM (9-frame sets, ~11 sets/s) or, with
``--mode wf``, one frame per set (100 sets/s: the 30 Hz display skips most of them). Both
conditions alternate over ``--rounds``
rounds; each round's raw frames/s is counted from the first set's arrival to the last's, and
the ratio on/off of every round and of the medians is reported. With the display on the
window must actually have shown frames (checked). The simulated sample is rendered first.

Run (headless: ``QT_QPA_PLATFORM=offscreen``):
``python benchmarks/gui_display_cpu.py [--mode tirf-sim|wf] [--frames 360] [--rounds 5]
[--roi 256] [--out FILE]``. Prints a table and writes JSON (default
``benchmarks/results/gui_display_cpu.json``, ``gui_display_wf_cpu.json`` with ``--mode wf``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui.app import application, wait_for
from gui.sessions import LiveSession, Session
from gui.window import DISPLAY_HZ, MainWindow
from hardware.microscope import Microscope
from simulators.optical_bench import get_bench

EXPOSURE_MS = 10.0


def _raw_fps(session: Session) -> float:
    first, last = session.first_set_at, session.last_set_at
    if first is None or last is None or last <= first:
        raise RuntimeError("too few sets arrived to time")
    first_set_frames = session.frames_acquired // max(session.raw.count, 1)
    return (session.frames_acquired - first_set_frames) / (last - first)


def _round(window: MainWindow, display: bool, sets: int) -> dict[str, Any]:
    timers = window.timers()
    shown_before = window.frames_displayed
    if display:
        window.show()
        for timer in timers:
            timer.start()
        if not window.start_live(count=sets):
            raise RuntimeError(window.status.text())
        session = window.session
        assert session is not None
        wait_for(lambda: window.session is None, 600)
    else:
        window.hide()
        for timer in timers:
            timer.stop()
        session = LiveSession(window.scope, window.live_protocol(), count=sets)
        session.start()
        wait_for(lambda: not session.running, 600)
    if session.error is not None:
        raise RuntimeError(session.error)
    if session.raw.count != sets:
        raise RuntimeError(f"{session.raw.count} of {sets} sets arrived")
    shown = window.frames_displayed - shown_before
    if display and shown < 2:
        raise RuntimeError("the display showed no frames")
    return {"display": "on" if display else "off", "sets": sets,
            "raw_frames": session.frames_acquired, "raw_fps": round(_raw_fps(session), 1),
            "sets_displayed": shown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("tirf-sim", "wf"), default="tirf-sim")
    parser.add_argument("--frames", type=int, default=360, help="raw frames per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of both")
    parser.add_argument("--roi", type=int, default=256, help="centred camera ROI, px")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    per_set = 1 if args.mode == "wf" else 9
    sets = max(args.frames // per_set, 3)
    out = args.out or Path("benchmarks/results/"
                           + ("gui_display_wf_cpu.json" if args.mode == "wf"
                              else "gui_display_cpu.json"))

    app = application()  # noqa: F841  (kept alive for the whole run)
    with Microscope.open("demo") as scope:
        bench = get_bench("demo")
        assert bench is not None
        bench.wait_until_rendered()
        scope.camera.centred_roi(args.roi)
        scope.camera.exposure_ms = EXPOSURE_MS
        window = MainWindow(scope, {}, config_name="demo")
        window.resize(1500, 900)
        window.acquire.mode.setCurrentText(args.mode)
        window.reconstruction.set_choice("none")
        _round(window, True, sets)  # warm-up: first-call costs out of the figures
        rounds = []
        for _ in range(args.rounds):
            rounds.append([_round(window, display, sets) for display in (True, False)])
        window.close()
    on = statistics.median(r[0]["raw_fps"] for r in rounds)
    off = statistics.median(r[1]["raw_fps"] for r in rounds)
    ratios = [round(r[0]["raw_fps"] / r[1]["raw_fps"], 3) for r in rounds]
    result = {
        "benchmark": f"raw frames/s of live {args.mode}, GUI display on vs off",
        "command": f"python benchmarks/gui_display_cpu.py --mode {args.mode} --frames "
                   f"{args.frames} --rounds {args.rounds} --roi {args.roi}",
        "camera": f"demo microscope, {args.roi}² ROI, {EXPOSURE_MS} ms exposure "
                  f"(paced at ~100 raw frames/s), {per_set}-frame sets, no reconstruction",
        "display": f"newest set on a {DISPLAY_HZ} Hz timer: raw frame + WF (mean of the set), "
                   "histograms 2 Hz, counters 4 Hz, laser state 1 Hz; offscreen Qt",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), no GPU",
        "raw_fps_display_on_median": round(on, 1),
        "raw_fps_display_off_median": round(off, 1),
        "ratio_on_off_median": round(on / off, 3),
        "ratio_on_off_per_round": ratios,
        "rounds": rounds,
    }
    print(f"{'round':>5} {'display on fps':>15} {'display off fps':>16} {'ratio':>6} "
          f"{'sets shown':>10}")
    for i, (a, b) in enumerate(rounds):
        print(f"{i:>5} {a['raw_fps']:>15.1f} {b['raw_fps']:>16.1f} {ratios[i]:>6.3f} "
              f"{a['sets_displayed']:>10}")
    print(f"median: on {on:.1f} raw frames/s, off {off:.1f}, ratio {on / off:.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
