"""Lasers off when the GUI crashes.

An exception that reaches ``sys.excepthook`` (in PyQt6 an exception escaping a slot goes there,
then aborts the process) first turns every registered microscope's emission off. Exit and fatal
signals are covered by :mod:`hardware.safety`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType

from hardware import safety

__all__ = ["install_excepthook"]

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


def install_excepthook() -> Callable[[], None]:
    """Chain an emission-off step in front of the current ``sys.excepthook``.

    Returns a function that restores the previous hook.
    """
    previous: ExceptHook = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException,
             tb: TracebackType | None) -> None:
        try:
            safety.all_emission_off()
        finally:
            previous(exc_type, exc, tb)

    sys.excepthook = hook

    def restore() -> None:
        if sys.excepthook is hook:
            sys.excepthook = previous

    return restore
