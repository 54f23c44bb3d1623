"""What a SIM microscope guarantees about its pattern, used to find carriers a blind search misses.

The pattern's period and angles are fixed by the hardware (a grating, an SLM, a DMD): the
orientations share one |k| and are spaced by 180°/n, and each orientation's phase is stepped by
a known amount (2π/n_phases). At low light or on a sparse sample one orientation's carrier can
sit below the sample's own structure in the blind cross-correlation; fitting the orientations
*jointly* (one |k|, one base angle, the spacing known) lets the clear orientations carry the
faint one. An expected carrier (from a calibration or the pattern device's settings) narrows
the search to a window around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CarrierMaps", "JointFit", "PatternPrior", "joint_carriers", "ring_confidence"]

#: a rival joint fit is this far from the best one, in base angle or in |k| (FFT-grid steps)
RIVAL_DEGREES = 3.0
RIVAL_STEPS = 4.0


@dataclass(frozen=True)
class PatternPrior:
    """The pattern geometry a SIM microscope guarantees, and how far the data may stray from it.

    Attributes
    ----------
    equal_spacing
        Orientations share one |k| and are spaced by 180°/n: fit them jointly.
    known_phase_step
        Each orientation's phases step by 2π/n_phases: fit one phase offset per orientation.
    expected_k_per_um
        ``(n_orientations, 2)`` carriers (k_y, k_x) in cycles/µm expected from a calibration or
        the instrument (sign free); the search is confined to ``window`` around each.
    window
        Half-width of that search, as a fraction of |k|; 0 keeps the expected carriers as they
        are (only the phases and modulation are estimated).
    k_fraction
        Where the joint fit looks for |k|, as fractions of the detection cutoff. A SIM pattern
        sits near the cutoff (that is where it gains resolution), while far below it the
        correlation is dominated by the sample's own low frequencies.
    k_tolerance
        Largest relative |k| difference between an orientation and the joint fit.
    angle_tolerance_deg
        Largest angle difference between an orientation and the joint fit.
    """

    equal_spacing: bool = True
    known_phase_step: bool = True
    expected_k_per_um: tuple[tuple[float, float], ...] | None = None
    window: float = 0.05
    k_fraction: tuple[float, float] = (0.5, 1.1)
    k_tolerance: float = 0.01
    angle_tolerance_deg: float = 1.0

    def expected(self, n_orientations: int) -> np.ndarray | None:
        """Return the expected carriers as an ``(n, 2)`` array, checked against ``n``."""
        if self.expected_k_per_um is None:
            return None
        expected = np.asarray(self.expected_k_per_um, dtype=np.float64)
        if expected.shape != (n_orientations, 2):
            raise ValueError(f"expected carriers: need {n_orientations} (k_y, k_x) pairs, got "
                             f"shape {expected.shape}")
        return expected


@dataclass
class CarrierMaps:
    """Per orientation, |cross-correlation of band 1 with band 0| over k on the FFT grid.

    ``maps`` is ``(n_orientations, Y, X)`` in FFT order over the frequencies ``ky`` (Y,) and
    ``kx`` (X,) in cycles/µm; ``search`` marks the frequencies where a carrier may be.
    """

    maps: np.ndarray
    ky: np.ndarray
    kx: np.ndarray
    search: np.ndarray

    @property
    def step(self) -> float:
        """The coarser of the two grid spacings (cycles/µm)."""
        return float(max(self.ky[1] - self.ky[0], self.kx[1] - self.kx[0]))

    def normalised(self) -> np.ndarray:
        """Each map divided by its median over the search region (a contrast)."""
        medians = np.array([np.median(m[self.search]) for m in self.maps])
        return self.maps / np.maximum(medians, 1e-300)[:, None, None]

    def sample(self, values: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of one map ``values`` (Y, X) at carriers ``k`` (…, 2)."""
        fy = k[..., 0] / (self.ky[1] - self.ky[0])
        fx = k[..., 1] / (self.kx[1] - self.kx[0])
        y0, x0 = np.floor(fy).astype(int), np.floor(fx).astype(int)
        wy, wx = fy - y0, fx - x0
        h, w = values.shape
        out = np.zeros(np.shape(fy))
        for dy, weight_y in ((0, 1 - wy), (1, wy)):
            for dx, weight_x in ((0, 1 - wx), (1, wx)):
                out += weight_y * weight_x * values[(y0 + dy) % h, (x0 + dx) % w]
        return out

    def index(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid indices (rows, columns) nearest to carriers ``k`` (…, 2)."""
        shape = self.maps.shape[1:]
        rows = np.rint(k[..., 0] / (self.ky[1] - self.ky[0])).astype(int) % shape[0]
        cols = np.rint(k[..., 1] / (self.kx[1] - self.kx[0])).astype(int) % shape[1]
        return rows, cols


@dataclass(frozen=True)
class JointFit:
    """Carriers fitted jointly: ``(n, 2)`` on the FFT grid, the confidence and the score.

    ``confidence`` is ``None`` where expected carriers were searched (the calibration vouches
    for them); ``score`` is the orientations' summed carrier contrast, the evidence of one
    SIM pattern in the set.
    """

    carriers: np.ndarray
    confidence: float | None
    score: float


def joint_carriers(maps: CarrierMaps, prior: PatternPrior, k_range: tuple[float, float],
                   margin: float = 0.4) -> JointFit:
    """Return each orientation's carrier (n, 2) on the grid under ``prior``, and a confidence.

    With expected carriers: the strongest correlation within the window around each (either
    sign); the confidence is ``None`` (the calibration vouches for the carriers). Otherwise the
    one |k|, base angle and spacing direction (±180°/n) whose orientations' summed contrast is
    highest, each orientation at the sign of its stronger peak; its confidence is
    ``(score / best rival − 1) / margin`` in [0, 1], the rivals being the fits more than
    :data:`RIVAL_DEGREES` or :data:`RIVAL_STEPS` grid steps of |k| away. ``k_range``: |k|
    limits in cycles/µm.
    """
    n = maps.maps.shape[0]
    contrast = maps.normalised()
    expected = prior.expected(n)
    if expected is not None:
        carriers = np.stack([_best_near(contrast[o], maps, expected[o], prior.window)
                             for o in range(n)])
        rows, cols = maps.index(carriers)
        return JointFit(carriers, None, float(contrast[np.arange(n), rows, cols].sum()))
    if not prior.equal_spacing:
        raise ValueError("a pattern prior needs equal_spacing or expected carriers")
    radii = np.arange(k_range[0], k_range[1], maps.step / 4)
    angles = np.radians(np.arange(0.0, 180.0, 0.25))
    best_score, best, best_at = -np.inf, np.zeros((n, 2)), (0.0, 0.0, 0.0)
    scores = []
    for direction in (1.0, -1.0):
        # (angle, orientation) -> each orientation's angle for every base angle
        theta = angles[:, None] + direction * np.pi * np.arange(n)[None, :] / n
        unit = np.stack([np.sin(theta), np.cos(theta)], axis=-1)  # (A, n, 2) as (k_y, k_x)
        k = radii[:, None, None, None] * unit[None]  # (R, A, n, 2)
        plus = np.stack([maps.sample(contrast[o], k[:, :, o]) for o in range(n)], axis=-1)
        minus = np.stack([maps.sample(contrast[o], -k[:, :, o]) for o in range(n)], axis=-1)
        score = np.maximum(plus, minus).sum(axis=-1)  # (R, A)
        scores.append(score)
        r, a = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[r, a] > best_score:
            best_score = float(score[r, a])
            signs = np.where(plus[r, a] >= minus[r, a], 1.0, -1.0)
            best = signs[:, None] * k[r, a]
            best_at = (direction, float(radii[r]), float(angles[a]))
    rival = 0.0
    for direction, score in zip((1.0, -1.0), scores, strict=True):
        turn = np.degrees(np.abs(np.angle(np.exp(2j * (angles - best_at[2]))))) / 2  # mod 180°
        far = ((np.abs(radii - best_at[1]) > RIVAL_STEPS * maps.step)[:, None]
               | (turn > RIVAL_DEGREES)[None, :] | (direction != best_at[0]))
        if np.any(far):
            rival = max(rival, float(score[far].max()))
    confidence = 1.0 if rival <= 0 else float(np.clip((best_score / rival - 1) / margin, 0, 1))
    return JointFit(best, confidence, best_score)


def _best_near(contrast: np.ndarray, maps: CarrierMaps, expected: np.ndarray,
               window: float) -> np.ndarray:
    """Return the grid point of highest contrast within ``window``·|k| of ±``expected``."""
    ky, kx = maps.ky, maps.kx
    if window == 0:
        plus, minus = (float(maps.sample(contrast, sign * expected)) for sign in (1.0, -1.0))
        return expected if plus >= minus else -expected
    radius = max(window * float(np.hypot(*expected)), 1.5 * maps.step)
    best_value, best = -np.inf, expected
    for sign in (1.0, -1.0):
        centre = sign * expected
        near = np.hypot(ky[:, None] - centre[0], kx[None, :] - centre[1]) <= radius
        values = np.where(near, contrast, -np.inf)
        i = int(np.argmax(values))
        if values.flat[i] > best_value:
            best_value = float(values.flat[i])
            row, col = np.unravel_index(i, values.shape)
            best = np.array([ky[row], kx[col]])
    return best


def ring_confidence(contrast: np.ndarray, maps: CarrierMaps, k: np.ndarray,
                    rival_distance: float, margin: float) -> float:
    """Confidence that ``k`` is a carrier: its peak against rivals on the same |k| ring.

    A pattern known to lie at |k| must stand above whatever else the correlation shows at
    that |k| at other angles: ``(peak / highest rival − 1) / margin`` clipped to [0, 1], the
    rivals farther than ``rival_distance`` grid steps from ±k and within 2 steps of the ring.
    """
    ky, kx = maps.ky[:, None], maps.kx[None, :]
    radius = float(np.hypot(*k))
    ring = np.abs(np.hypot(ky, kx) - radius) <= 2 * maps.step
    far = ((np.hypot(ky - k[0], kx - k[1]) > rival_distance * maps.step)
           & (np.hypot(ky + k[0], kx + k[1]) > rival_distance * maps.step))
    rows, cols = maps.index(np.asarray(k))
    peak = max(float(contrast[(rows + dy) % contrast.shape[0], (cols + dx) % contrast.shape[1]])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    rivals = contrast[ring & far]
    if rivals.size == 0:
        return 1.0
    return float(np.clip((peak / float(rivals.max()) - 1.0) / margin, 0.0, 1.0))
