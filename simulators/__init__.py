"""The simulated SIM microscope: samples, optics, illumination, camera noise and devices.

The Micro-Manager Python devices render frames from that physics (``demo.cfg``).

Names are imported on first use, so that ``import simulators`` (the CLI, the demo ``.cfg``
lookup) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Bleaching": "bleaching",
    "CameraModel": "camera",
    "DEFAULT_BLEACHING": "bleaching",
    "EMISSION_NM": "optics",
    "MODES": "illumination",
    "Mode": "illumination",
    "NoiselessSet": "render",
    "Optics": "optics",
    "PatternSettings": "illumination",
    "STRUCTURES": "samples",
    "SimulatedSet": "render",
    "Structure": "samples",
    "average_photon_count": "inference.metrics.photons",
    "default_patterns": "illumination",
    "foreground_mask": "inference.metrics.photons",
    "generate_sample": "samples",
    "render_set": "render",
    "simulate": "render",
}

__all__ = [
    "DEFAULT_BLEACHING",
    "EMISSION_NM",
    "MODES",
    "STRUCTURES",
    "Bleaching",
    "CameraModel",
    "Mode",
    "NoiselessSet",
    "Optics",
    "PatternSettings",
    "SimulatedSet",
    "Structure",
    "average_photon_count",
    "default_patterns",
    "foreground_mask",
    "generate_sample",
    "render_set",
    "simulate",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = _EXPORTS[name]
        relative = "" if "." in module else "."  # the photon count is a metric of inference
        return getattr(importlib.import_module(f"{relative}{module}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from inference.metrics.photons import average_photon_count, foreground_mask

    from .bleaching import DEFAULT_BLEACHING, Bleaching
    from .camera import CameraModel
    from .illumination import MODES, Mode, PatternSettings, default_patterns
    from .optics import EMISSION_NM, Optics
    from .render import NoiselessSet, SimulatedSet, render_set, simulate
    from .samples import STRUCTURES, Structure, generate_sample
