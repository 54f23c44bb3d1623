"""Acquisition: protocols, the acquisition engine, writers, streaming, and the ``livesr`` CLI.

``acquisition.run(path_or_protocol)`` runs a protocol and returns a :class:`RunResult`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acquisition.runner import RunResult

__all__ = ["RunResult", "run"]


def run(protocol: Any, out: Any = None, **kwargs: Any) -> RunResult:
    """Run an acquisition protocol (a YAML path or a :class:`~acquisition.protocol.Protocol`).

    See :func:`acquisition.runner.run`.
    """
    from acquisition.runner import run as run_protocol

    return run_protocol(protocol, out, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "RunResult":
        from acquisition.runner import RunResult

        return RunResult
    raise AttributeError(name)
