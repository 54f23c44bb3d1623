"""How a DFCAN's input and output are scaled over a time-lapse: per set, or anchored.

``per-set`` is the official predict: each set's input is ``prctile_norm``-ed (its minimum to 0,
its maximum to 1) and the output is ``rm_outliers(prctile_norm(·))``, so every SR image spans
[0, 1] whatever the sample's brightness: a live series flickers with the noise of each set's
extremes, and bleaching is normalised away.

``anchored`` fixes both scalings from the first ``anchor_sets`` sets reconstructed and keeps them
for the rest of the run, so SR intensity follows the sample's brightness:

- input: ``(frames − offset) / scale``. The offset is the anchor sets' mean minimum, or the
  calibrated camera's dark level (then 0 means no photon); the scale is their mean maximum above
  the offset, times ``1 + headroom``.
- output: hot pixels replaced as the official ``rm_outliers`` does, without its renormalisation,
  then ``(out − offset) / scale`` with the anchor sets' mean output minimum and range, the range
  times ``1 + headroom``.
- Both are **clipped** to [0, 1] (the network's input range; the SR files' uint16 range): a set
  brighter than the anchors by more than the headroom saturates, nothing wraps.

While the anchors are taken, each set is scaled by the mean of the ranges seen so far, its own
included (with no headroom the first set is exactly the per-set result). A channel has one
normalisation for the run, shared by its positions and by the backends it may fall back to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from inference.predict.official import input_stack, prepare_input
from inference.predict.processing import postprocess, remove_hot_pixels

if TYPE_CHECKING:
    from collections.abc import Callable

    from inference.predict.official import Mode

__all__ = ["NORMALISATION_MODES", "Anchor", "Normalisation", "NormalisationMode"]

NormalisationMode = Literal["per-set", "anchored"]
NORMALISATION_MODES: tuple[str, ...] = get_args(NormalisationMode)
#: the official ``prctile_norm``'s guard against a flat image
EPS = 1e-7


@dataclass(frozen=True)
class Anchor:
    """A fixed linear scaling: ``(value − offset) / scale``."""

    offset: float
    scale: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Scale ``values`` and clip them to [0, 1]."""
        return np.clip((values - self.offset) / self.scale, 0, 1)


class Normalisation:
    """One channel's input and output scaling for a whole run (see the module).

    Parameters
    ----------
    mode
        ``per-set`` (the official predict) or ``anchored``.
    anchor_sets
        Anchored: the first sets reconstructed whose ranges fix the scalings.
    headroom
        Anchored: the anchor sets' maximum maps to ``1 / (1 + headroom)``; brighter is clipped.
    camera_offset_adu
        Anchored: the input's zero, a calibrated camera's dark level (ADU); ``None``: the anchor
        sets' mean minimum.
    photons_per_adu
        ``1 / (gain · QE)`` of a calibrated camera: the input scale is also recorded in photons.
    """

    def __init__(self, mode: NormalisationMode = "per-set", anchor_sets: int = 3,
                 headroom: float = 0.1, camera_offset_adu: float | None = None,
                 photons_per_adu: float | None = None) -> None:
        if mode not in NORMALISATION_MODES:
            raise ValueError(f"unknown normalisation {mode!r} (one of "
                             f"{', '.join(NORMALISATION_MODES)})")
        if anchor_sets < 1:
            raise ValueError(f"anchor_sets must be ≥ 1, got {anchor_sets}")
        if not headroom >= 0:
            raise ValueError(f"headroom must be ≥ 0, got {headroom}")
        self.mode = mode
        self.anchor_sets = int(anchor_sets)
        self.headroom = float(headroom)
        self.camera_offset_adu = camera_offset_adu
        self.photons_per_adu = photons_per_adu
        self._inputs: list[tuple[float, float]] = []
        self._outputs: list[tuple[float, float]] = []
        self._pending: tuple[float, float] | None = None
        self._output_anchor = Anchor(0.0, 1.0)
        #: the last set's scalings (``None``: none yet, or its output was kept raw)
        self.input: Anchor | None = None
        self.output: Anchor | None = None

    @property
    def anchored(self) -> bool:
        """Whether the scalings are anchored (not per set)."""
        return self.mode == "anchored"

    @property
    def fixed(self) -> bool:
        """Whether the anchors are taken (``anchor_sets`` sets seen) and now fixed."""
        return len(self._inputs) >= self.anchor_sets

    def use_camera(self, offset_adu: float, photons_per_adu: float | None = None) -> None:
        """Take the input's zero from a calibrated camera (before the first set)."""
        self.camera_offset_adu = float(offset_adu)
        self.photons_per_adu = photons_per_adu

    # -- the anchors (shared by the NumPy and the PyTorch paths) --------------------------------

    def input_anchor(self, measure: Callable[[], tuple[float, float]]) -> Anchor:
        """Return the input scaling of the set about to run.

        ``measure()`` gives that set's (minimum, maximum); it is called only while anchoring.
        """
        ranges = list(self._inputs)
        if not self.fixed:
            self._pending = measure()
            ranges.append(self._pending)
        self.input = self._anchor(ranges, self.camera_offset_adu)
        return self.input

    def output_anchor(self, measure: Callable[[], tuple[float, float]]) -> Anchor:
        """Return the output scaling of the set just run; while anchoring, count the set.

        ``measure()`` gives its output's (minimum, maximum), hot pixels removed.
        """
        if len(self._outputs) < self.anchor_sets:
            self._outputs.append(measure())
            self._output_anchor = self._anchor(self._outputs, None)
        self._count_input()
        self.output = self._output_anchor
        return self.output

    def keep_raw(self) -> None:
        """Keep the set's output raw (no post-processing): only its input range counts."""
        self._count_input()
        self.output = None

    def _count_input(self) -> None:
        if self._pending is not None and not self.fixed:
            self._inputs.append(self._pending)
        self._pending = None

    def _anchor(self, ranges: list[tuple[float, float]], zero: float | None) -> Anchor:
        low, high = np.mean(np.asarray(ranges, np.float64), axis=0)
        offset = float(low) if zero is None else float(zero)
        return Anchor(offset, float(max(high - offset, 0.0) * (1 + self.headroom) + EPS))

    # -- NumPy ---------------------------------------------------------------------------------

    def prepare(self, image_or_stack: np.ndarray, mode: Mode, in_channels: int) -> np.ndarray:
        """Build the network input ``(1, C, H, W)`` float32 (as the official ``prepare_input``)."""
        if not self.anchored:
            return prepare_input(image_or_stack, mode, in_channels)
        stack = input_stack(image_or_stack, mode, in_channels)
        anchor = self.input_anchor(lambda: (float(stack.min()), float(stack.max())))
        return anchor.apply(stack)[None].astype(np.float32)

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """Post-process the network output (as the official ``postprocess``), float32 in [0, 1]."""
        if not self.anchored:
            return postprocess(raw).astype(np.float32)
        cleaned = remove_hot_pixels(np.squeeze(raw))
        anchor = self.output_anchor(lambda: (float(cleaned.min()), float(cleaned.max())))
        return anchor.apply(cleaned).astype(np.float32)

    # -- records -------------------------------------------------------------------------------

    def report(self) -> dict[str, float | str]:
        """Return the last set's scalings, for its SR journal line (empty per set)."""
        if not self.anchored or self.input is None:
            return {}
        found: dict[str, float | str] = {
            "normalisation": "anchored" if self.fixed else "anchoring",
            "input_offset": self.input.offset, "input_scale": self.input.scale}
        if self.output is not None:
            found.update(output_offset=self.output.offset, output_scale=self.output.scale)
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the mode, its settings and the anchors taken (``None`` until a set ran)."""
        if not self.anchored:
            return {"mode": self.mode}
        found: dict[str, Any] = {
            "mode": self.mode, "anchor_sets": self.anchor_sets, "headroom": self.headroom,
            "input_zero": ("camera offset" if self.camera_offset_adu is not None
                           else "anchor sets' minimum"),
            "clipping": "input and output clipped to [0, 1]",
            "sets_counted": len(self._inputs), "fixed": self.fixed,
            "input": None, "output": None}
        if self.camera_offset_adu is not None:
            found["camera_offset_adu"] = self.camera_offset_adu
        if self.input is not None:
            found["input"] = {"offset": self.input.offset, "scale": self.input.scale}
            if self.photons_per_adu is not None:
                found["input"]["scale_photons"] = self.input.scale * self.photons_per_adu
        if self.output is not None:
            found["output"] = {"offset": self.output.offset, "scale": self.output.scale}
        return found

    def __repr__(self) -> str:
        """Return ``<Normalisation mode …>``."""
        return f"<Normalisation {self.mode} {self.report() or ''}>"
