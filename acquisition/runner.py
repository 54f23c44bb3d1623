"""``acquisition.run(protocol)``: a protocol from file to finished, crash-safe data on disk.

1. Load and check the protocol (every located error at once; no device touched on error).
2. Check the disk, build the reconstructors, open the microscope, set ROI and illumination.
3. Run the SIM engine; each set goes to the :class:`~acquisition.pipeline.Pipeline` (writer
   queue, streaming predictors, display slot). A rich progress bar shows frames, elapsed, ETA,
   frames/s and the sets dropped for display.
4. However the run ends (done, device fault, writer failure, Ctrl-C): emission off (the
   hardware layer), queued frames written, the images' metadata finished (the pixels went
   into their OME-TIFF or OME-Zarr as they arrived), ``run.json``.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from acquisition.adaptive_dose import DoseController
from acquisition.dose import DoseMonitor
from acquisition.pipeline import Pipeline
from acquisition.protocol import (
    Estimate,
    Protocol,
    estimate,
    human_bytes,
    load_protocol,
    storage_format,
    writer_queue_sets,
)
from acquisition.reconstruction import (
    channel_normalisation,
    channel_reconstructor,
    use_camera_calibration,
    use_device_pattern,
)
from acquisition.storage.writers import ChannelInfo, RunWriters
from inference.reconstructor import Reconstructor
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from acquisition.display import DisplaySlot
    from acquisition.set_info import SetPredictor
    from hardware.microscope import Microscope
    from hardware.sim_engine import SIMAcquisition

__all__ = ["RunResult", "check_disk", "run"]

RUN_FILE = "run.json"
#: each channel preset's reconstructor and its metadata (``None``: not reconstructed)
Reconstructors: TypeAlias = dict[str, tuple[Reconstructor, dict[str, Any]] | None]
#: device → property → value, as the backend reports them
DeviceState: TypeAlias = dict[str, dict[str, str]]


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
    #: the whole run: opening the microscope to the last image's metadata finished
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
    #: per channel: what the reconstructor reported per set, counted (Wiener-SIM: how each
    #: set's pattern was obtained, the first fallback and why), and the pattern it ended with
    reconstruction: dict[str, Any] = field(default_factory=dict)
    #: per channel: the bleached fraction the microscope reported at each set's end, as columns
    #: ``t``, ``p``, ``bleached_fraction`` (a simulated microscope's; empty when not reported)
    bleaching: dict[str, Any] = field(default_factory=dict)
    #: per channel with a trust signal: its settings, count, min, median, max, the sets below
    #: the threshold and those shown as the fallback, and per set ``t``, ``p``, ``trust``,
    #: ``low``, ``shown`` (acquisition.trust)
    trust: dict[str, Any] = field(default_factory=dict)
    #: per channel: its dose mode and power bounds, the total dose (mJ, laser power × exposure)
    #: and every set's ``t``, ``p``, ``power_mw``, ``dose_mj`` (acquisition.adaptive_dose)
    dose_control: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (paths as strings, files relative to output)."""
        data = asdict(self)
        data["output"] = str(self.output)
        data["files"] = [str(p.relative_to(self.output)) if p.is_relative_to(self.output)
                         else str(p) for p in self.files]
        return data


def check_disk(protocol: Protocol, est: Estimate, out: Path) -> None:
    """Raise a ValueError when the disk holding ``out`` has less room than the run needs."""
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
        scope: Microscope | None = None) -> RunResult:
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

    Raises
    ------
        ConfigError: a bad protocol (every located error), before any device is touched.
        ValueError / OSError: the output folder or disk cannot take the run.
        DeviceError: a device fault (the data acquired before it stays readable).
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
    recs = {c.preset: channel_reconstructor(protocol, c, shape) for c in protocol.channels}
    return _run_on_microscope(protocol, out_dir, recs, progress, on_pipeline, display, scope)


@contextmanager
def _roi_kept(scope: Microscope | None) -> Iterator[None]:
    """Give an open microscope's camera its ROI back after the run (a GUI's live view)."""
    roi = scope.camera.roi if scope is not None else None
    try:
        yield
    finally:
        if scope is not None and roi is not None:
            with suppress(Exception):
                scope.camera.set_roi(*roi)


@contextmanager
def _microscope(protocol: Protocol, open_scope: Microscope | None) -> Iterator[Microscope]:
    """Yield the microscope to run on: ``open_scope`` (its ROI given back after).

    Without ``open_scope``, the protocol's microscope, opened now and closed after (emission off).
    """
    if open_scope is not None:
        with _roi_kept(open_scope):
            yield open_scope
        return
    from hardware.microscope import Microscope

    with Microscope.open(protocol.config_path(), protocol.settings_path(),
                         protocol.microscope.backend) as scope:
        yield scope


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


@dataclass(frozen=True)
class _Acquired:
    """How the acquisition ended."""

    #: what stopped it (a device fault, Ctrl-C…), re-raised once the data is safe
    raised: BaseException | None
    #: every device property as the acquisition ended
    device_state: DeviceState


def _run_on_microscope(protocol: Protocol, out_dir: Path, recs: Reconstructors,
                       progress: bool, on_pipeline: Callable[[Pipeline], None] | None,
                       display: DisplaySlot | None = None,
                       open_scope: Microscope | None = None) -> RunResult:
    """Acquire the protocol on the microscope, then finish the images and ``run.json``."""
    from acquisition.modes import engine_settings, set_mode_illumination
    from hardware.sim_engine import SIMAcquisition

    result = RunResult(out_dir, protocol.n_sets, protocol.n_frames)
    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with _microscope(protocol, open_scope) as scope:
        shape = _prepare_scope(protocol, scope)
        _check_room(protocol, recs, shape, out_dir)
        set_mode_illumination(scope, protocol)
        for channel in protocol.channels:
            use_device_pattern(recs[channel.preset], channel, scope)
            use_camera_calibration(recs[channel.preset], scope)
        writers = _open_writers(protocol, out_dir, recs, scope, result)
        acquisition = SIMAcquisition(scope, engine_settings(protocol))
        bar = _Progress(protocol.n_frames, progress)
        pipeline = _build_pipeline(protocol, recs, shape, writers, acquisition.cancel, bar,
                                   display)
        if on_pipeline is not None:
            on_pipeline(pipeline)
        _start_records(out_dir, protocol, result, started, scope)
        dose = DoseMonitor.for_protocol(protocol, scope.settings.camera.calibration)
        control = DoseController(protocol, scope)
        acquisition.engine.before_setup = control.before_setup
        pipeline.result_listeners.append(control.observe)
        try:
            acquired = _acquire(protocol, scope, acquisition, pipeline, dose, bar, result)
        finally:
            acquisition.engine.before_setup = None
        result.dose_control = control.summary()
        _fill_result(result, pipeline, writers, time.perf_counter() - t0)
        _note_pipeline(result, pipeline)
    result.dose_advice = dose.advice()
    result.bleaching = dose.bleaching.summary()
    _finish_files(result, writers)
    result.completed = (acquired.raised is None and pipeline.error is None
                        and result.frames_written == result.frames_requested)
    unsaved = ""
    try:
        _write_run_json(out_dir, protocol, result, started, None, status="finished",
                        device_state=acquired.device_state)
    except OSError as exc:  # a full disk: the images are readable, run.json says "running"
        unsaved = (f"; run.json could not be updated ({exc}): free some space and run "
                   f"livesr recover {out_dir}")
        if pipeline.error is None and acquired.raised is None:
            raise OSError(exc.errno, f"the run finished, but {unsaved[2:]}") from exc
    if acquired.raised is not None:
        raise acquired.raised  # a device fault, Ctrl-C…: after the data is safe
    if pipeline.error is not None:
        raise RuntimeError(pipeline.error + f" ({result.frames_written} raw frames written, "
                                            f"readable in {out_dir}{unsaved})")
    return result


def _prepare_scope(protocol: Protocol, scope: Microscope) -> tuple[int, int]:
    """Check the stages the positions need and set the protocol's ROI; the frame shape."""
    _check_stages(protocol, scope)
    if protocol.microscope.roi is not None:
        scope.camera.centred_roi(protocol.microscope.roi)
    return scope.camera.shape


def _check_room(protocol: Protocol, recs: Reconstructors, shape: tuple[int, int],
                out_dir: Path) -> None:
    """Refuse (ValueError) a run the disk cannot hold.

    The need is estimated at the camera's frame size and the SR scales of the reconstructors.
    """
    scales = {preset: rec[1]["scale"] for preset, rec in recs.items() if rec is not None}
    check_disk(protocol, estimate(protocol, *shape, scales), out_dir)


def _open_writers(protocol: Protocol, out_dir: Path, recs: Reconstructors, scope: Microscope,
                  result: RunResult) -> RunWriters:
    """Create the run's raw, WF and SR journals (opened as their first frames arrive)."""
    channels = [ChannelInfo(i, c.preset, scope.channel_line(c.preset),
                            rec[1] if (rec := recs[c.preset]) else {})
                for i, c in enumerate(protocol.channels)]
    shape = scope.camera.shape
    scales = {preset: rec[1]["scale"] for preset, rec in recs.items() if rec is not None}
    fmt = storage_format(protocol, estimate(protocol, *shape, scales))
    writers = RunWriters(out_dir, channels, protocol.frames_per_set,
                         scope.backend.pixel_size_um() or 0.0, protocol.timelapse.interval_s,
                         protocol.mode, protocol.save.wf,
                         [p.model_dump() for p in protocol.positions],
                         sr_every=protocol.save.sr == "every", fmt=fmt,
                         n_time_points=protocol.timelapse.count,
                         compression=protocol.save.compression)
    if not writers.pixel_size_um:
        result.notes.append("the microscope reports no pixel size: files say 1 µm")
        writers.pixel_size_um = 1.0
    writers.open_images(shape, protocol.n_positions)
    return writers


def _build_pipeline(protocol: Protocol, recs: Reconstructors, shape: tuple[int, int],
                    writers: RunWriters, stop_run: Callable[[], None], bar: _Progress,
                    display: DisplaySlot | None) -> Pipeline:
    """Build the writer queue, a streaming predictor per reconstructed channel, the display slot.

    ``bar`` follows the raw frames written.
    """
    # every-set SR: at most as many raw sets wait for inference as the writer queue holds
    queue_sets = writer_queue_sets(protocol.frames_per_set * shape[0] * shape[1] * 2)
    predictors = _start_predictors(protocol, recs, queue_sets)
    pipeline = Pipeline(writers, predictors, protocol.save.sr, queue_sets, stop_run,
                        on_written=lambda: bar.update(writers.raw_frames, pipeline),
                        display=display)
    return pipeline


def _start_predictors(protocol: Protocol, recs: Reconstructors, max_pending: int
                      ) -> dict[str, SetPredictor]:
    """Start a streaming predictor per reconstructed channel.

    Each takes every set when all SR is saved, else the latest (``max_pending``: every-set sets
    waiting at most).
    """
    from acquisition.set_info import SetPredictor

    mode: Literal["every", "latest"] = "every" if protocol.save.sr == "every" else "latest"
    return {preset: SetPredictor(rec[0], mode=mode, max_pending=max_pending)
            for preset, rec in recs.items() if rec is not None}


def _start_records(out_dir: Path, protocol: Protocol, result: RunResult, started: str,
                   scope: Microscope) -> None:
    """Create the output folder, ``run.json`` saying the run is running, the protocol as written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_run_json(out_dir, protocol, result, started, scope, status="running")
    _copy_protocol(protocol, out_dir)


def _acquire(protocol: Protocol, scope: Microscope, acquisition: SIMAcquisition,
             pipeline: Pipeline, dose: DoseMonitor, bar: _Progress,
             result: RunResult) -> _Acquired:
    """Run the protocol's sequence into the pipeline and the dose monitor.

    However it ends, what is queued is written and reconstructed, and the journals are closed.
    The engine turns emission off.
    """
    acquisition.set_ready.connect(pipeline.on_set)
    acquisition.set_ready.connect(dose.on_set)
    sequence = protocol.to_sequence()
    powers = {scope.channel_line(c.preset): c.power_mw for c in protocol.channels}
    pipeline.start()
    raised: BaseException | None = None
    try:
        with bar:
            try:
                acquisition.run(sequence, powers)
            finally:
                pipeline.finish_acquisition()
                bar.update(pipeline.writers.raw_frames, pipeline)
                bar.inference(pipeline)
                pipeline.finish_inference()
    except BaseException as exc:
        raised = exc
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        pipeline.writers.close()
        acquisition.set_ready.disconnect(pipeline.on_set)
        acquisition.set_ready.disconnect(dose.on_set)
        device_state = _device_state(scope)
    return _Acquired(raised, device_state)


def _note_pipeline(result: RunResult, pipeline: Pipeline) -> None:
    """Record the pipeline's error, and notes on the SR sets that failed or were refused."""
    if pipeline.error is not None:
        result.error = pipeline.error
    if pipeline.first_sr_error is not None:
        result.notes.append(f"{pipeline.sr_failed} SR reconstructions failed; the first: "
                            f"{pipeline.first_sr_error}")
    if pipeline.sr_refused:
        result.notes.append(f"{pipeline.sr_refused} sets were not reconstructed: inference "
                            "fell behind the acquisition")


def _finish_files(result: RunResult, writers: RunWriters) -> None:
    """Finish the images' metadata (time axis, per-plane times); files and reports in ``result``.

    The pixels are on disk already. When the metadata cannot be written (a full disk), the
    images keep the metadata they were created with and a note says how to finish them.
    """
    try:
        reports = writers.finish()
    except OSError as exc:
        writers.close()
        result.files = writers.paths()
        result.notes.append(f"the images' metadata could not be finished ({exc}); their pixels "
                            "are readable as they are: free some space and run livesr recover "
                            "on the folder to finish it")
        return
    result.files = [r.path for r in reports]
    result.reports = [r.describe() for r in reports]


def _check_stages(protocol: Protocol, scope: Microscope) -> None:
    """Refuse positions without an XY stage (or z without a focus drive).

    Refused rather than let the engine skip the moves with a warning.
    """
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
    result.reconstruction = pipeline.tally.summary()
    result.trust = pipeline.trust.summary()
    for channel, predictor in pipeline.predictors.items():
        calibration = getattr(predictor.reconstructor, "calibration", None)
        if calibration is not None and hasattr(calibration, "to_dict"):
            result.reconstruction.setdefault(channel, {})["calibration"] = calibration.to_dict()
        normalisation = channel_normalisation(predictor.reconstructor)
        if normalisation is not None and normalisation.anchored:
            result.reconstruction.setdefault(channel, {})["normalisation"] = \
                normalisation.to_dict()
    first, last = pipeline.t_first_set, pipeline.t_last_written
    if first is not None and last is not None and last > first:
        result.acquisition_seconds = round(last - first, 3)
        # from the first set's arrival: its own frames are not counted
        first_set_frames = pipeline.frames_acquired // max(pipeline.sets_acquired, 1)
        result.frames_per_s = round(
            max(writers.raw_frames - first_set_frames, 0) / (last - first), 1)


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


def _device_state(scope: Microscope) -> DeviceState:
    """Every property of every loaded device, as the backend reports it now."""
    state: DeviceState = {}
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
                    scope: Microscope | None, status: str,
                    device_state: DeviceState | None = None) -> None:
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
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    except OSError:
        tmp.unlink(missing_ok=True)  # the previous run.json stays as it was
        raise
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
        """Show ``written`` frames, the rate since the first set and the sets dropped (≤ 10/s)."""
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
