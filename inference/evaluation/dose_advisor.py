"""The dose advisor: whether DFCAN or Wiener-SIM is to be trusted at a live set's photon count.

The average photon count of the set is estimated as BioSR defines it
(:func:`inference.metrics.photons.average_photon_count`: the mean of the raw set, offset removed, in
photons, averaged over the foreground). The evaluation matrix of the chosen structure
(``matrix.json`` written by ``livesr evaluate``; by default the committed matrix of the shipped
weights) gives each method's mean NRMSE at the photon levels it was measured at; between
levels the NRMSE is interpolated in log(photons), outside them the nearest level is used (and
said so). The advice follows the matrix's own criteria:

- ``dfcan`` where the best DLSR model matches or beats Wiener-SIM (*DLSR priority*);
- ``wiener-sim`` where Wiener-SIM is better and within the tolerance of the ground truth
  (*SIM applicable*);
- ``wiener-sim`` with ``trustworthy = False`` where Wiener-SIM is better but not within the
  tolerance: neither is reliable at this dose; more light is the remedy.

``DoseAdvisor.advise(frames, structure)`` is what a GUI calls per set; it is cheap (a
smoothing, an Otsu threshold and a few interpolations).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from inference.metrics.photons import PhotonConverter

__all__ = ["DEFAULT_MATRIX", "DoseAdvice", "DoseAdvisor"]

#: the committed matrix of the shipped demo weights
DEFAULT_MATRIX = (Path(__file__).resolve().parents[1] / "data" / "evaluation" / "demo"
                  / "matrix.json")
DLSR = ("dfcan-sisr", "dfcan-sim", "dfgan")
DEFAULTS_NOTE = ("photon count estimated with the simulated camera's offset, gain and QE: "
                 "calibrate the camera (livesr calibrate-camera) for a real one")


@dataclass(frozen=True)
class DoseAdvice:
    """What the advisor says about one set."""

    photons: float  # BioSR's average photon count of the set
    structure: str  # the matrix row used
    recommended: str  # "dfcan" or "wiener-sim"
    trustworthy: bool  # False: neither method is within tolerance at this dose
    sim_applicable: bool
    dlsr_priority: bool
    best_dlsr: str  # the DLSR model of the matrix that scored best here
    nrmse: dict[str, float]  # interpolated mean NRMSE per method at this dose
    within_levels: bool  # False: the dose lies outside the matrix's levels (nearest used)
    message: str
    #: what the photon count rests on: the camera's calibration, or the demo camera's defaults
    photon_basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain (JSON-serialisable) dict."""
        return asdict(self)


class DoseAdvisor:
    """Advice from an evaluation matrix (``matrix.json``).

    ``camera`` converts counts to photons (a
    :class:`~inference.metrics.photons.CameraCalibration`; default: the demo camera).
    """

    def __init__(self, matrix: str | Path | None = None,
                 camera: PhotonConverter | None = None) -> None:
        path = Path(matrix) if matrix is not None else DEFAULT_MATRIX
        if not path.is_file():
            raise FileNotFoundError(f"no evaluation matrix at {path}: run livesr evaluate "
                                    "CONFIG.yaml first, or give its matrix.json")
        data = json.loads(path.read_text())
        if not str(data.get("format", "")).startswith("livesr-evaluation-matrix/"):
            raise ValueError(f"{path}: not a livesr evaluation matrix")
        if data["config"]["data"]["kind"] != "simulated":
            raise ValueError(f"{path}: the dose advisor needs a matrix over photon levels "
                             "(simulated data); BioSR levels are not photon counts")
        self.path = path
        self.camera = camera
        criteria = data["config"]["criteria"]
        self.sim_tolerance = float(criteria["sim_tolerance_nrmse"])
        self.dlsr_margin = float(criteria["dlsr_margin"])
        self.methods: list[str] = list(data["methods"])
        if "wiener-sim" not in self.methods or not set(DLSR) & set(self.methods):
            raise ValueError(f"{path}: the matrix needs wiener-sim and a DLSR model to advise")
        points: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for cell in data["cells"]:
            for method, scores in cell["methods"].items():
                if scores.get("nrmse") is not None:
                    points.setdefault(cell["structure"], {}).setdefault(method, []).append(
                        (float(cell["level"]), float(scores["nrmse"])))
        #: structure -> method -> (levels ascending, mean NRMSE)
        self._table: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {
            structure: {method: (np.array([p[0] for p in sorted(pts)]),
                                 np.array([p[1] for p in sorted(pts)]))
                        for method, pts in by_method.items()}
            for structure, by_method in points.items()}

    @property
    def structures(self) -> list[str]:
        """The structures (matrix rows) the matrix holds, sorted."""
        return sorted(self._table)

    def photons(self, frames: np.ndarray) -> float:
        """BioSR's average photon count of a raw set ``(N, H, W)`` or one frame, in ADU."""
        from inference.metrics.photons import average_photon_count

        return average_photon_count(np.asarray(frames), self.camera)

    def advise(self, frames: np.ndarray, structure: str | None = None) -> DoseAdvice:
        """Advise on a raw set.

        ``structure`` picks the matrix row (``None``: the mean over every structure of the
        matrix).
        """
        advice = self.advise_photons(self.photons(frames), structure)
        message = advice.message
        if self.camera is None:
            message += f" ({DEFAULTS_NOTE})"
        return replace(advice, message=message, photon_basis=self.photon_basis)

    @property
    def photon_basis(self) -> str:
        """Say what the photon count of a set rests on."""
        return "the camera calibration" if self.camera is not None else DEFAULTS_NOTE

    def advise_photons(self, photons: float, structure: str | None = None) -> DoseAdvice:
        """Advice at a known average photon count."""
        if not np.isfinite(photons):
            raise ValueError(f"photon count must be finite, got {photons}")
        if structure is not None and structure not in self._table:
            raise ValueError(f"structure {structure!r} is not in the matrix {self.path} "
                             f"(it has: {', '.join(self.structures)})")
        rows = [structure] if structure is not None else self.structures
        nrmse: dict[str, float] = {}
        within = True
        for method in self.methods:
            values = []
            for row in rows:
                if method not in self._table[row]:
                    continue
                levels, scores = self._table[row][method]
                within &= bool(levels[0] <= photons <= levels[-1])
                clamped = float(np.clip(photons, levels[0], levels[-1]))
                values.append(float(np.interp(np.log(max(clamped, 1e-9)), np.log(levels),
                                              scores)))
            if values:
                nrmse[method] = float(np.mean(values))
        dlsr = {m: v for m, v in nrmse.items() if m in DLSR}
        best = min(dlsr, key=dlsr.__getitem__)
        sim = nrmse["wiener-sim"]
        dlsr_priority = dlsr[best] <= sim * (1 + self.dlsr_margin)
        sim_applicable = sim <= self.sim_tolerance
        recommended = "dfcan" if dlsr_priority else "wiener-sim"
        trustworthy = dlsr_priority or sim_applicable
        name = structure or "all structures"
        where = "" if within else " (outside the matrix's photon levels: nearest level used)"
        if dlsr_priority:
            verdict = (f"{best} (NRMSE {dlsr[best]:.2f}) matches or beats Wiener-SIM "
                       f"({sim:.2f}): DFCAN is the trustworthy choice")
        elif sim_applicable:
            verdict = (f"Wiener-SIM (NRMSE {sim:.2f}) beats {best} ({dlsr[best]:.2f}) and is "
                       f"within tolerance ({self.sim_tolerance}): Wiener-SIM is the "
                       "trustworthy choice")
        else:
            verdict = (f"Wiener-SIM (NRMSE {sim:.2f}) beats {best} ({dlsr[best]:.2f}) but is "
                       f"not within tolerance ({self.sim_tolerance}): neither is reliable; "
                       "raise the dose")
        message = f"{photons:.0f} photons, {name}{where}: {verdict}"
        return DoseAdvice(float(photons), name, recommended, bool(trustworthy),
                          bool(sim_applicable), bool(dlsr_priority), best, nrmse, within,
                          message)
