"""Errors of the inference backends."""

from __future__ import annotations

__all__ = ["BackendError", "BackendUnavailable"]


class BackendError(RuntimeError):
    """A backend failed to build or run (a fallback may take over)."""


class BackendUnavailable(BackendError):
    """A backend cannot run here at all: its library or its device is missing."""
