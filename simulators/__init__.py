"""The simulated SIM microscope: samples, optics, illumination, camera noise, and the
Micro-Manager Python devices that render frames from that physics (``demo.cfg``)."""

from .camera import CameraModel
from .illumination import MODES, Mode, PatternSettings, default_patterns
from .optics import EMISSION_NM, Optics
from .photons import average_photon_count, foreground_mask
from .render import NoiselessSet, SimulatedSet, render_set, simulate
from .samples import STRUCTURES, Structure, generate_sample

__all__ = [
    "EMISSION_NM",
    "MODES",
    "STRUCTURES",
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
