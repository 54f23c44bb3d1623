"""The reconstructions the evaluation compares, each turning one raw set into an SR image.

Every method is built by :func:`inference.registry.build_reconstructor`, the registry a
live run uses, so the evaluation scores what an acquisition would show:

- ``wf``: the mean of the raw set, bicubically upsampled to the SR grid (the baseline).
- ``wiener-sim``: conventional SIM, the pattern estimated from each set itself as a conventional
  reconstruction would (:class:`~inference.registry.SetwiseWienerSIM`); estimates of low
  confidence (a dim or sparse set) are used all the same and flagged, not refused.
- ``dfcan-sisr``, ``dfcan-sim``, ``dfgan``: the weights on the inference backend a live run
  picks (``auto``: ONNX Runtime on the CPU, TensorRT on a GPU), with the official pre- and
  post-processing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inference.registry import SetwiseWienerSIM, build_reconstructor

if TYPE_CHECKING:
    from pathlib import Path

    from inference.reconstructor import Reconstructor

__all__ = ["MethodOutput", "ReconstructFn", "build_methods"]


@dataclass
class MethodOutput:
    """One method's SR image of a set, and whether it is to be trusted as such."""

    image: np.ndarray
    note: str | None = None  # e.g. a low-confidence SIM calibration


ReconstructFn = Callable[[np.ndarray], MethodOutput]


def build_methods(methods: dict[str, Path | None], scale: int = 2, device: str = "cpu",
                  *, backend: str = "auto") -> dict[str, ReconstructFn]:
    """Reconstruction functions by name.

    Parameters
    ----------
    methods
        Name → weights file (a DLSR method) or ``None`` (``wf``, ``wiener-sim``).
    scale
        The SR grid's scale; a model of another scale is refused.
    device, backend
        Where and on what the DLSR models run (``auto``: as a live run would).
    """
    built: dict[str, ReconstructFn] = {}
    for name, weights in methods.items():
        reconstructor = build_reconstructor(
            name, weights=weights, scale=scale, device=device, backend=backend,
            wiener_estimate="every-set").reconstructor
        built[name] = _with_notes(reconstructor)
    return built


def _with_notes(reconstructor: Reconstructor) -> ReconstructFn:
    """Wrap ``reconstructor`` as a :data:`ReconstructFn`.

    A set-wise Wiener-SIM's estimate notes become the output's note.
    """

    def reconstruct(raw: np.ndarray) -> MethodOutput:
        image = reconstructor.reconstruct(raw)
        notes = reconstructor.notes if isinstance(reconstructor, SetwiseWienerSIM) else ()
        return MethodOutput(image, "; ".join(notes) or None)

    return reconstruct
