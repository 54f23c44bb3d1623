"""Snap and Live on an open microscope: one protocol channel, nothing written.

One protocol channel is acquired chunk after chunk of the SIM engine, its SR images put in a
display slot; nothing is written.

    live = LiveAcquisition(scope, protocol, count=None)
    live.set_ready.connect(keep_newest)   # each raw set (acquisition thread)
    live.sr_shown.connect(count_sr)       # each SR image put in live.display (inference thread)
    live.run()                            # blocks until live.stop() (or ``count`` sets)

A power or exposure set on the microscope while live holds from the next chunk on. The engine
turns emission off when a chunk ends, however it ends.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from psygnal import Signal

from acquisition import reconstruction
from acquisition.display import DisplayFrame, DisplaySlot, SRDisplay
from acquisition.modes import engine_settings, set_mode_illumination
from acquisition.protocol import ChannelSpec, Protocol, TimeLapse
from acquisition.set_info import SetInfo, SetPredictor
from hardware.frameset import FrameSet
from hardware.sim_engine import SIMAcquisition

if TYPE_CHECKING:
    import useq

    from hardware.microscope import Microscope
    from inference.streaming import StreamResult

__all__ = ["LiveAcquisition", "chunk_sequence", "default_chunk"]


def default_chunk(mode: str) -> int:
    """Return the sets per engine run: 200 wide-field frames, or 20 SIM sets."""
    return 200 if mode == "wf" else 20


def chunk_sequence(protocol: Protocol, loops: int, exposure_ms: float) -> useq.MDASequence:
    """Build ``loops`` sets of the protocol's first channel at ``exposure_ms``, back to back.

    The protocol's time-lapse and positions are not used.
    """
    channel = protocol.channels[0].model_copy(update={"exposure_ms": exposure_ms})
    chunk = protocol.model_copy(update={"channels": [channel], "positions": [],
                                        "timelapse": TimeLapse(count=loops)})
    return chunk.to_sequence()


class LiveAcquisition:
    """Snap (``count`` sets) or Live (until :meth:`stop`) of a protocol's first channel.

    Parameters
    ----------
    scope : Microscope
        The open microscope (it stays open).
    protocol : Protocol
        Mode, channel (preset, power, exposure, reconstruction) and inference backend; its
        time-lapse and positions are not used.
    count : int, optional
        Sets to acquire (``None``: until :meth:`stop`).
    chunk : int, optional
        Sets per engine run (default: :func:`default_chunk`), so that a wide-field stream
        never collects an endless camera sequence.
    display : DisplaySlot, optional
        Where the SR images go (default: a new slot, :attr:`display`).
    """

    #: each raw set, on the acquisition thread (keep handlers cheap)
    set_ready = Signal(FrameSet)
    #: each SR image put in :attr:`display`, on the inference thread
    sr_shown = Signal(DisplayFrame)

    def __init__(self, scope: Microscope, protocol: Protocol, count: int | None = None,
                 chunk: int | None = None, display: DisplaySlot | None = None) -> None:
        self.scope = scope
        self.protocol = protocol
        self.count = count
        self.chunk = chunk or default_chunk(protocol.mode)
        self.sr_display = SRDisplay(display if display is not None else DisplaySlot())
        self.sets_acquired = 0
        self.predictor: SetPredictor | None = None
        #: the reconstructor's method, model, weights hash, backend and scale
        self.reconstructor_info: dict[str, Any] = {}
        self._acquisition: SIMAcquisition | None = None
        self._stop = threading.Event()

    @property
    def display(self) -> DisplaySlot:
        """The newest SR image of the channel."""
        return self.sr_display.display

    @property
    def sr_failed(self) -> int:
        """Sets whose reconstruction failed."""
        return self.sr_display.failed

    @property
    def first_sr_error(self) -> str | None:
        """The first failed reconstruction's error."""
        return self.sr_display.first_error

    # -- control
    def run(self) -> None:
        """Acquire until stopped or ``count`` sets; blocks (a worker thread's job).

        Raises what the engine raises (emission already off).
        """
        channel = self.protocol.channels[0]
        self.predictor = self._start_predictor(channel)
        try:
            self._acquire(channel)
        finally:
            if self.predictor is not None:
                self.predictor.close()

    def stop(self) -> None:
        """Stop after the current event (returns at once; from any thread)."""
        self._stop.set()
        self._cancel()

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    # -- the worker thread
    def _start_predictor(self, channel: ChannelSpec) -> SetPredictor | None:
        """Start the channel's reconstructor behind a ``"latest"`` stream; ``None`` without one."""
        built = reconstruction.channel_reconstructor(self.protocol, channel,
                                                     self.scope.camera.shape)
        if built is None:
            return None
        set_mode_illumination(self.scope, self.protocol)
        reconstruction.use_device_pattern(built, channel, self.scope)
        reconstruction.use_camera_calibration(built, self.scope)
        reconstructor, self.reconstructor_info = built
        return SetPredictor(reconstructor, mode="latest", on_result=self._on_result)

    def _acquire(self, channel: ChannelSpec) -> None:
        set_mode_illumination(self.scope, self.protocol)
        self._acquisition = acquisition = SIMAcquisition(self.scope,
                                                         engine_settings(self.protocol))
        acquisition.set_ready.connect(self._on_set)
        try:
            self._stream(acquisition, channel)
        finally:
            acquisition.set_ready.disconnect(self._on_set)

    def _stream(self, acquisition: SIMAcquisition, channel: ChannelSpec) -> None:
        """Run chunk after chunk until stopped (or ``count`` sets).

        After the first set, each chunk keeps the power the microscope has (it is not set again:
        a power set from the GUI between two chunks is never undone by a value read a moment
        before) and takes the camera's exposure now.
        """
        line = self.scope.channel_line(channel.preset)
        powers: dict[int, float] | None = {line: channel.power_mw}
        exposure_ms = channel.exposure_ms
        while not self._stop.is_set():
            if self.sets_acquired:
                powers = None
                exposure_ms = self.scope.camera.exposure_ms
            loops = self._next_chunk()
            if loops <= 0:
                break
            acquisition.run(chunk_sequence(self.protocol, loops, exposure_ms), powers)

    def _next_chunk(self) -> int:
        """Return the sets of the next engine run (0: ``count`` reached)."""
        if self.count is None:
            return self.chunk
        return min(self.chunk, self.count - self.sets_acquired)

    def _cancel(self) -> None:
        if self._acquisition is not None:
            self._acquisition.cancel()

    # -- the acquisition thread
    def _on_set(self, frame_set: FrameSet) -> None:
        self.set_ready.emit(frame_set)
        t = self.sets_acquired  # the count since the session started: each chunk restarts t
        self.sets_acquired += 1
        if self.predictor is not None:
            self.predictor.submit(frame_set.frames, SetInfo.of(frame_set, t=t))
        if self._stop.is_set():
            self._cancel()  # a stop that came before the engine started

    # -- the inference thread
    def _on_result(self, result: StreamResult[SetInfo]) -> None:
        frame = self.sr_display.show(result)
        if frame is not None:
            self.sr_shown.emit(frame)
