"""The simulated optical bench that the Micro-Manager Python devices share.

Micro-Manager devices cannot see each other, so the lasers, the AOTF, the SIM pattern device and
the sample register their state here, and the camera asks the bench what light reaches each
pixel of frame *i*. Devices find their bench by name (pre-init property ``Bench``), so two
microscopes in one process stay apart when their ``.cfg`` files name different benches.

Property sequences emulate TTL triggering: while a sequence runs, frame *i* of the camera
sequence uses element *i* (cyclically) of every loaded sequence.

With bleaching on (:mod:`.bleaching`), each exposed frame adds its dose to the lines it lights,
and every line's sample is seen at its current survival. Light between exposures is not
counted (the engine blanks the AOTF between frames).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .bleaching import DEFAULT_BLEACHING, REFERENCE_PHOTONS, Bleaching, excitation_dose_mj
from .illumination import Mode
from .optics import EMISSION_NM, Optics
from .render import NoiselessSet, render_set

if TYPE_CHECKING:
    from collections.abc import Hashable

    import numpy as np

LINES: tuple[int, ...] = tuple(EMISSION_NM)
# the dose at which the sample's ``Photons`` setting holds
REFERENCE_POWER_MW = 10.0
REFERENCE_EXPOSURE_MS = 10.0
WF_PATTERN = "WF"


@dataclass
class SequencedValue:
    """A device setting with an optional loaded/running property sequence (TTL emulation)."""

    value: str
    sequence: list[str] = field(default_factory=list)
    running: bool = False

    def at(self, frame: int | None) -> str:
        """Return the value in force at sequence frame ``frame`` (static outside sequences)."""
        if frame is not None and self.running and self.sequence:
            return self.sequence[frame % len(self.sequence)]
        return self.value


@dataclass
class Bench:
    """Everything that decides what the camera sees."""

    name: str
    emission_on: dict[int, bool] = field(default_factory=lambda: dict.fromkeys(LINES, False))
    power_mw: dict[int, float] = field(default_factory=lambda: dict.fromkeys(LINES, 0.0))
    aotf_open: bool = False
    aotf_percent: dict[int, SequencedValue] = field(
        default_factory=lambda: {line: SequencedValue("0") for line in LINES})
    pattern: SequencedValue = field(default_factory=lambda: SequencedValue(WF_PATTERN))
    pattern_mode: str = "3x3"  # or "5x5" (nonlinear SIM)
    illumination: str = "TIRF"  # or "GI"
    structures: dict[int, str] = field(
        default_factory=lambda: {405: "ccp", 488: "microtubules", 560: "er"})
    seed: int = 0
    photons: float = REFERENCE_PHOTONS  # average photon count at the reference dose
    #: whether the sample bleaches, each structure's law, and the dose each line has given (mJ)
    bleaching_on: bool = False
    bleaching: dict[str, Bleaching] = field(default_factory=lambda: dict(DEFAULT_BLEACHING.items()))
    dose_mj: dict[int, float] = field(default_factory=lambda: dict.fromkeys(LINES, 0.0))
    sensor_size: int = 512
    users: int = 0
    _render_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _render_thread: threading.Thread | None = field(default=None, repr=False)
    _render_requested: bool = field(default=False, repr=False)
    _render_error: BaseException | None = field(default=None, repr=False)

    @property
    def n_patterns(self) -> int:
        """Patterns per SIM set: 25 in ``5x5`` (nonlinear) mode, else 9."""
        return 25 if self.pattern_mode == "5x5" else 9

    @property
    def mode(self) -> Mode:
        """Simulator mode of the settings: ``nl-sim``, ``gi-sim`` or ``tirf-sim``."""
        if self.pattern_mode == "5x5":
            return "nl-sim"
        return "gi-sim" if self.illumination == "GI" else "tirf-sim"

    def scene_key(self, line: int) -> SceneKey:
        """Return the key of the line's scene in the current settings (see :data:`SceneKey`)."""
        return (line, self.mode, self.structures[line], self.seed, self.sensor_size)

    def scene(self, line: int) -> NoiselessSet:
        """Return the noiseless raw set of the line's sample in the current mode.

        Scenes are rendered only on the bench's render thread (never on a camera thread, which
        the interpreter may kill at exit); this waits until the scene is there.
        """
        return self.scene_with_key(line)[1]

    def scene_with_key(self, line: int) -> tuple[SceneKey, NoiselessSet]:
        """Return :meth:`scene` and the key it was rendered for.

        The key holds the settings at the moment the scene was found: a change while waiting is
        followed.
        """
        with _scene_ready:
            while (scene := _cached_scene(key := self.scene_key(line))) is None:
                if self._render_error is not None:
                    error, self._render_error = self._render_error, None
                    raise RuntimeError(f"the simulated sample could not be rendered: "
                                       f"{error!r}") from error
                if self.users <= 0:
                    raise RuntimeError(f"bench {self.name!r} was released: no devices attached")
                self.prepare()
                _scene_ready.wait(timeout=1.0)
        return key, scene

    def wait_until_rendered(self) -> None:
        """Block until every line's scene in the current settings is rendered."""
        for line in LINES:
            self.scene(line)

    def lines_in_use(self) -> list[int]:
        """Lines whose light can reach the sample now or in a loaded sequence."""
        lit = []
        for line in LINES:
            aotf = self.aotf_percent[line]
            values = [aotf.value, *(aotf.sequence if aotf.running else [])]
            if self.emission_on[line] and self.power_mw[line] > 0 and \
                    any(float(v) > 0 for v in values):
                lit.append(line)
        return lit

    def prepare(self) -> None:
        """Render every line's scene in the background, so the first frames need not wait.

        One render thread per bench picks up every request made while it runs. It is not a
        daemon: the interpreter must never kill it inside the FFT library at exit; it stops
        after the current scene once the bench is released.
        """
        with self._render_lock:
            self._render_requested = True
            if self._render_thread is None:
                self._render_thread = threading.Thread(
                    target=self._render_loop, name=f"bench-{self.name}-render")
                self._render_thread.start()

    def _render_loop(self) -> None:
        try:
            while True:
                with self._render_lock:
                    if not self._render_requested or self.users <= 0:
                        return
                    self._render_requested = False
                # lines in use first: a waiting camera needs them
                for line in sorted(LINES, key=lambda ln: ln not in self.lines_in_use()):
                    if self.users <= 0:
                        break
                    render_scene(self.scene_key(line))
        except Exception as exc:  # handed to whoever waits for a scene
            with _scene_ready:
                self._render_error = exc
                _scene_ready.notify_all()
        finally:
            with self._render_lock:
                self._render_thread = None

    def line_dose_mj(self, line: int, exposure_ms: float, frame: int | None) -> float:
        """Return the dose (mJ) ``line`` gives the sample in one frame (0 when blocked)."""
        if not (self.emission_on[line] and self.aotf_open):
            return 0.0
        aotf = float(self.aotf_percent[line].at(frame)) / 100.0
        return excitation_dose_mj(self.power_mw[line], aotf, exposure_ms)

    def bleaching_law(self, line: int) -> Bleaching | None:
        """Return the law of the line's structure; ``None`` while bleaching is off."""
        return self.bleaching[self.structures[line]] if self.bleaching_on else None

    def survival(self, line: int) -> float:
        """Return the fraction of the line's fluorophores still emitting."""
        law = self.bleaching_law(line)
        return 1.0 if law is None else law.survival(self.dose_mj[line])

    def reset_dose(self, line: int | None = None) -> None:
        """Start from an unbleached sample: on ``line``, or every line."""
        for ln in LINES if line is None else (line,):
            self.dose_mj[ln] = 0.0

    def line_scale(self, line: int, exposure_ms: float, frame: int | None) -> float:
        """Photon-level multiplier of ``line`` for one frame (0 when no light gets through)."""
        if not (self.emission_on[line] and self.aotf_open):
            return 0.0
        aotf = float(self.aotf_percent[line].at(frame)) / 100.0
        return (self.photons * aotf * self.power_mw[line] / REFERENCE_POWER_MW
                * exposure_ms / REFERENCE_EXPOSURE_MS)

    def frame_state(self, frame: int | None) -> str:
        """Pattern state in force for a frame: ``WF`` or an index into the raw set."""
        return self.pattern.at(frame)

    def frame_light(self, exposure_ms: float, frame: int | None, expose: bool = False) -> Light:
        """Return every line whose light reaches the sample in ``frame``.

        Each comes with its photon-level multiplier and the scene it lights (taken together, so
        a frame never mixes settings). While bleaching is on, the multiplier holds the mean
        survival during the exposure, and ``expose`` adds the frame's dose to each line it
        lights (the camera's frames do; a look does not).
        """
        lit = []
        for line in LINES:
            if (scale := self.line_scale(line, exposure_ms, frame)) > 0:
                if (law := self.bleaching_law(line)) is not None:
                    step = self.line_dose_mj(line, exposure_ms, frame)
                    scale *= law.mean_survival(self.dose_mj[line], step)
                    if expose:
                        self.dose_mj[line] += step
                key, scene = self.scene_with_key(line)
                lit.append(LineLight(line, scale, key, scene))
        return tuple(lit)

    def bleached_fractions(self) -> dict[int, float]:
        """Per line, the fraction of its fluorophores bleached so far (empty when off)."""
        if not self.bleaching_on:
            return {}
        return {line: 1.0 - self.survival(line) for line in LINES}

    def frame_key(self, light: Light, state: str, roi: tuple[int, int, int, int]) -> Hashable:
        """Return what decides a frame's expected photons: equal keys, equal images."""
        if not light:
            return "dark", roi
        return state, roi, tuple((lit.line, lit.scale, lit.scene_key) for lit in light)

    def expected_photons(self, light: Light, state: str,
                         roi: tuple[int, int, int, int]) -> np.ndarray | None:
        """Return the expected photons per pixel in the ROI (x, y, w, h); ``None`` in the dark.

        The light is ``light`` (taken once per frame with :meth:`frame_light`), the pattern
        ``state`` (:meth:`frame_state`).
        """
        x, y, w, h = roi
        total: np.ndarray | None = None
        for lit in light:
            frames = lit.scene.raw_photons
            if state == WF_PATTERN:
                img = lit.scene.wf_photons
            elif int(state) < len(frames):
                img = frames[int(state)]
            else:
                raise ValueError(f"pattern {state} does not exist in the {len(frames)}-pattern "
                                 f"{lit.scene_key[1]} scene")
            part = img[y:y + h, x:x + w] * lit.scale
            total = part if total is None else total + part
        return total


SceneKey = tuple[int, Mode, str, int, int]  # line, mode, structure, seed, sensor size


class LineLight(NamedTuple):
    """One line's light in one frame."""

    line: int
    scale: float  # photon-level multiplier
    scene_key: SceneKey
    scene: NoiselessSet


Light = tuple[LineLight, ...]
_scene_cache: OrderedDict[SceneKey, NoiselessSet] = OrderedDict()
_scene_ready = threading.Condition()
SCENE_CACHE_SIZE = 12


def _cached_scene(key: SceneKey) -> NoiselessSet | None:
    with _scene_ready:
        scene = _scene_cache.get(key)
        if scene is not None:
            _scene_cache.move_to_end(key)
        return scene


def render_scene(key: SceneKey) -> NoiselessSet:
    """Render (or fetch from the process-wide cache) the scene of ``key``."""
    if (scene := _cached_scene(key)) is not None:
        return scene
    line, mode, structure, seed, size = key
    # one cell for every line, each line's structure drawn from its own seed
    scene = render_set(structure, mode, size, seed=seed * 1000 + line,
                       optics=Optics.for_line(line), cell_seed=seed)
    with _scene_ready:
        _scene_cache[key] = scene
        while len(_scene_cache) > SCENE_CACHE_SIZE:
            _scene_cache.popitem(last=False)
        _scene_ready.notify_all()
    return scene


_benches: dict[str, Bench] = {}
_registry_lock = threading.Lock()


def get_bench(name: str) -> Bench | None:
    """Return the bench called ``name`` if devices are attached to it."""
    with _registry_lock:
        return _benches.get(name)


def attach(name: str) -> Bench:
    """Attach to the bench called ``name``, created on first use; pair with :func:`detach`."""
    with _registry_lock:
        bench = _benches.setdefault(name, Bench(name))
        bench.users += 1
        return bench


def detach(bench: Bench) -> None:
    """Release a bench; the last device to leave discards it (a fresh microscope next time)."""
    with _registry_lock:
        bench.users -= 1
        if bench.users <= 0:
            _benches.pop(bench.name, None)
