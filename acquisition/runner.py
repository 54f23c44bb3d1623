"""``acquisition.run(protocol)``: a protocol from file to finished, crash-safe data on disk.

1. Load and check the protocol (every located error at once; no device touched on error).
2. Check the disk, build the reconstructors, open the microscope, set ROI and illumination.
3. Run the SIM engine; each set goes to the :class:`~acquisition.pipeline.Pipeline` (writer
   queue, streaming predictors, display slot). A rich progress bar shows frames, elapsed, ETA,
   frames/s and the sets dropped for display.
4. However the run ends (done, device fault, writer failure, Ctrl-C): emission off (the
   hardware layer), queued frames written, journals finalized into OME-TIFF, ``run.json``.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from acquisition.dose import DoseMonitor
from acquisition.finalize import FinalizeReport
from acquisition.pipeline import DisplaySlot, Pipeline
from acquisition.protocol import (
    Estimate,
    Protocol,
    estimate,
    human_bytes,
    load_protocol,
    writer_queue_sets,
)
from acquisition.reconstruction import build_reconstructor
from acquisition.writers import ChannelInfo, RunWriters, finalize_all
from hardware.yaml_source import ConfigError

__all__ = ["RunResult", "check_disk", "run"]

RUN_FILE = "run.json"


@dataclass
class RunResult:
    """What a run did."""

    output: Path
    sets_requested: int
    frames_requested: int
    sets_acquired: int = 0
    frames_acquired: int = 0
    frames_written: int = 0
    sets_written: int = 0
    wf_written: int = 0
    sr_written: int = 0
    inferred: int = 0
    dropped_for_display: int = 0
    inference_failed: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    #: the whole run: opening the microscope to the last file finalized
    seconds: float = 0.0
    #: from the first set's arrival to the last set written
    acquisition_seconds: float = 0.0
    #: raw frames acquired and written per second over ``acquisition_seconds``
    frames_per_s: float = 0.0
    completed: bool = False
    error: str | None = None
    files: list[Path] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: per channel: the dose advisor on its first and last set (acquisition.dose)
    dose_advice: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["output"] = str(self.output)
        data["files"] = [str(p.relative_to(self.output)) if p.is_relative_to(self.output)
                         else str(p) for p in self.files]
        return data


def check_disk(protocol: Protocol, est: Estimate, out: Path) -> None:
    """A ValueError when the disk holding ``out`` has less room than the run needs."""
    probe = out
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < est.disk_bytes:
        raise ValueError(f"not enough disk space at {probe}: the run needs about "
                         f"{human_bytes(est.disk_bytes)}, {human_bytes(free)} are free")


def run(protocol: Protocol | str | Path, out: str | Path | None = None, *,
        progress: bool = True, overwrite: bool = False,
        display: DisplaySlot | None = None,
        on_pipeline: Callable[[Pipeline], None] | None = None,
        scope: Any = None) -> RunResult:
    """Run an acquisition protocol (a file or a loaded :class:`Protocol`).

    Args:
        out: output folder (default: the protocol's ``output``).
        progress: show a progress bar.
        overwrite: replace a previous run in the output folder (its raw/, wf/, sr/, run.json).
        display: the display slot the pipeline fills (default: a new one, ``pipeline.display``).
        on_pipeline: called with the pipeline before acquisition starts (a GUI reads its
            ``display`` slot).
        scope: an open :class:`~hardware.microscope.Microscope` to run on (a GUI's), instead of
            opening the protocol's (its config, settings and backend are then not used); it
            stays open afterwards (emission off, its camera ROI as before the run).
    Raises:
        ConfigError: a bad protocol (every located error), before any device is touched.
        ValueError / OSError: the output folder or disk cannot take the run.
        DeviceError: a device fault (the data acquired before it is finalized first).
    """
    if not isinstance(protocol, Protocol):
        protocol = load_protocol(protocol)
    out_dir = Path(out) if out is not None else protocol.output_dir()
    _prepare_output(out_dir, overwrite)
    roi = protocol.microscope.roi
    if roi is not None:
        check_disk(protocol, estimate(protocol, roi, roi), out_dir)
    # reconstructors before any device: a weights or backend problem stops us here
    shape = (roi, roi) if roi is not None else None
    recs = {c.preset: build_reconstructor(protocol, c, shape) for c in protocol.channels}
    return _run_on_microscope(protocol, out_dir, recs, progress, on_pipeline, display, scope)


@contextmanager
def _roi_kept(scope: Any) -> Iterator[None]:
    """Give an open microscope's camera its ROI back after the run (a GUI's live view)."""
    roi = scope.camera.roi if scope is not None else None
    try:
        yield
    finally:
        if roi is not None:
            with suppress(Exception):
                scope.camera.set_roi(*roi)


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    if not (out_dir / RUN_FILE).exists() and not any(
            (out_dir / s).exists() for s in ("raw", "wf", "sr")):
        return
    if not overwrite:
        raise FileExistsError(f"{out_dir} already holds a run; choose another output folder "
                              "(--out) or remove it")
    for name in ("raw", "wf", "sr"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in (RUN_FILE, "protocol.yaml"):
        (out_dir / name).unlink(missing_ok=True)


def _run_on_microscope(protocol: Protocol, out_dir: Path, recs: dict[str, Any], progress: bool,
                       on_pipeline: Callable[[Pipeline], None] | None,
                       display: DisplaySlot | None = None, open_scope: Any = None) -> RunResult:
    import useq

    from acquisition.modes import engine_settings, set_mode_illumination
    from hardware.microscope import Microscope
    from hardware.sim_engine import SIMAcquisition
    from inference.streaming import StreamingPredictor

    result = RunResult(out_dir, protocol.n_sets, protocol.n_frames)
    mode = protocol.mode
    sim = engine_settings(protocol)
    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    opened: AbstractContextManager[Any] = (
        nullcontext(open_scope) if open_scope is not None else
        Microscope.open(protocol.config_path(), protocol.settings_path(),
                        protocol.microscope.backend))
    with opened as scope, _roi_kept(scope if open_scope is not None else None):
        _check_stages(protocol, scope)
        if protocol.microscope.roi is not None:
            scope.camera.centred_roi(protocol.microscope.roi)
        height, width = scope.camera.shape
        est = estimate(protocol, height, width,
                       {p: r[1]["scale"] for p, r in recs.items() if r is not None})
        check_disk(protocol, est, out_dir)
        set_mode_illumination(scope, protocol)
        channels = [ChannelInfo(i, c.preset, scope.channel_line(c.preset),
                                recs[c.preset][1] if recs[c.preset] else {})
                    for i, c in enumerate(protocol.channels)]
        writers = RunWriters(out_dir, channels, protocol.frames_per_set, scope.backend
                             .pixel_size_um() or 0.0, protocol.timelapse.interval_s, mode,
                             protocol.save.wf,
                             [p.model_dump() for p in protocol.positions],
                             sr_every=protocol.save.sr == "every", fmt=protocol.save.format)
        if not writers.pixel_size_um:
            result.notes.append("the microscope reports no pixel size: files say 1 µm")
            writers.pixel_size_um = 1.0
        acquisition = SIMAcquisition(scope, sim)
        predictor_mode: Literal["every", "latest"] = (
            "every" if protocol.save.sr == "every" else "latest")
        # every-set SR: at most as many raw sets wait for inference as the writer queue holds
        set_bytes = protocol.frames_per_set * height * width * 2
        predictors = {name: StreamingPredictor(rec[0], mode=predictor_mode,
                                               max_pending=writer_queue_sets(set_bytes))
                      for name, rec in recs.items() if rec is not None}
        bar = _Progress(protocol.n_frames, progress)
        pipeline = Pipeline(writers, predictors, protocol.save.sr,
                            writer_queue_sets(set_bytes), acquisition.cancel,
                            on_written=lambda: bar.update(writers.raw_frames, pipeline))
        if display is not None:
            pipeline.display = display
        if on_pipeline is not None:
            on_pipeline(pipeline)
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_run_json(out_dir, protocol, result, started, scope, status="running")
        _copy_protocol(protocol, out_dir)
        acquisition.set_ready.connect(pipeline.on_set)
        dose = DoseMonitor.for_protocol(protocol)
        acquisition.set_ready.connect(dose.on_set)
        sequence = useq.MDASequence(
            time_plan=useq.TIntervalLoops(interval=protocol.timelapse.interval_s,
                                          loops=protocol.timelapse.count),
            channels=tuple(useq.Channel(config=c.preset, exposure=c.exposure_ms)
                           for c in protocol.channels),
            stage_positions=tuple(
                useq.Position(x=p.x, y=p.y, z=p.z, name=p.name) for p in protocol.positions))
        powers = {scope.channel_line(c.preset): c.power_mw for c in protocol.channels}
        pipeline.start()
        raised: BaseException | None = None
        try:
            with bar:
                try:
                    acquisition.run(sequence, powers)
                finally:
                    pipeline.finish_acquisition()
                    bar.update(writers.raw_frames, pipeline)
                    bar.inference(pipeline)
                    pipeline.finish_inference()
        except BaseException as exc:
            raised = exc
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            writers.close()
            acquisition.set_ready.disconnect(pipeline.on_set)
            acquisition.set_ready.disconnect(dose.on_set)
            device_state = _device_state(scope)
        _fill_result(result, pipeline, writers, time.perf_counter() - t0)
        if pipeline.error is not None:
            result.error = pipeline.error
        if pipeline.first_sr_error is not None:
            result.notes.append(f"{pipeline.sr_failed} SR reconstructions failed; the first: "
                                f"{pipeline.first_sr_error}")
        if pipeline.sr_refused:
            result.notes.append(f"{pipeline.sr_refused} sets were not reconstructed: inference "
                                "fell behind the acquisition")
    result.dose_advice = dose.advice()
    reports = _finalize(writers.stems(), progress)
    result.files = [r.path for r in reports]
    result.reports = [r.describe() for r in reports]
    result.completed = (raised is None and pipeline.error is None
                        and result.frames_written == result.frames_requested)
    _write_run_json(out_dir, protocol, result, started, None, status="finished",
                    device_state=device_state)
    if raised is not None:
        raise raised  # a device fault, Ctrl-C…: after the data is safe
    if pipeline.error is not None:
        raise RuntimeError(pipeline.error + f" ({result.frames_written} raw frames written, "
                                            f"finalized in {out_dir})")
    return result


def _check_stages(protocol: Protocol, scope: Any) -> None:
    """Positions need an XY stage (and a focus drive where they give z): refuse, rather than
    let the engine skip the moves with a warning."""
    core = getattr(scope.backend, "core", None)
    if not protocol.positions or core is None:
        return
    cfg = protocol.microscope.config
    if not core.getXYStageDevice():
        raise ConfigError([protocol.located(("positions",), f"the microscope ({cfg}) has no "
                                                            "XY stage to visit positions")])
    if any(p.z is not None for p in protocol.positions) and not core.getFocusDevice():
        raise ConfigError([protocol.located(("positions",), f"the microscope ({cfg}) has no "
                                                            "focus drive for the positions' z")])


def _fill_result(result: RunResult, pipeline: Pipeline, writers: RunWriters,
                 seconds: float) -> None:
    stats = pipeline.stats()
    result.sets_acquired = pipeline.sets_acquired
    result.frames_acquired = pipeline.frames_acquired
    result.sets_written = pipeline.sets_written
    result.frames_written = writers.raw_frames
    result.wf_written = writers.wf_frames
    result.sr_written = writers.sr_frames
    result.inferred = stats["inferred"]
    result.dropped_for_display = stats["dropped_for_display"]
    result.inference_failed = stats["failed"]
    result.latency_p50_ms = stats["latency_p50_ms"]
    result.latency_p99_ms = stats["latency_p99_ms"]
    result.seconds = round(seconds, 3)
    first, last = pipeline.t_first_set, pipeline.t_last_written
    if first is not None and last is not None and last > first:
        result.acquisition_seconds = round(last - first, 3)
        # from the first set's arrival: its own frames are not counted
        first_set_frames = pipeline.frames_acquired // max(pipeline.sets_acquired, 1)
        result.frames_per_s = round(
            max(writers.raw_frames - first_set_frames, 0) / (last - first), 1)


def _finalize(stems: list[Path], progress: bool) -> list[FinalizeReport]:
    if not stems:
        return []
    if progress:
        from rich.console import Console

        with Console(stderr=True).status(f"finalizing {len(stems)} file(s)…"):
            return finalize_all(stems)
    return finalize_all(stems)


def _copy_protocol(protocol: Protocol, out_dir: Path) -> None:
    text = protocol.source_text()
    (out_dir / "protocol.yaml").write_text(text, encoding="utf-8")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("livesr", "numpy", "torch", "pymmcore-plus", "useq-schema", "tifffile",
                    "pydantic"):
        with suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def _device_state(scope: Any) -> dict[str, dict[str, str]]:
    """Every property of every loaded device, as the backend reports it now."""
    state: dict[str, dict[str, str]] = {}
    backend = scope.backend
    with suppress(Exception):
        for device in backend.loaded_devices():
            props: dict[str, str] = {}
            with suppress(Exception):
                for prop in backend.property_names(device):
                    with suppress(Exception):
                        props[prop] = str(backend.get_property(device, prop))
            state[device] = props
    return state


def _write_run_json(out_dir: Path, protocol: Protocol, result: RunResult, started: str,
                    scope: Any, status: str,
                    device_state: dict[str, dict[str, str]] | None = None) -> None:
    path = out_dir / RUN_FILE
    previous: dict[str, Any] = {}
    if path.exists():
        with suppress(ValueError, OSError):
            previous = json.loads(path.read_text())
    data = {
        "livesr_run": 1,
        "status": status,
        "started": started,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "versions": versions(),
        "protocol": protocol.model_dump(mode="json"),
        "device_state_at_start": (_device_state(scope) if scope is not None
                                  else previous.get("device_state_at_start")),
        "device_state_at_end": device_state,
        "summary": result.summary(),
    }
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


class _Progress:
    """A rich progress bar: frames written, elapsed, ETA, frames/s, dropped for display."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self._last = 0.0
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("frames"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("{task.fields[fps]} frames/s"),
                TextColumn("{task.fields[dropped]} dropped for display"), transient=False)
            self.task = self.progress.add_task("acquiring", total=total, fps="-", dropped=0)

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, written: int, pipeline: Pipeline) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and written < self.total:
            return
        self._last = now
        # the rate since the first set arrived (the first frame may wait for a sample render)
        first = pipeline.t_first_set
        fps = "-" if first is None or now - first < 0.05 else f"{written / (now - first):.0f}"
        dropped = pipeline.stats()["dropped_for_display"]
        self.progress.update(self.task, completed=written, fps=fps, dropped=dropped)

    def inference(self, pipeline: Pipeline) -> None:
        """Say so when reconstructions are still pending after the acquisition."""
        if not self.enabled:
            return
        pending = sum(p.stats().pending for p in pipeline.predictors.values())
        if pending:
            self.progress.console.print(f"finishing {pending} pending SR reconstruction(s)…")
