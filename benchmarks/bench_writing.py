"""Writing a long time-lapse: sustained frames/s, bytes on disk per byte, memory, time to ready.

    python benchmarks/bench_writing.py                 # 20,007 frames at 512², every backend
    python benchmarks/bench_writing.py --sets 300      # a quick look

1. ``writer only``, per backend and format: 512² raw SIM sets (9 frames, uint16, brighter and
   less compressible than the demo's) and their WF image (float32) written as fast as they go,
   no camera: LiveSR's own streams (OME-TIFF written in place with tifffile; OME-Zarr made by
   zarr-python, its chunks encoded with the array's codecs, lz4 or none) and, when
   ``ome-writers`` is installed, its tensorstore, zarr-python and tifffile backends on the same
   raw frames. Reported: sustained frames/s and MB/s over the whole run and over its last
   quarter (once the page cache is full, the disk sets the pace), frames/s up to files ready,
   bytes written by the process (``/proc/self/io``) and bytes on disk per byte of data, time
   from the last frame to files ready, anonymous RSS growth from frame 2,000 to the end.
2. ``camera only``: the SIM engine on the demo microscope alone (512², one channel, TIRF-SIM,
   interval 0), per exposure (``--exposures``, default 1 and 1.8 ms), with the CPU it takes.
3. ``acquisition.run``, per exposure and format (OME-Zarr lz4, OME-TIFF): the same time-lapse
   through the whole pipeline, raw + WF, as long: raw frames/s from the first set's arrival to
   the last set written and the same figures, or how far it got when the writer fell behind.
   The simulated camera shares the two cores with the writer.

Writes ``benchmarks/results/writing_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_acquisition
from bench_acquisition import engine_only, protocol_text

import acquisition
from acquisition.storage.writers import ChannelInfo, RunWriters
from hardware.frameset import FrameSet

OUT = Path("benchmarks/results/writing_cpu.json")
SIZE = 512
GOAL_FPS = 500.0
RSS_FROM_FRAME = 2000


def rss_anon_mb() -> float:
    """The process's anonymous resident memory (MB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def written_bytes() -> int:
    """Bytes this process has caused to be written to storage (/proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def disk_bytes(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk (allocated blocks: holes cost nothing)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


class Sampler:
    """Samples anonymous RSS against the frames written, every 0.2 s, on its own thread."""

    def __init__(self, frames: Any) -> None:
        self.frames = frames
        self.samples: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((self.frames(), rss_anon_mb()))

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.samples.append((self.frames(), rss_anon_mb()))

    def growth_mb(self) -> float | None:
        """Peak anonymous RSS after frame 2,000 minus the RSS at frame 2,000."""
        after = [rss for frames, rss in self.samples if frames >= RSS_FROM_FRAME]
        return round(max(after) - after[0], 1) if len(after) > 1 else None

    def peak_mb(self) -> float:
        return round(max(rss for _, rss in self.samples), 1)


def frame_sets(n_distinct: int = 8) -> list[FrameSet]:
    """Distinct camera-like raw sets, reused in turn: offset 100 ADU, shot noise, and a sample
    of 0–600 photo-electrons (brighter than the demo's 20 mW sets, which average 110 ADU and
    compress 2×).
    """
    rng = np.random.default_rng(0)
    sample = rng.uniform(0, 600, (SIZE, SIZE))
    return [FrameSet(t=0, channel="488", position=0, line_nm=488,
                     frames=rng.poisson(sample, (9, SIZE, SIZE)).astype(np.uint16) + 100,
                     patterns=tuple(map(str, range(9))), timestamps_ms=np.arange(9.0),
                     exposure_ms=1.0, laser_powers_mw={488: 20.0}, hardware_sequenced=True)
            for _ in range(n_distinct)]


def livesr_writer(folder: Path, fmt: str, sets: int, compression: str = "none"
                  ) -> dict[str, Any]:
    """LiveSR's RunWriters (raw + WF) in ``fmt``."""
    writers = RunWriters(folder, [ChannelInfo(0, "488", 488)], 9, 0.0626, 0.0, "tirf-sim",
                         save_wf=True, fmt=fmt, n_time_points=sets, compression=compression)
    pool = frame_sets()

    def write(t: int) -> None:
        s = pool[t % len(pool)]
        writers.write_set(FrameSet(t, s.channel, s.position, s.line_nm, s.frames, s.patterns,
                                   s.timestamps_ms + 10.0 * t, s.exposure_ms,
                                   s.laser_powers_mw, s.hardware_sequenced))

    return _timed(folder, sets, write, writers.finish, lambda: writers.raw_frames, wf=True)


def ome_writers_writer(folder: Path, backend: str, sets: int) -> dict[str, Any]:
    """ome-writers' stream with ``backend``: the same raw sets (no WF: one stream per call)."""
    import ome_writers as ow

    fmt = "ome-tiff" if backend == "tifffile" else "ome-zarr"
    dims = [ow.Dimension(name="t", count=sets, chunk_size=1, type="time"),
            ow.Dimension(name="c", count=1, chunk_size=1, type="channel"),
            ow.Dimension(name="z", count=9, chunk_size=9, type="space"),
            ow.Dimension(name="y", count=SIZE, chunk_size=SIZE, type="space"),
            ow.Dimension(name="x", count=SIZE, chunk_size=SIZE, type="space")]
    settings = ow.AcquisitionSettings(root_path=str(folder / "raw"), dimensions=dims,
                                      dtype="uint16", format={"name": fmt, "backend": backend},
                                      overwrite=True)
    stream = ow.create_stream(settings)
    pool = frame_sets()
    count = [0]

    def write(t: int) -> None:
        for k, frame in enumerate(pool[t % len(pool)].frames):
            stream.append(frame, frame_metadata={"delta_t": 0.01 * t + 0.001 * k,
                                                 "exposure_time": 0.001})
            count[0] += 1

    result = _timed(folder, sets, write, stream.close, lambda: count[0], wf=False)
    result["data_bytes_note"] = "raw only (no WF)"
    return result


def _timed(folder: Path, sets: int, write: Any, finish: Any, frames: Any, wf: bool
           ) -> dict[str, Any]:
    """Run ``write(t)`` for every set, then ``finish()``; the figures of the run.

    ``wf``: a float32 WF image was written per set besides the raw frames.
    """
    io_before = written_bytes()
    quarter = max(1, sets // 4)
    with Sampler(frames) as sampler:
        start = time.perf_counter()
        for t in range(sets):
            if t == sets - quarter:
                t_last_quarter = time.perf_counter()
            write(t)
        t_last = time.perf_counter()
        finish()
        ready = time.perf_counter() - t_last
    n = frames()
    data = n * SIZE * SIZE * 2 + (n // 9) * SIZE * SIZE * 4 * wf
    return _figures(n, t_last - start, quarter * 9 / (t_last - t_last_quarter), ready,
                    written_bytes() - io_before, disk_bytes(folder), data, sampler)


def _figures(frames: int, seconds: float, last_quarter_fps: float, ready_s: float,
             io_bytes: int, on_disk: int, data: int, sampler: Sampler) -> dict[str, Any]:
    return {"frames": frames, "seconds": round(seconds, 2),
            "frames_per_s": round(frames / seconds, 1),
            # a writer that only queues frames is not done until it has finished
            "frames_per_s_to_ready": round(frames / (seconds + ready_s), 1),
            "frames_per_s_last_quarter": round(last_quarter_fps, 1),
            "mb_per_s": round(data / seconds / 1e6, 1),
            "data_bytes": data, "written_per_data_byte": round(io_bytes / data, 3),
            "on_disk_per_data_byte": round(on_disk / data, 3),
            "last_frame_to_ready_s": round(ready_s, 3),
            "rss_anon_growth_mb_after_2000": sampler.growth_mb(),
            "rss_anon_peak_mb": sampler.peak_mb()}


def _cpu_share(run: Any, *args: Any) -> dict[str, Any]:
    """``run(*args)``'s result with the CPU it took: cores busy on average (user + system)."""
    before, start = os.times(), time.perf_counter()
    result = dict(run(*args))
    after, wall = os.times(), time.perf_counter() - start
    cpu = (after.user - before.user) + (after.system - before.system)
    result["cores_busy"] = round(cpu / wall, 2)
    return result


def pipeline(folder: Path, fmt: str, sets: int, compression: str, exposure_ms: float
             ) -> dict[str, Any]:
    """``acquisition.run`` on the demo microscope: the camera, the writers, the pipeline."""
    folder.mkdir(parents=True, exist_ok=True)
    text = protocol_text(sets, None).replace(
        "sr: none}", f"sr: none, format: {fmt}, compression: {compression}}}").replace(
        f"exposure_ms: {bench_acquisition.EXPOSURE_MS}", f"exposure_ms: {exposure_ms}")
    path = folder / "long.yaml"
    path.write_text(text)
    seen: list[Any] = []
    io_before = written_bytes()
    with Sampler(lambda: seen[0].writers.raw_frames if seen else 0) as sampler:
        try:
            result = acquisition.run(path, progress=False, on_pipeline=seen.append)
        except RuntimeError as exc:  # the writer fell behind: say when
            frames = seen[0].writers.raw_frames if seen else 0
            return {"error": str(exc), "frames_written": frames}
        done = time.perf_counter()
    assert result.frames_written == result.frames_requested, result
    pipe = seen[0]
    frames = result.frames_written
    data = frames * SIZE * SIZE * 2 + result.wf_written * SIZE * SIZE * 4
    figures = _figures(frames, result.acquisition_seconds, float("nan"),
                       done - pipe.t_last_written, written_bytes() - io_before,
                       disk_bytes(folder / "run"), data, sampler)
    figures["frames_per_s"] = result.frames_per_s  # from the first set's arrival
    del figures["frames_per_s_last_quarter"]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2223, help="raw sets (9 frames each)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--folder", type=Path, default=None,
                        help="where to write (default: a temporary folder on the local disk)")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--exposures", type=lambda v: [float(x) for x in v.split(",")],
                        default=[1.0, 1.8], help="exposures (ms) of the camera and pipeline runs")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="livesr-bench-writing-", dir=args.folder))
    results: dict[str, Any] = {"writer_only": {}, "camera_only": {}, "pipeline": {}}
    try:
        for fmt, compression in (("ome-zarr", "lz4"), ("ome-zarr", "none"),
                                 ("ome-tiff", "none")):
            name = f"livesr {fmt}" + (f" {compression}" if fmt == "ome-zarr" else "")
            results["writer_only"][name] = livesr_writer(root / f"w-{fmt}", fmt, args.sets,
                                                         compression)
            print(name, results["writer_only"][name], flush=True)
            shutil.rmtree(root / f"w-{fmt}")
        try:
            import ome_writers  # noqa: F401
        except ImportError:
            print("ome-writers is not installed: its backends are not compared")
        else:
            for backend in ("tensorstore", "zarr-python", "tifffile"):
                name = f"ome-writers {backend}"
                try:
                    results["writer_only"][name] = ome_writers_writer(
                        root / f"ow-{backend}", backend, args.sets)
                except Exception as exc:  # a backend not installed here
                    results["writer_only"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                print(name, results["writer_only"][name], flush=True)
                shutil.rmtree(root / f"ow-{backend}", ignore_errors=True)
        for exposure in () if args.skip_pipeline else args.exposures:
            bench_acquisition.EXPOSURE_MS = exposure
            name = f"camera only {exposure:g} ms"
            results["camera_only"][name] = _cpu_share(engine_only, args.sets)
            print(name, results["camera_only"][name], flush=True)
            for fmt, compression in (("ome-zarr", "lz4"), ("ome-tiff", "none")):
                name = f"acquisition.run {fmt}" + (f" {compression}" if fmt == "ome-zarr"
                                                   else "") + f" {exposure:g} ms"
                results["pipeline"][name] = pipeline(root / f"p-{fmt}", fmt, args.sets,
                                                     compression, exposure)
                print(name, results["pipeline"][name], flush=True)
                shutil.rmtree(root / f"p-{fmt}", ignore_errors=True)
        bench_acquisition.EXPOSURE_MS = 1.0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import torch

    results.update({
        "benchmark": __doc__.splitlines()[0],
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "torch": torch.__version__},
        "size": SIZE, "sets": args.sets, "frames": 9 * args.sets,
        "goal": f"acquisition.run >= {GOAL_FPS:g} raw frames/s at 512², 1 ms, raw + WF, "
                ">= 20,000 frames, 2 cores; RSS growth <= 50 MB; last frame to ready <= 2 s",
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
