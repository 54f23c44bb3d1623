"""The SIM engine: pymmcore-plus's MDA engine, acquiring complete SIM sets.

A plain ``useq.MDASequence`` (time, channels, positions) plus :class:`SIMSettings`: every acquire
event becomes the 9 (or 25) pattern events of a SIM set, or one uniform-illumination frame in
wide-field mode. pymmcore-plus then hardware-sequences what the devices allow (pattern and AOTF
property sequences; one camera sequence per time point, or one for a whole time-lapse at
interval 0); otherwise each frame is a software snap.
:class:`SIMAcquisition` collects the frames into :class:`~hardware.frameset.FrameSet` objects,
emitted by its ``set_ready`` signal on the acquisition thread (keep handlers cheap).

Unlike the stock engine, which logs device failures and carries on, this one stops: a device that
raises, a camera that stalls past the timeout or delivers too few frames, a circular buffer that
overflows, each ends the run with a :class:`~hardware.backend.DeviceError` naming the device.
Emission is off when the run ends, however it ends; sets delivered before a fault stay delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from psygnal import Signal
from pydantic import BaseModel, ConfigDict, Field
from pymmcore_plus.core import SequencedEvent

from hardware.backend import DeviceError, PymmcoreBackend, device_call
from hardware.frameset import FrameSet
from hardware.mda_adapter import RUNNER_T0, StrictMDAEngine, is_camera_thread
from hardware.sim_events import expand_sim_events

if TYPE_CHECKING:
    import useq

    from hardware.microscope import Microscope

__all__ = ["AcquisitionSummary", "SIMAcquisition", "SIMEngine", "SIMSettings"]


class SIMSettings(BaseModel):
    """How each acquire event of a sequence is turned into frames."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["sim", "wf"] = Field("sim", description="SIM sets, or one WF frame per event")
    n_patterns: Literal[9, 25] = Field(9, description="9: linear 3×3 SIM; 25: nonlinear 5×5")
    hardware_sequencing: bool = Field(True, description="let the devices run property sequences")
    frame_timeout_s: float = Field(5.0, gt=0, description="longest wait for a frame")
    first_frame_timeout_s: float = Field(20.0, gt=0, description="longest wait for the first")

    @property
    def frames_per_set(self) -> int:
        """Frames per acquire event: ``n_patterns`` in SIM mode, 1 in wide-field mode."""
        return self.n_patterns if self.mode == "sim" else 1


class SIMEngine(StrictMDAEngine):
    """An ``MDAEngine`` that expands acquire events into SIM pattern events and stops on faults."""

    def __init__(self, microscope: Microscope, sim: SIMSettings) -> None:
        backend = microscope.backend
        if not isinstance(backend, PymmcoreBackend):
            raise TypeError("the SIM engine runs on the pymmcore-plus backend")
        super().__init__(backend.core, use_hardware_sequencing=sim.hardware_sequencing,
                         timeout_base=sim.frame_timeout_s, timeout_multiplier=5.0,
                         timeout_first_frame=sim.first_frame_timeout_s)
        if sim.mode == "sim" and microscope.pattern is None:
            raise ValueError("SIM mode needs a pattern generator in the microscope settings")
        self.microscope, self.sim = microscope, sim
        self.camera_errors: list[str] = []  # what the camera's acquisition thread raised
        #: called with (image, event, metadata) for each frame, on the acquisition thread,
        #: before the runner's ``frameReady`` (whose Qt flavour may deliver it later, elsewhere)
        self.frame_sink: Callable[[np.ndarray, useq.MDAEvent, Mapping[str, Any]], None] | None \
            = None
        #: called with each event before its devices are set up, on the acquisition thread
        #: (a sequenced set: once, with the set's first event's index), e.g. to set a power
        self.before_setup: Callable[[useq.MDAEvent], None] | None = None

    # -- events
    def pattern_events(self, event: useq.MDAEvent) -> list[useq.MDAEvent]:
        """Expand one acquire event into its SIM pattern events, or one uniform frame."""
        pattern = self.microscope.pattern
        if pattern is None:
            return [event]
        role, props = pattern.role, tuple(event.properties or ())
        if self.sim.mode == "wf":
            value = (role.device, role.property, role.uniform_state)
            return [event.model_copy(update={"properties": (*props, value)})]
        return expand_sim_events([event], self.sim.n_patterns, role.device, role.property,
                                 role.state_format)

    def event_iterator(self, events: Iterable[useq.MDAEvent]) -> Iterator[useq.MDAEvent]:
        """Yield the pattern events, grouped per position.

        The parent merges what the devices can sequence within a group. Time points with their
        own start times (an interval > 0) are separate camera sequences, with the AOTF blanked
        between them; a time-lapse at interval 0 streams as one sequence (SIM sets back to back,
        the pattern sequence repeating), split only where a device's sequence memory is full or
        a channel change cannot be sequenced.
        """
        for _, same_position in groupby(events, key=lambda e: e.index.get("p", 0)):
            # lazily: a long time-lapse is expanded as the camera consumes it
            frames = (f for event in same_position for f in self.pattern_events(event))
            yield from super().event_iterator(frames)

    # -- setup: every failure names its device instead of being logged and skipped
    def setup_event(self, event: useq.MDAEvent) -> None:
        """Set the devices up for ``event``; any failure raises a :class:`DeviceError`."""
        if self.before_setup is not None:
            try:
                self.before_setup(event)
            except DeviceError:
                raise
            except Exception as exc:
                raise DeviceError(self._devices_of(event), f"before setting up a frame: {exc}") \
                    from exc
        try:
            super().setup_event(event)
        except DeviceError:
            raise
        except Exception as exc:
            raise DeviceError(self._devices_of(event), f"setting up a frame failed: {exc}") \
                from exc

    def setup_sequenced_event(self, event: SequencedEvent) -> None:
        """Set up a hardware-sequenced event, each failure naming its device.

        The property sequences are loaded and started here; the parent sets up the rest.
        """
        core = self.mmcore
        if core.isSequenceRunning():
            # the previous sequence delivered all its frames; its camera thread may still be
            # winding down. Stopping joins it now, where the parent would poll in 0.2 s steps.
            with device_call(core.getCameraDevice(), "ending the previous sequence"):
                core.stopSequenceAcquisition()
        for (dev, prop), values in event.property_sequences.items():
            with device_call(dev, f"loading a {prop} sequence of {len(values)}"):
                with suppress(RuntimeError):
                    core.stopPropertySequence(dev, prop)
                core.loadPropertySequence(dev, prop, values)
        stripped = event.model_copy(update={"property_sequences": {}})
        super().setup_sequenced_event(stripped)
        for dev, prop in event.property_sequences:
            with device_call(dev, f"starting the {prop} sequence"):
                core.startPropertySequence(dev, prop)

    # -- execution
    def exec_event(self, event: useq.MDAEvent) -> Iterator[Any]:
        """Unblank the AOTF for the frames of this event only, and check what arrives."""
        aotf = self.microscope.aotf
        if aotf is not None:
            aotf.unblank()
        try:
            if isinstance(event, SequencedEvent):
                yield from self._to_sink(self._checked_sequence(event))
            else:
                yield from self._to_sink(super().exec_event(event))
        finally:
            if aotf is not None:
                aotf.blank()

    def _to_sink(self, inner: Iterable[Any]) -> Iterator[Any]:
        """Pass ``inner``'s payloads on, each frame first to :attr:`frame_sink`.

        What the runner sends back is passed on to ``inner``.
        """
        frames = iter(inner)
        try:
            payload = next(frames)
            while True:
                if payload is not None and self.frame_sink is not None:
                    self.frame_sink(*payload)
                signal = yield payload
                payload = frames.send(signal) if isinstance(frames, Generator) else next(frames)
        except StopIteration:
            return

    def exec_single_event(self, event: useq.MDAEvent) -> Iterator[Any]:
        """Snap one frame; a failing snap or read raises a :class:`DeviceError`."""
        camera = self.mmcore.getCameraDevice()
        t0 = event.metadata.get(RUNNER_T0) or time.perf_counter()
        with device_call(camera, "snapping an image"):
            self.mmcore.snapImage()
        elapsed_ms = (time.perf_counter() - t0) * 1000
        with device_call(camera, "reading the image"):
            img = self.mmcore.getImage()
        meta = self.get_frame_metadata(event, runner_time_ms=elapsed_ms, camera_device=camera,
                                       include_position=False)
        yield (img, event, meta)

    def _checked_sequence(self, event: SequencedEvent) -> Iterator[Any]:
        """Run the parent's sequenced acquisition, checked.

        Stalls, overflows and missing frames become errors naming the camera.
        """
        camera = self.mmcore.getCameraDevice()
        expected, delivered, missing = len(event.events), 0, 0
        inner = self.exec_sequenced_event(event)
        try:
            payload = next(inner)
            while True:
                if payload is None:
                    missing += 1
                    payload = next(inner)
                    continue
                delivered += 1
                signal = yield payload
                payload = inner.send(signal)
        except StopIteration:
            pass
        except TimeoutError as exc:
            raise DeviceError(camera, f"stalled after {delivered} of {expected} frames: "
                                      f"{str(exc).split('. ')[0]}") from exc
        except MemoryError as exc:
            raise DeviceError(camera, f"circular buffer overflowed after {delivered} of "
                                      f"{expected} frames (frames were not read fast enough)") \
                from exc
        if self.mmcore.isBufferOverflowed():
            raise DeviceError(camera, f"circular buffer overflowed after {delivered} of "
                                      f"{expected} frames (frames were not read fast enough)")
        if missing:
            cause = f": {self.camera_errors[-1]}" if self.camera_errors else ""
            raise DeviceError(camera, f"delivered {delivered} of {expected} frames of a "
                                      f"sequence{cause}")

    def _devices_of(self, event: useq.MDAEvent) -> str:
        labels = {dev for dev, _, _ in event.properties or ()}
        if isinstance(event, SequencedEvent):
            labels |= {dev for dev, _ in event.property_sequences}
        return ", ".join(sorted(labels)) or self.mmcore.getCameraDevice()


@dataclass
class AcquisitionSummary:
    """What a run delivered."""

    sets: int = 0
    frames: int = 0
    hardware_sequenced_sets: int = 0
    seconds: float = 0.0
    canceled: bool = False
    error: str | None = None
    per_channel: dict[str, int] = field(default_factory=dict)


class SIMAcquisition:
    """Runs a sequence with the :class:`SIMEngine`; emits complete sets, keeps lasers safe."""

    set_ready = Signal(FrameSet)

    def __init__(self, microscope: Microscope, sim: SIMSettings | None = None) -> None:
        self.microscope = microscope
        self.sim = sim or SIMSettings()
        self.engine = SIMEngine(microscope, self.sim)
        self._partial: dict[tuple[int, int, int], _PartialSet] = {}
        self._powers: dict[int, float] = {}
        self._running = False
        self.summary = AcquisitionSummary()

    def validate(self, sequence: useq.MDASequence,
                 powers_mw: Mapping[int, float] | None = None) -> dict[int, float]:
        """Check channels and powers before any device changes; return the checked powers."""
        scope = self.microscope
        group = scope.settings.channels.group
        for channel in sequence.channels:
            if channel.group != group:
                raise ValueError(f"channel {channel.config!r}: group {channel.group!r} is not "
                                 f"the settings' channel group {group!r}")
            scope.channel_line(channel.config)
        return scope.check_powers(powers_mw or {})

    def run(self, sequence: useq.MDASequence,
            powers_mw: Mapping[int, float] | None = None) -> AcquisitionSummary:
        """Acquire ``sequence``; block until it ends.

        Raises :class:`DeviceError` on a fault (emission already off, sets delivered so far kept).
        """
        scope = self.microscope
        powers = self.validate(sequence, powers_mw)
        self.summary = AcquisitionSummary()
        self._partial.clear()
        lines = sorted({scope.channel_line(c.config) for c in sequence.channels})
        previous_engine = self._core().mda.engine
        previous_hook = threading.excepthook
        threading.excepthook = self._thread_excepthook(previous_hook)
        # pymmcore-plus logs every event at INFO; formatting a 9-frame SequencedEvent costs
        # milliseconds per set, so keep its log to warnings while sets stream
        mm_logger = logging.getLogger("pymmcore-plus")
        previous_level = mm_logger.level
        mm_logger.setLevel(max(previous_level, logging.WARNING))
        t0 = time.perf_counter()
        try:
            scope.emission_off()
            scope.set_powers(powers)
            self._powers = {line: scope.lasers[line].power_mw for line in lines}
            if scope.pattern is not None:
                if self.sim.mode == "sim":
                    with device_call(scope.pattern.label, "choosing the SIM mode"):
                        scope.pattern.set_n_states(self.sim.n_patterns)
                scope.pattern.uniform()
            for line in lines:
                scope.lasers[line].on()
            self._core().mda.set_engine(self.engine)
            # frames straight from the engine: with Qt signals (a core made after a
            # QApplication) PySide6 would queue frameReady to the GUI thread, after the run
            self.engine.frame_sink = self._on_frame
            self._running = True
            events = self._core().mda.events
            events.sequenceCanceled.connect(self._on_canceled)
            try:
                self._core().mda.run(sequence)
            finally:
                self._running = False
                self.engine.frame_sink = None
                events.sequenceCanceled.disconnect(self._on_canceled)
        except Exception as exc:
            self.summary.error = str(exc)
            raise
        finally:
            threading.excepthook = previous_hook
            mm_logger.setLevel(previous_level)
            self.summary.seconds = time.perf_counter() - t0
            with suppress(Exception):
                if self._core().isSequenceRunning():
                    self._core().stopSequenceAcquisition()
            scope.emission_off()
            if previous_engine is not None and previous_engine is not self.engine:
                self._core().mda.set_engine(previous_engine)
        return self.summary

    def _core(self) -> Any:
        # no strong reference: the core must die when its microscope is closed, not at exit
        return self.engine.mmcore

    def cancel(self) -> None:
        """Stop after the current event (a running camera sequence is stopped)."""
        if self._running:
            self.summary.canceled = True
        self._core().mda.cancel()

    def _on_canceled(self, *_: object) -> None:
        self.summary.canceled = True

    # -- collecting frames into sets (on the acquisition thread)
    def _on_frame(self, img: np.ndarray, event: useq.MDAEvent, meta: Mapping[str, Any]) -> None:
        index = event.index
        key = (int(index.get("t", 0)), int(index.get("c", 0)), int(index.get("p", 0)))
        partial = self._partial.get(key)
        if partial is None:
            exposure = float(event.exposure or self._core().getExposure())
            partial = self._partial[key] = _PartialSet(self.sim.frames_per_set, img.shape, event,
                                                       exposure)
        k = int(index.get("sim", 0))
        partial.add(k, img, event, meta)
        if partial.complete:
            del self._partial[key]
            frame_set = partial.finish(key, self.microscope, self._powers)
            self.summary.sets += 1
            self.summary.frames += frame_set.n_frames
            self.summary.hardware_sequenced_sets += frame_set.hardware_sequenced
            self.summary.per_channel[frame_set.channel] = \
                self.summary.per_channel.get(frame_set.channel, 0) + 1
            self.set_ready.emit(frame_set)

    def _thread_excepthook(self, previous: Any) -> Any:
        def hook(args: threading.ExceptHookArgs) -> None:
            if is_camera_thread(args.thread):
                # reported in the run's DeviceError rather than as a stray traceback
                self.engine.camera_errors.append(str(args.exc_value))
                return
            previous(args)

        return hook


class _PartialSet:
    """The frames of one set as they arrive."""

    def __init__(self, n: int, shape: tuple[int, ...], first: useq.MDAEvent,
                 exposure_ms: float) -> None:
        self.frames = np.empty((n, *shape), np.uint16)
        self.filled = np.zeros(n, bool)
        self.patterns = [""] * n
        self.timestamps = np.zeros(n, np.float64)
        self.hardware = np.zeros(n, bool)
        self.camera_meta: list[dict[str, str]] = [{} for _ in range(n)]
        self.channel = first.channel.config if first.channel else ""
        self.exposure = exposure_ms

    def add(self, k: int, img: np.ndarray, event: useq.MDAEvent, meta: Mapping[str, Any]) -> None:
        if self.filled[k]:
            raise RuntimeError(f"frame {k} of set {dict(event.index)} arrived twice")
        np.copyto(self.frames[k], img, casting="unsafe")
        self.filled[k] = True
        requested = [v for _, _, v in event.properties or ()]
        self.patterns[k] = str(requested[-1]) if requested else ""
        self.timestamps[k] = float(meta.get("runner_time_ms", 0.0))
        self.hardware[k] = bool(meta.get("hardware_triggered", False))
        self.camera_meta[k] = {str(a): str(b) for a, b in dict(meta.get("camera_metadata")
                                                                 or {}).items()}

    @property
    def complete(self) -> bool:
        """Whether every frame of the set has arrived."""
        return bool(self.filled.all())

    def finish(self, key: tuple[int, int, int], scope: Microscope,
               powers: dict[int, float]) -> FrameSet:
        t, _, p = key
        line = scope.channel_line(self.channel) if self.channel else 0
        return FrameSet(t=t, channel=self.channel, position=p, line_nm=line, frames=self.frames,
                        patterns=tuple(self.patterns), timestamps_ms=self.timestamps,
                        exposure_ms=self.exposure, laser_powers_mw=dict(powers),
                        hardware_sequenced=bool(self.hardware.all()),
                        camera_metadata=self.camera_meta)
