"""A protocol's imaging mode on the microscope: the SIM engine's settings and the illumination."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hardware.sim_engine import SIMSettings

if TYPE_CHECKING:
    from acquisition.protocol import Protocol

__all__ = ["engine_settings", "set_mode_illumination"]


def engine_settings(protocol: Protocol) -> SIMSettings:
    """SIM sets of 9 (25 for nonlinear SIM) or single WF frames.

    The first frame may wait for a simulated sample to render (up to 300 s).
    """
    mode = protocol.mode
    return SIMSettings(mode="wf" if mode == "wf" else "sim",
                       n_patterns=25 if mode == "nl-sim" else 9, first_frame_timeout_s=300)


def set_mode_illumination(scope: Any, protocol: Protocol) -> None:
    """TIRF or grazing-incidence illumination on the pattern generator, for those modes."""
    if scope.pattern is not None and protocol.mode in ("tirf-sim", "gi-sim"):
        scope.pattern.set_illumination(protocol.mode.split("-")[0])
