"""The one place where LiveSR relies on pymmcore-plus internals.

Checked against pymmcore-plus 0.18.1, the version pinned in ``pyproject.toml``.
``tests/test_mda_adapter.py`` fails when a name below is missing from the installed version, so
an upgrade that drops or renames one is caught there. The rest of :mod:`hardware` uses public
names only.

Internals relied on, and why the public API does not suffice:

``MDAEngine._set_event_channel(event)`` and ``MDAEngine._set_event_properties(properties)``
    The public hooks ``setup_single_event`` and ``setup_sequenced_event`` apply an event's channel
    preset and properties through these two helpers, which log a failing device and carry on;
    LiveSR must stop and name the device. Overriding the public hooks instead would mean
    re-implementing all else they do (XY and Z moves with autofocus correction, SLM images, ROI,
    autoshutter, sequence loading) over more private state. :class:`StrictMDAEngine` overrides
    just these two.
``CMMCorePlus._last_config``
    The ``(group, preset)`` last applied by ``setConfig``. The stock engine re-applies a channel
    preset only when it differs from this, and so does :class:`StrictMDAEngine`. The public
    ``getCurrentConfig`` asks the devices' state instead: another rule, and a slower one.
``AcquisitionThread`` (class of ``pymmcore_plus.experimental.unicore.core._unicore``)
    The thread in which ``UniMMCore`` runs a Python camera's sequence. What the camera raises
    ends that thread, not the run; :func:`is_camera_thread` recognises the thread by its class
    name, so that the error can be reported in the run's ``DeviceError``.
``"runner_t0"`` (key of ``MDAEvent.metadata``, :data:`RUNNER_T0`)
    Set by ``MDARunner`` to the ``time.perf_counter()`` start of the sequence; frame times of
    software snaps are measured from it, as the stock engine does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymmcore_plus.mda import MDAEngine

from hardware.backend import device_call

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterable

    import useq

__all__ = ["RUNNER_T0", "StrictMDAEngine", "is_camera_thread"]

#: ``MDAEvent.metadata`` key holding the runner's ``perf_counter`` start of the sequence
RUNNER_T0 = "runner_t0"

# the class name of UniMMCore's sequence acquisition thread
_CAMERA_THREAD_CLASS = "AcquisitionThread"


class StrictMDAEngine(MDAEngine):
    """An ``MDAEngine`` that raises a ``DeviceError`` where the stock one logs and carries on.

    Covers an event's channel preset and properties, in software-stepped and in
    hardware-sequenced events alike.
    """

    def _set_event_channel(self, event: useq.MDAEvent) -> None:
        if (ch := event.channel) is None:
            return
        # the stock engine's check; no public equivalent (see the module docstring)
        if (ch.group, ch.config) != self.mmcore._last_config:  # noqa: SLF001
            with device_call(f"{ch.group}/{ch.config}", "applying the channel preset"):
                self.mmcore.setConfig(ch.group, ch.config)

    def _set_event_properties(self, properties: Iterable[useq.PropertyTuple]) -> None:
        for dev, prop, value in properties:
            with device_call(dev, f"setting {prop} to {value}"):
                self.mmcore.setProperty(dev, prop, value)


def is_camera_thread(thread: threading.Thread | None) -> bool:
    """Tell whether ``thread`` is a ``UniMMCore`` camera's sequence acquisition thread."""
    return type(thread).__name__ == _CAMERA_THREAD_CLASS
