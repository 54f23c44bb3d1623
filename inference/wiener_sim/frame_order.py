"""Frame orders of raw SIM files: orientation-major or phase-major, told apart by the data.

A file holds ``n_orientations × n_phases`` frames either orientation-major (all phases of the
first orientation, then the next: the order this package works in) or phase-major (the first
phase of every orientation, then the next phase). Frames that share a carrier differ only by
the pattern's phase, so grouping them right makes each group's band 1 correlate strongly with
band 0 at one carrier; the wrong grouping mixes orientations and the joint carrier fit scores
lower. :func:`detect_order` compares the two scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from inference.wiener_sim.calibration import SIMGeometry
from inference.wiener_sim.estimation import joint_pattern_fit

if TYPE_CHECKING:
    from inference.wiener_sim.otf import OTFModel, SIMOptics

__all__ = ["ORDERS", "FrameOrder", "OrderDetection", "detect_order", "to_orientation_major"]

FrameOrder = Literal["orientation-major", "phase-major"]
ORDERS: tuple[FrameOrder, ...] = ("orientation-major", "phase-major")


@dataclass(frozen=True)
class OrderDetection:
    """The order found, the joint-fit score of each order, and how clearly one wins."""

    order: FrameOrder
    scores: dict[str, float]

    @property
    def margin(self) -> float:
        """The winner's score over the loser's, minus 1 (0: a tie)."""
        ranked = sorted(self.scores.values(), reverse=True)
        return ranked[0] / max(ranked[1], 1e-300) - 1.0

    def describe(self) -> str:
        """One line for a log: the order and both scores."""
        scores = ", ".join(f"{name} {value:.2f}" for name, value in self.scores.items())
        return (f"frame order: {self.order} (joint carrier fit: {scores}; "
                f"{100 * self.margin:.0f} % apart)")


def to_orientation_major(frames: np.ndarray, order: FrameOrder) -> np.ndarray:
    """Return the frames ``(n, H, W)`` of a set in orientation-major order."""
    stack = np.asarray(frames)
    if order == "orientation-major":
        return stack
    if order != "phase-major":
        raise ValueError(f"unknown frame order {order!r} (one of {', '.join(ORDERS)})")
    geometry = SIMGeometry.for_frames(stack.shape[0])
    grid = stack.reshape(geometry.n_phases, geometry.n_orientations, *stack.shape[1:])
    return np.ascontiguousarray(grid.transpose(1, 0, 2, 3).reshape(stack.shape))


def detect_order(frames: np.ndarray, optics: SIMOptics | None = None, *,
                 otf: OTFModel | None = None) -> OrderDetection:
    """Tell whether a raw set is orientation-major or phase-major from its carriers."""
    scores: dict[str, float] = {order: joint_pattern_fit(to_orientation_major(frames, order),
                                                         optics, otf=otf).score
                                 for order in ORDERS}
    best: FrameOrder = max(ORDERS, key=lambda order: scores[order])
    return OrderDetection(best, scores)
