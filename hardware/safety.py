"""Laser safety for the whole process: every emission off at exit and on fatal signals.

Each open :class:`~hardware.microscope.Microscope` registers here. At interpreter exit
(``atexit``) and on SIGTERM, SIGINT and SIGHUP, every registered microscope turns its lasers off
and blanks its AOTF before the previous handler runs (so Ctrl-C still raises KeyboardInterrupt and
SIGTERM still ends the process).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["all_emission_off", "install_handlers", "register", "unregister"]


class _Emitter(Protocol):
    def emission_off(self) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP")
                 if hasattr(signal, name))


def register(microscope: _Emitter) -> None:
    """Turn ``microscope``'s emission off at exit and on fatal signals (while it lives)."""
    install_handlers()
    with _lock:
        _live.add(microscope)


def unregister(microscope: _Emitter) -> None:
    """Stop watching ``microscope`` (it turns its own emission off when it closes)."""
    with _lock:
        _live.discard(microscope)


def all_emission_off() -> list[str]:
    """Turn emission off on every registered microscope.

    The errors, if any, are returned and printed (this runs where raising would help no one).
    """
    with _lock:
        microscopes = list(_live)
    errors = []
    for microscope in microscopes:
        try:
            microscope.emission_off()
        except Exception as exc:
            errors.append(f"{exc}")
    for error in errors:
        print(f"livesr: could not turn emission off: {error}", file=sys.stderr)
    return errors


def install_handlers() -> None:
    """Install the atexit and signal handlers once (signals only from the main thread)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    atexit.register(all_emission_off)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _SIGNALS:
        previous = signal.getsignal(signum)
        signal.signal(signum, _chained(signum, previous))


def _chained(signum: int, previous: Any) -> Any:
    def handler(received: int, frame: FrameType | None) -> None:
        all_emission_off()
        if callable(previous):
            previous(received, frame)
        elif previous == signal.SIG_IGN:
            return
        else:  # the default action: end the process as the signal would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler
