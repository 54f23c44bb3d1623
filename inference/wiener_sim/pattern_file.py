"""Pattern calibration files: the carriers a bright set showed, reused for dim sets.

``livesr calibrate`` estimates the pattern from one or more bright sets (a bead slide, a bright
frame of the sample) and writes it as JSON; ``livesr reconstruct --calibration`` reads it
back and searches each carrier only in a small window around the calibrated one, refining the
phases (and the carrier within the window) per set. The hardware fixes the pattern's period
and angles, so they carry over from set to set; the phases drift and are estimated anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.wiener_sim.priors import PatternPrior

if TYPE_CHECKING:
    from inference.wiener_sim.calibration import SIMCalibration
    from inference.wiener_sim.otf import SIMOptics

__all__ = ["FORMAT", "PatternCalibration", "combine", "read_pattern", "write_pattern"]

FORMAT = "livesr-sim-pattern/1"


@dataclass(frozen=True)
class PatternCalibration:
    """The pattern of an instrument: carriers (k_y, k_x) per orientation, and where from."""

    k_per_um: np.ndarray  # (n_orientations, 2) cycles/µm
    modulation: np.ndarray  # (n_orientations,) first harmonic, mean over the sets
    n_frames: int
    optics: dict[str, float]
    sources: tuple[str, ...]
    #: the farthest any set's carrier lay from the mean (cycles/µm; 0 for one set)
    spread_per_um: float = 0.0

    def prior(self, window: float = 0.0) -> PatternPrior:
        """Return a prior with these carriers (searched within ``window``·|k|; 0: as they are)."""
        carriers = tuple((float(k[0]), float(k[1])) for k in self.k_per_um)
        return PatternPrior(expected_k_per_um=carriers, window=window)

    def check(self, n_frames: int, optics: SIMOptics) -> None:
        """Raise ValueError when a set of ``n_frames`` under ``optics`` cannot use this."""
        if n_frames != self.n_frames:
            raise ValueError(f"the calibration is for sets of {self.n_frames} frames, "
                             f"this set has {n_frames}")
        pixel = self.optics.get("pixel_um")
        if pixel is not None and abs(pixel - optics.pixel_um) > 1e-6 * pixel:
            raise ValueError(f"the calibration was made at {pixel} µm pixels, this set is "
                             f"reconstructed at {optics.pixel_um} µm")


def combine(calibrations: list[SIMCalibration], optics: SIMOptics,
            sources: list[str]) -> PatternCalibration:
    """Average the carriers of several estimates of one pattern (signs aligned to the first)."""
    if not calibrations:
        raise ValueError("no calibration to combine")
    first = calibrations[0].k_per_um
    aligned = []
    for cal in calibrations:
        if cal.k_per_um.shape != first.shape:
            raise ValueError("the sets have different numbers of orientations")
        signs = np.sign(np.sum(cal.k_per_um * first, axis=1))[:, None]
        aligned.append(signs * cal.k_per_um)
    mean = np.mean(aligned, axis=0)
    spread = max(float(np.hypot(*(k - mean).T).max()) for k in aligned)
    return PatternCalibration(
        mean, np.mean([c.modulation[:, 0] for c in calibrations], axis=0),
        calibrations[0].geometry.n_frames,
        {"na": optics.na, "emission_um": optics.emission_um, "pixel_um": optics.pixel_um},
        tuple(sources), spread)


def write_pattern(path: str | Path, pattern: PatternCalibration,
                  estimates: list[SIMCalibration]) -> Path:
    """Write a calibration file (the pattern, and every estimate it was made from)."""
    path = Path(path)
    data: dict[str, Any] = {
        "format": FORMAT, "n_frames": pattern.n_frames, "optics": pattern.optics,
        "k_vectors_per_um": pattern.k_per_um.tolist(),
        "frequency_per_um": np.hypot(*pattern.k_per_um.T).tolist(),
        "angles_deg": np.degrees(np.mod(np.arctan2(*pattern.k_per_um.T), np.pi)).tolist(),
        "modulation": pattern.modulation.tolist(), "sources": list(pattern.sources),
        "spread_per_um": pattern.spread_per_um,
        "estimates": [e.to_dict() for e in estimates],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def read_pattern(path: str | Path) -> PatternCalibration:
    """Read a calibration file written by :func:`write_pattern`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a LiveSR pattern calibration ({FORMAT})")
    return PatternCalibration(np.asarray(data["k_vectors_per_um"], dtype=np.float64),
                              np.asarray(data["modulation"], dtype=np.float64),
                              int(data["n_frames"]), dict(data["optics"]),
                              tuple(data.get("sources", ())),
                              float(data.get("spread_per_um", 0.0)))
