"""Seeded generators of BioSR's four structures as fluorophore densities on a fine grid.

Each structure is drawn as point emitters in nanometres and integrated into pixels of the fine
grid (``pixel_nm``, at least 4× finer than the camera's). Complexity grows in BioSR's order:
clathrin-coated pits, ER, microtubules, F-actin. All structures sit inside one cell outline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import Voronoi

from .names import STRUCTURES, Structure

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["STRUCTURES", "CellOutline", "Structure", "generate_sample", "splat"]

# cytosolic background inside the cell, as a fraction of the structure's mean density
CYTOSOL_FRACTION = 0.02


def generate_sample(
    structure: str, shape: tuple[int, int], pixel_nm: float, seed: int | np.random.Generator,
    cell_seed: int | None = None,
) -> np.ndarray:
    """Fluorophore density (float32, arbitrary units) of ``structure`` on a ``shape`` grid.

    The cell outline comes from ``cell_seed`` when given (one cell for several structures),
    otherwise from ``seed`` like the structure.
    """
    if structure not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}: choose one of {', '.join(STRUCTURES)}")
    rng = np.random.default_rng(seed)
    field_nm = (shape[0] * pixel_nm, shape[1] * pixel_nm)
    cell_rng = rng if cell_seed is None else np.random.default_rng([cell_seed, 0xCE11])
    cell = CellOutline.random(field_nm, cell_rng)
    points, weights = _GENERATORS[structure](cell, rng)
    keep = cell.contains(points)
    density = splat(points[keep], weights[keep], shape, pixel_nm)
    inside = cell.mask(shape, pixel_nm)
    if inside.any():
        density += inside * (CYTOSOL_FRACTION * density[inside].mean())
    return density.astype(np.float32)


class CellOutline:
    """A smooth, star-shaped cell boundary: r(θ) = R·(1 + Σ aₙ cos(nθ + φₙ))."""

    def __init__(self, centre: np.ndarray, radius: float, amplitudes: np.ndarray,
                 phases: np.ndarray, field_nm: tuple[float, float]) -> None:
        self.centre, self.radius = centre, radius
        self.amplitudes, self.phases = amplitudes, phases
        self.field_nm = field_nm

    @classmethod
    def random(cls, field_nm: tuple[float, float], rng: np.random.Generator) -> CellOutline:
        """Draw a cell near the field's centre, of radius 0.46 of its smaller side."""
        size = min(field_nm)
        centre = np.array(field_nm) / 2 + rng.uniform(-0.05, 0.05, 2) * size
        amplitudes = rng.uniform(0.0, 0.08, 4)
        return cls(centre, 0.46 * size, amplitudes, rng.uniform(0, 2 * np.pi, 4), field_nm)

    def boundary(self, theta: np.ndarray) -> np.ndarray:
        """Return the boundary's radius r(θ) in nm at the angles ``theta``."""
        harmonics = np.arange(2, 2 + len(self.amplitudes))
        wiggle = (self.amplitudes[:, None] * np.cos(harmonics[:, None] * theta
                                                     + self.phases[:, None])).sum(0)
        return self.radius * (1.0 + wiggle)

    def contains(self, points_yx: np.ndarray) -> np.ndarray:
        """Return whether each ``(y, x)`` point (nm) lies inside the cell."""
        d = points_yx - self.centre
        theta = np.arctan2(d[:, 0], d[:, 1])
        return np.hypot(d[:, 0], d[:, 1]) < self.boundary(theta)

    def mask(self, shape: tuple[int, int], pixel_nm: float, rows: int = 256) -> np.ndarray:
        """Return the pixels of a ``shape`` grid whose centres lie inside the cell.

        The grid is tested in row blocks, so a large fine grid needs little memory.
        """
        x = (np.arange(shape[1], dtype=np.float32) + 0.5) * pixel_nm
        out = np.empty(shape, dtype=bool)
        for start in range(0, shape[0], rows):
            y = (np.arange(start, min(start + rows, shape[0]), dtype=np.float32) + 0.5) * pixel_nm
            yy, xx = np.meshgrid(y, x, indexing="ij")
            out[start:start + len(y)] = self.contains(
                np.stack([yy.ravel(), xx.ravel()], axis=-1)).reshape(len(y), shape[1])
        return out

    def area_um2(self) -> float:
        """Return the cell's area in µm²."""
        theta = np.linspace(0, 2 * np.pi, 721)
        return float(0.5 * np.trapezoid(self.boundary(theta) ** 2, theta)) / 1e6

    def random_points(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points uniformly inside the cell (rejection sampling)."""
        out: list[np.ndarray] = []
        got = 0
        while got < n:
            cand = rng.uniform(0, 1, (2 * n + 16, 2)) * np.array(self.field_nm)
            cand = cand[self.contains(cand)]
            out.append(cand)
            got += len(cand)
        return np.concatenate(out)[:n]


def splat(points_yx: np.ndarray, weights: np.ndarray, shape: tuple[int, int],
          pixel_nm: float) -> np.ndarray:
    """Integrate point emitters into pixels (each point lands in the pixel that contains it)."""
    iy = np.floor(points_yx[:, 0] / pixel_nm).astype(np.int64)
    ix = np.floor(points_yx[:, 1] / pixel_nm).astype(np.int64)
    ok = (iy >= 0) & (iy < shape[0]) & (ix >= 0) & (ix < shape[1])
    flat = np.bincount(iy[ok] * shape[1] + ix[ok], weights=weights[ok],
                       minlength=shape[0] * shape[1])
    return flat.reshape(shape)


# ---------------------------------------------------------------- filament primitives


def worm_like_chain(start: np.ndarray, angle: float, length_nm: float, persistence_nm: float,
                    rng: np.random.Generator, step_nm: float = 10.0) -> np.ndarray:
    """Draw a 2-D worm-like chain: vertices (N, 2) with tangent-angle variance step/persistence."""
    n = max(2, int(length_nm / step_nm))
    dtheta = rng.normal(0.0, np.sqrt(step_nm / persistence_nm), n - 1)
    theta = angle + np.concatenate([[0.0], np.cumsum(dtheta[:-1])])
    steps = step_nm * np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    return np.concatenate([start[None], start + np.cumsum(steps, axis=0)])


def sample_tube(polyline: np.ndarray, per_nm: float, radius_nm: float, rng: np.random.Generator,
                hollow: bool = True) -> np.ndarray:
    """Emitters along a polyline: a labelled cylinder of ``radius_nm`` seen in projection.

    ``hollow`` labels the surface (projected offset r·cos u, denser at the edges, as for
    antibody-labelled microtubules or membrane tubules); otherwise the cross-section is filled.
    """
    seg = np.diff(polyline, axis=0)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    total = seg_len.sum()
    n = rng.poisson(per_nm * total)
    if n == 0 or total == 0:
        return np.empty((0, 2))
    s = rng.uniform(0, total, n)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    idx = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    frac = (s - cum[idx]) / np.maximum(seg_len[idx], 1e-9)
    tangent = seg[idx] / np.maximum(seg_len[idx], 1e-9)[:, None]
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=-1)
    if hollow:
        offset = radius_nm * np.cos(rng.uniform(0, 2 * np.pi, n))
    else:
        offset = radius_nm * np.sin(rng.uniform(-np.pi / 2, np.pi / 2, n))
    return polyline[idx] + frac[:, None] * seg[idx] + offset[:, None] * normal


def _curved_edge(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                 bend: float = 0.15) -> np.ndarray:
    """Draw a quadratic Bézier from a to b bowed sideways by up to ``bend`` of its length."""
    d = b - a
    normal = np.array([d[1], -d[0]])
    ctrl = (a + b) / 2 + rng.uniform(-bend, bend) * normal
    t = np.linspace(0, 1, max(3, int(np.hypot(*d) / 10)))[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b


def _filled_blob(centre: np.ndarray, radius: float, n: int, rng: np.random.Generator,
                 holes: int = 0) -> np.ndarray:
    """``n`` points inside a lumpy disc, with optional round holes (fenestrations)."""
    theta = rng.uniform(0, 2 * np.pi, n)
    amps, phases = rng.uniform(0, 0.15, 3), rng.uniform(0, 2 * np.pi, 3)
    edge = radius * (1 + sum(a * np.cos((k + 2) * theta + p)
                             for k, (a, p) in enumerate(zip(amps, phases, strict=True))))
    r = edge * np.sqrt(rng.uniform(0, 1, n))
    pts = centre + np.stack([r * np.sin(theta), r * np.cos(theta)], axis=-1)
    for _ in range(holes):
        c = centre + rng.uniform(-0.6, 0.6, 2) * radius
        pts = pts[np.hypot(*(pts - c).T) > rng.uniform(40, 120)]
    return pts


# ---------------------------------------------------------------- the four structures

PointsAndWeights = tuple[np.ndarray, np.ndarray]


def _ccp(cell: CellOutline, rng: np.random.Generator) -> PointsAndWeights:
    """Clathrin-coated pits: hollow spherical cages 40–80 nm in radius, 0.5–1.5 per µm²."""
    n_pits = rng.poisson(rng.uniform(0.5, 1.5) * cell.area_um2())
    centres = cell.random_points(n_pits, rng)
    radii = rng.uniform(40, 80, n_pits)
    per_pit = rng.poisson(0.05 * 4 * np.pi * radii**2 / 100)  # ~ surface area
    owner = np.repeat(np.arange(n_pits), per_pit)
    v = rng.normal(size=(len(owner), 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)  # uniform on the sphere, seen from above
    pts = centres[owner] + radii[owner, None] * v[:, :2]
    brightness = rng.lognormal(0.0, 0.3, n_pits)[owner]
    return pts, brightness


def _er(cell: CellOutline, rng: np.random.Generator) -> PointsAndWeights:
    """ER: a network of curved tubules 50–100 nm wide with three-way junctions, plus sheets."""
    seeds = cell.random_points(max(8, int(cell.area_um2() / 1.2)), rng)
    vor = Voronoi(seeds)
    parts: list[np.ndarray] = []
    for ridge in vor.ridge_vertices:
        if -1 in ridge:
            continue
        a, b = vor.vertices[ridge[0]], vor.vertices[ridge[1]]
        if not cell.contains(np.stack([a, b])).all() or np.hypot(*(b - a)) > 4000:
            continue
        if rng.uniform() < 0.15:  # some tubules are missing: an open network
            continue
        radius = rng.uniform(25, 50)
        parts.append(sample_tube(_curved_edge(a, b, rng), 1.0, radius, rng))
    for centre in cell.random_points(int(rng.integers(2, 5)), rng):
        radius = rng.uniform(500, 1300)
        n = int(0.02 * np.pi * radius**2 / 10)
        parts.append(_filled_blob(centre, radius, n, rng, holes=int(rng.integers(0, 6))))
    pts = np.concatenate(parts) if parts else np.empty((0, 2))
    return pts, np.ones(len(pts))


def _microtubules(cell: CellOutline, rng: np.random.Generator) -> PointsAndWeights:
    """Microtubules: long worm-like chains, 25 nm tubes plus ~10 nm of label on each side."""
    n = max(4, int(cell.area_um2() / 7))
    parts = []
    for start in cell.random_points(n, rng):
        chain = worm_like_chain(start, rng.uniform(0, 2 * np.pi), rng.uniform(6000, 25000),
                                persistence_nm=rng.uniform(8000, 20000), rng=rng)
        parts.append(sample_tube(chain, 1.0, 12.5 + 10.0, rng, hollow=True))
    pts = np.concatenate(parts)
    return pts, np.ones(len(pts))


def _factin(cell: CellOutline, rng: np.random.Generator) -> PointsAndWeights:
    """F-actin: a few bright stress-fibre bundles plus a dense mesh of short filaments."""
    parts, weights = [], []
    main_angle = rng.uniform(0, np.pi)
    for start in cell.random_points(int(rng.integers(3, 9)), rng):
        angle = main_angle + rng.normal(0, 0.15)
        back = start - 15000 * np.array([np.sin(angle), np.cos(angle)])
        chain = worm_like_chain(back, angle, 30000, persistence_nm=60000, rng=rng)
        fibre = sample_tube(chain, 4.0, rng.uniform(50, 120), rng, hollow=False)
        parts.append(fibre)
        weights.append(np.ones(len(fibre)))
    n_mesh = int(3.0 * cell.area_um2())
    for start in cell.random_points(n_mesh, rng):
        chain = worm_like_chain(start, rng.uniform(0, 2 * np.pi), rng.uniform(300, 1500),
                                persistence_nm=2000, rng=rng, step_nm=5.0)
        filament = sample_tube(chain, 0.6, 8.0, rng, hollow=True)
        parts.append(filament)
        weights.append(np.ones(len(filament)))
    return np.concatenate(parts), np.concatenate(weights)


_GENERATORS: dict[str, Callable[[CellOutline, np.random.Generator], PointsAndWeights]] = {
    "ccp": _ccp, "er": _er, "microtubules": _microtubules, "factin": _factin,
}
