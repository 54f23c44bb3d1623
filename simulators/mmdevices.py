"""Micro-Manager Python devices of the simulated SIM microscope (UniMMCore ``#py pyDevice``).

``SimCamera`` (sCMOS), ``SimLaser`` (one per line: emission shutter + power), ``SimAOTF``
(blanking shutter + sequenceable per-line intensity), ``SimPattern`` (sequenceable SIM
orientation × phase state) and ``SimSample`` (the specimen, and how it bleaches). They share a
:class:`~simulators.optical_bench.Bench` named by their pre-init ``Bench`` property.

While the sample bleaches, every camera frame reports ``LiveSR-BleachedFraction-<line>`` in its
metadata: the fraction of that line's fluorophores bleached by the end of the frame.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from pymmcore_plus.experimental.unicore import (
    CameraDevice,
    GenericDevice,
    ShutterDevice,
    pymm_property,
)

from .bleaching import Bleaching
from .camera import CameraModel, FastNoise, PixelMaps
from .illumination import default_patterns
from .optical_bench import LINES, WF_PATTERN, Bench, Light, SequencedValue, attach, detach
from .optics import Optics
from .render import MAX_SIZE, MIN_SIZE, check_size
from .samples import STRUCTURES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from numpy.typing import DTypeLike

SEQUENCE_MAX_LENGTH = 1024
PATTERN_STATES = (WF_PATTERN, *(str(i) for i in range(25)))
#: camera metadata key of the fraction bleached on a line (``.format(line=488)``)
BLEACHED_KEY = "LiveSR-BleachedFraction-{line}"


class _OnBench:
    """Mixin: a pre-init ``Bench`` property and attachment to that bench on initialize."""

    _bench_name: str = "demo"
    bench: Bench

    def _init_bench(self) -> None:
        self.bench = Bench("unattached")  # placeholder until initialize()
        self._attached = False

    @pymm_property(is_pre_init=True, name="Bench")
    def bench_name(self) -> str:
        """Name of the shared simulated bench (devices of one microscope share one)."""
        return self._bench_name

    @bench_name.setter
    def bench_name(self, value: str) -> None:
        if self._attached:
            raise ValueError("Bench is a pre-init property: set it before initialization")
        self._bench_name = str(value)

    def initialize(self) -> None:
        self.bench = attach(self._bench_name)
        self._attached = True

    def shutdown(self) -> None:
        if self._attached:
            detach(self.bench)
            self._attached = False


class SimCamera(_OnBench, CameraDevice):
    """Simulated sCMOS camera: renders what the bench's light and sample produce, with noise."""

    def __init__(self) -> None:
        super().__init__()
        self._init_bench()
        self._exposure_ms = 10.0
        self._sensor = 512
        self._roi: tuple[int, int, int, int] | None = None
        self._noise = "fast"
        self._seed = 0
        self._model = CameraModel()
        self._maps: PixelMaps | None = None
        self._fast: FastNoise | None = None
        self._rng = np.random.default_rng(0)
        self._acquiring_in: threading.Thread | None = None  # the thread producing frames

    # -- life cycle
    def initialize(self) -> None:
        """Attach to the bench, set its sensor size, draw the noise maps, start rendering."""
        super().initialize()
        self.bench.sensor_size = self._sensor
        self._rebuild_noise(reseed=True)
        self.bench.prepare()

    @property
    def acquiring(self) -> bool:
        """Whether another thread is producing frames now.

        The core's acquisition thread stops iterating after the last frame without closing the
        generator, so the thread is asked.
        """
        thread = self._acquiring_in
        return thread is not None and thread.is_alive() and thread is not threading.current_thread()

    def _refuse_while_acquiring(self, what: str) -> None:
        if self.acquiring:
            raise RuntimeError(f"camera busy acquiring: stop the sequence before changing {what}")

    # -- required camera API
    def get_exposure(self) -> float:
        """Return the exposure time in ms."""
        return self._exposure_ms

    def set_exposure(self, exposure: float) -> None:
        """Set the exposure time in ms, within (0, 10000]."""
        if not 0 < float(exposure) <= 10_000:
            raise ValueError(f"exposure must be in (0, 10000] ms, got {exposure}")
        self._exposure_ms = float(exposure)

    def shape(self) -> tuple[int, int]:
        """Return the frame shape ``(height, width)`` of the current ROI."""
        _, _, w, h = self.get_roi()
        return (h, w)

    def dtype(self) -> DTypeLike:
        """Return the pixel type, ``uint16``."""
        return np.uint16

    def get_roi(self) -> tuple[int, int, int, int]:
        """Return the ROI ``(x, y, width, height)``; the whole sensor without one."""
        return self._roi or (0, 0, self._sensor, self._sensor)

    def set_roi(self, x: int, y: int, width: int, height: int) -> None:
        """Set the ROI in sensor pixels and redraw the noise maps for it (not while acquiring)."""
        self._refuse_while_acquiring("the ROI")
        if x < 0 or y < 0 or width <= 0 or height <= 0 or x + width > self._sensor \
                or y + height > self._sensor:
            raise ValueError(f"ROI ({x}, {y}, {width}, {height}) does not fit the "
                             f"{self._sensor}×{self._sensor} sensor")
        self._roi = (int(x), int(y), int(width), int(height))
        self._rebuild_noise()

    def clear_roi(self) -> None:
        """Use the whole sensor again (not while acquiring)."""
        self._refuse_while_acquiring("the ROI")
        self._roi = None
        self._rebuild_noise()

    def start_sequence(
        self, n: int | None, get_buffer: Callable[[Sequence[int], DTypeLike], np.ndarray]
    ) -> Iterator[Mapping]:
        """Yield frames as the bench lights them, each with its metadata.

        Frame ``i`` uses element ``i`` of running property sequences. One exposure per sequence,
        honoured: frame ``i`` is read out no earlier than one exposure after the previous one
        (and never in a burst after a stall).
        """
        self._refuse_while_acquiring("acquisition (a snap or sequence is already running)")
        self._acquiring_in = threading.current_thread()
        try:
            shape, roi = self.shape(), self.get_roi()
            exposure_ms = self._exposure_ms
            dark = np.zeros(shape, np.float32)
            for line in self.bench.lines_in_use():  # no frame may wait for a scene mid-sequence
                self.bench.scene(line)
            readout = time.perf_counter()
            i = 0
            while n is None or i < n:
                buf = get_buffer(shape, np.uint16)
                state = self.bench.frame_state(i)
                light = self.bench.frame_light(exposure_ms, i, expose=True)
                bleached = self.bench.bleached_fractions()
                self._expose(light, state, roi, dark, buf)
                readout = max(readout, time.perf_counter() - exposure_ms / 1000.0) \
                    + exposure_ms / 1000.0
                if (wait := readout - time.perf_counter()) > 0:
                    time.sleep(wait)  # the exposure itself
                yield {
                    "LiveSR-Pattern": state,
                    "LiveSR-Lines": ",".join(str(lit.line) for lit in light) or "none",
                    "LiveSR-SequenceIndex": str(i),
                    **{BLEACHED_KEY.format(line=line): f"{fraction:.6g}"
                       for line, fraction in bleached.items()},
                }
                i += 1
        finally:
            self._acquiring_in = None

    def _expose(self, light: Light, state: str, roi: tuple[int, int, int, int],
                dark: np.ndarray, out: np.ndarray) -> None:
        def photons() -> np.ndarray:
            expected = self.bench.expected_photons(light, state, roi)
            return dark if expected is None else expected

        if self._noise == "fast" and self._fast is not None:
            self._fast.expose_key(self.bench.frame_key(light, state, roi), photons, out=out)
        elif self._maps is not None:
            self._maps.expose(photons(), self._rng, out=out)

    def _rebuild_noise(self, reseed: bool = False) -> None:
        """Draw new pixel maps for the current ROI and model.

        The noise stream restarts only when ``reseed`` (a new Seed), so other changes do not
        repeat earlier frames' noise.
        """
        x, y, w, h = self.get_roi()
        full = self._model.pixel_maps((self._sensor, self._sensor))
        self._maps = full.crop(y, x, h, w)
        if reseed:
            self._rng = np.random.default_rng(self._seed)
        self._fast = FastNoise(self._maps, self._rng) if self._noise == "fast" else None

    def _set_model(self, **changes: Any) -> None:
        self._refuse_while_acquiring("the camera model")
        self._model = self._model.model_copy(update=changes)
        if self._attached:
            self._rebuild_noise()

    # -- properties
    @pymm_property(is_pre_init=True, limits=(MIN_SIZE, MAX_SIZE), name="SensorSize")
    def sensor_size(self) -> int:
        """Width = height of the sensor in pixels (even)."""
        return self._sensor

    @sensor_size.setter
    def sensor_size(self, value: int) -> None:
        if self._attached:
            raise ValueError("SensorSize is a pre-init property: set it before initialization")
        self._sensor = check_size(int(value))

    @pymm_property(allowed_values=("fast", "exact"), name="Noise")
    def noise(self) -> str:
        """``exact``: Poisson shot noise; ``fast``: its Gaussian approximation (real-time)."""
        return self._noise

    @noise.setter
    def noise(self, value: str) -> None:
        self._refuse_while_acquiring("Noise")
        self._noise = str(value)
        if self._attached:
            self._rebuild_noise()

    @pymm_property(limits=(0, 2**31 - 1), name="Seed")
    def seed(self) -> int:
        """Seed of the camera noise (restarts the noise stream when set)."""
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._refuse_while_acquiring("Seed")
        self._seed = int(value)
        if self._attached:
            self._rebuild_noise(reseed=True)

    @pymm_property(limits=(0.01, 100.0), name="Gain-ADU/e")
    def gain(self) -> float:
        """Camera gain in ADU per photo-electron."""
        return self._model.gain

    @gain.setter
    def gain(self, value: float) -> None:
        self._set_model(gain=float(value))

    @pymm_property(limits=(0.0, 10_000.0), name="Offset-ADU")
    def offset(self) -> float:
        """Mean dark level in ADU."""
        return self._model.offset

    @offset.setter
    def offset(self, value: float) -> None:
        self._set_model(offset=float(value))

    @pymm_property(limits=(0.0, 100.0), name="ReadNoise-e")
    def read_noise(self) -> float:
        """Median read noise in e⁻ rms."""
        return self._model.read_noise_e

    @read_noise.setter
    def read_noise(self, value: float) -> None:
        self._set_model(read_noise_e=float(value))

    @pymm_property(limits=(0.01, 1.0), name="QE")
    def qe(self) -> float:
        """Quantum efficiency."""
        return self._model.qe

    @qe.setter
    def qe(self, value: float) -> None:
        self._set_model(qe=float(value))


class SimLaser(_OnBench, ShutterDevice):
    """A laser line: emission on/off (the shutter) and output power in mW."""

    def __init__(self) -> None:
        super().__init__()
        self._init_bench()
        self._line = 488
        self._max_mw = 100.0

    def initialize(self) -> None:
        """Attach to the bench; limit ``PowerSetpoint-mW`` to the laser's maximum power."""
        super().initialize()
        self.set_property_limits("PowerSetpoint-mW", (0.0, self._max_mw))

    def shutdown(self) -> None:
        """Switch the emission off and detach from the bench."""
        self.bench.emission_on[self._line] = False
        super().shutdown()

    def get_open(self) -> bool:
        """Return whether the laser emits."""
        return self.bench.emission_on[self._line]

    def set_open(self, open: bool) -> None:
        """Switch the emission on or off."""
        self.bench.emission_on[self._line] = bool(open)

    @pymm_property(is_pre_init=True, allowed_values=tuple(map(str, LINES)), name="Wavelength-nm")
    def wavelength(self) -> str:
        """Laser line (nm): 405, 488 or 560."""
        return str(self._line)

    @wavelength.setter
    def wavelength(self, value: str) -> None:
        self._line = int(value)

    @pymm_property(is_pre_init=True, limits=(0.1, 10_000.0), name="MaxPower-mW")
    def max_power(self) -> float:
        """Maximum output power in mW: the limit of the power setpoint."""
        return self._max_mw

    @max_power.setter
    def max_power(self, value: float) -> None:
        self._max_mw = float(value)

    @pymm_property(limits=(0.0, 10_000.0), name="PowerSetpoint-mW")
    def power(self) -> float:
        """Output power setpoint in mW."""
        return self.bench.power_mw[self._line]

    @power.setter
    def power(self, value: float) -> None:
        if float(value) > self._max_mw:
            raise ValueError(f"{value} mW exceeds this laser's maximum of {self._max_mw} mW")
        self.bench.power_mw[self._line] = float(value)

    @pymm_property(is_read_only=True, name="PowerReadback-mW")
    def power_readback(self) -> float:
        """Output power in mW: the setpoint while emitting, else 0."""
        return self.bench.power_mw[self._line] if self.get_open() else 0.0


def _aotf_intensity(line: int) -> Any:
    """Build the sequenceable ``Intensity-<line>`` property (percent transmission) of the AOTF."""

    def value(dev: SimAOTF) -> SequencedValue:
        return dev.bench.aotf_percent[line]

    def get(dev: SimAOTF) -> float:
        return float(value(dev).value)

    prop = pymm_property(limits=(0.0, 100.0), sequence_max_length=SEQUENCE_MAX_LENGTH,
                         name=f"Intensity-{line}", property_type=float)(get)

    @prop.setter
    def _set(dev: SimAOTF, v: float) -> None:
        value(dev).value = str(float(v))

    @prop.sequence_loader
    def _load(dev: SimAOTF, seq: Sequence[float]) -> None:
        value(dev).sequence = [str(float(v)) for v in seq]

    @prop.sequence_starter
    def _start(dev: SimAOTF) -> None:
        value(dev).running = True

    @prop.sequence_stopper
    def _stop(dev: SimAOTF) -> None:
        value(dev).running = False

    return prop


class SimAOTF(_OnBench, ShutterDevice):
    """AOTF: blanking (the shutter: open transmits) and per-line intensity in percent."""

    intensity_405 = _aotf_intensity(405)
    intensity_488 = _aotf_intensity(488)
    intensity_560 = _aotf_intensity(560)

    def __init__(self) -> None:
        super().__init__()
        self._init_bench()

    def shutdown(self) -> None:
        """Close (blank) the AOTF and detach from the bench."""
        self.bench.aotf_open = False
        super().shutdown()

    def get_open(self) -> bool:
        """Return whether the AOTF transmits."""
        return self.bench.aotf_open

    def set_open(self, open: bool) -> None:
        """Open (transmit) or close (blank) the AOTF."""
        self.bench.aotf_open = bool(open)


def _period(line: int) -> Any:
    """Build the read-only ``Period-nm-<line>`` property: the pattern period in the sample."""

    def get(dev: SimPattern) -> float:
        patterns = default_patterns(dev.bench.mode)
        frequency = patterns.frequency_fraction * Optics.for_line(line).cutoff_per_nm
        return round(1.0 / frequency, 3)

    return pymm_property(name=f"Period-nm-{line}", property_type=float)(get)


class SimPattern(_OnBench, GenericDevice):
    """SIM pattern generator: state ``WF`` (uniform) or an orientation × phase index."""

    def __init__(self) -> None:
        super().__init__()
        self._init_bench()

    def _check(self, state: str) -> str:
        state = str(state)
        if state != WF_PATTERN and int(state) >= self.bench.n_patterns:
            raise ValueError(f"pattern {state} does not exist in {self.bench.pattern_mode} mode "
                             f"(0…{self.bench.n_patterns - 1} or {WF_PATTERN})")
        return state

    @pymm_property(allowed_values=PATTERN_STATES, sequence_max_length=SEQUENCE_MAX_LENGTH,
                   name="Pattern")
    def pattern(self) -> str:
        """``WF`` or frame index = orientation · n_phases + phase."""
        return self.bench.pattern.value

    @pattern.setter
    def pattern(self, value: str) -> None:
        self.bench.pattern.value = self._check(value)

    @pattern.sequence_loader
    def load_pattern_sequence(self, seq: Sequence[str]) -> None:
        """Load a sequence of pattern states, each checked against the current mode."""
        self.bench.pattern.sequence = [self._check(v) for v in seq]

    @pattern.sequence_starter
    def start_pattern_sequence(self) -> None:
        """Start the loaded pattern sequence: frame ``i`` gets its element ``i``."""
        self.bench.pattern.running = True

    @pattern.sequence_stopper
    def stop_pattern_sequence(self) -> None:
        """Stop the pattern sequence: the static ``Pattern`` value applies again."""
        self.bench.pattern.running = False

    @pymm_property(allowed_values=("3x3", "5x5"), name="Mode")
    def mode(self) -> str:
        """``3x3``: linear SIM, 9 patterns; ``5x5``: nonlinear SIM, 25 patterns."""
        return self.bench.pattern_mode

    @mode.setter
    def mode(self, value: str) -> None:
        if self.bench.pattern.running:
            raise RuntimeError("stop the pattern sequence before changing Mode")
        self.bench.pattern_mode = str(value)
        self.bench.pattern.value = WF_PATTERN
        self.bench.pattern.sequence = []  # indices of the other mode mean other patterns
        self.bench.prepare()

    period_405 = _period(405)
    period_488 = _period(488)
    period_560 = _period(560)

    @pymm_property(name="Angle-deg")
    def angle_deg(self) -> float:
        """The first orientation's angle (degrees, wave vector from x toward y), read-only."""
        return round(float(np.degrees(default_patterns(self.bench.mode).base_angle_rad)), 4)

    @pymm_property(allowed_values=("TIRF", "GI"), name="Illumination")
    def illumination(self) -> str:
        """Angle of incidence: total internal reflection or grazing incidence."""
        return self.bench.illumination

    @illumination.setter
    def illumination(self, value: str) -> None:
        self.bench.illumination = str(value)
        self.bench.prepare()


def _structure(line: int) -> Any:
    """Build the ``Structure-<line>`` property: what the fluorophore excited by ``line`` labels."""

    def get(dev: SimSample) -> Any:
        return dev.bench.structures[line]

    prop = pymm_property(allowed_values=STRUCTURES, name=f"Structure-{line}",
                         property_type=str)(get)

    @prop.setter
    def _set(dev: SimSample, v: str) -> None:
        if dev.bench.structures[line] != str(v):
            dev.bench.reset_dose(line)  # another structure: fresh fluorophores
        dev.bench.structures[line] = str(v)
        dev.bench.prepare()

    return prop


def _bleach_parameter(structure: str, field: str, name: str, limits: tuple[float, float]) -> Any:
    """Build a ``<name>-<structure>`` property: one parameter of the structure's bleaching law."""

    def get(dev: SimSample) -> float:
        return float(getattr(dev.bench.bleaching[structure], field))

    prop = pymm_property(limits=limits, name=f"{name}-{structure}", property_type=float)(get)

    @prop.setter
    def _set(dev: SimSample, v: float) -> None:
        law = dev.bench.bleaching[structure]
        dev.bench.bleaching[structure] = Bleaching.model_validate(
            {**law.model_dump(), field: float(v)})

    return prop


def _bleach_law(structure: str) -> tuple[Any, Any, Any]:
    """Build the ``BleachRate``, ``BleachSlowRate`` and ``BleachSlowFraction`` of ``structure``."""
    return (_bleach_parameter(structure, "rate_per_mj", "BleachRate", (0.0, 100.0)),
            _bleach_parameter(structure, "slow_rate_per_mj", "BleachSlowRate", (0.0, 100.0)),
            _bleach_parameter(structure, "slow_fraction", "BleachSlowFraction", (0.0, 1.0)))


def _line_state(line: int) -> tuple[Any, Any]:
    """Build the read-only ``Dose-mJ-<line>`` and ``BleachedFraction-<line>`` properties."""

    def dose(dev: SimSample) -> float:
        return round(dev.bench.dose_mj[line], 9)

    def bleached(dev: SimSample) -> float:
        return round(1.0 - dev.bench.survival(line), 9)

    return (pymm_property(is_read_only=True, name=f"Dose-mJ-{line}", property_type=float)(dose),
            pymm_property(is_read_only=True, name=f"BleachedFraction-{line}",
                          property_type=float)(bleached))


class SimSample(_OnBench, GenericDevice):
    """The specimen: a BioSR structure per laser line, its seed, brightness and bleaching.

    ``Bleaching`` On makes each line's fluorophores fade with the dose the camera's frames
    give them (:mod:`simulators.bleaching`), by the law of the line's structure
    (``BleachRate-<structure>`` k₁ and ``BleachSlowRate-<structure>`` k₂ in 1/mJ,
    ``BleachSlowFraction-<structure>`` f). Setting ``Bleaching`` or ``Seed`` brings an
    unbleached sample, as does a new ``Structure-<line>`` on its line. ``Dose-mJ-<line>`` and
    ``BleachedFraction-<line>`` report each line's state. Setting ``Render`` to ``Now`` returns
    once every line's sample is rendered in the current settings (else the first frame waits
    for it).
    """

    structure_405 = _structure(405)
    structure_488 = _structure(488)
    structure_560 = _structure(560)
    bleach_rate_ccp, bleach_slow_rate_ccp, bleach_slow_fraction_ccp = _bleach_law("ccp")
    bleach_rate_er, bleach_slow_rate_er, bleach_slow_fraction_er = _bleach_law("er")
    bleach_rate_mt, bleach_slow_rate_mt, bleach_slow_fraction_mt = _bleach_law("microtubules")
    bleach_rate_fa, bleach_slow_rate_fa, bleach_slow_fraction_fa = _bleach_law("factin")
    dose_405, bleached_405 = _line_state(405)
    dose_488, bleached_488 = _line_state(488)
    dose_560, bleached_560 = _line_state(560)

    def __init__(self) -> None:
        super().__init__()
        self._init_bench()

    @pymm_property(allowed_values=("Idle", "Now"), name="Render")
    def render(self) -> str:
        """``Now`` (set): wait until the sample is rendered in the current settings."""
        return "Idle"

    @render.setter
    def render(self, value: str) -> None:
        if value == "Now":
            self.bench.wait_until_rendered()

    @pymm_property(limits=(0, 2**31 - 1), name="Seed")
    def seed(self) -> int:
        """Seed of the simulated specimen: the cell and its structures."""
        return self.bench.seed

    @seed.setter
    def seed(self, value: int) -> None:
        self.bench.seed = int(value)
        self.bench.reset_dose()
        self.bench.prepare()

    @pymm_property(allowed_values=("Off", "On"), name="Bleaching")
    def bleaching(self) -> str:
        """``On``: fluorophores fade with the dose received; setting it restarts unbleached."""
        return "On" if self.bench.bleaching_on else "Off"

    @bleaching.setter
    def bleaching(self, value: str) -> None:
        self.bench.bleaching_on = str(value) == "On"
        self.bench.reset_dose()

    @pymm_property(limits=(0.01, 100_000.0), name="Photons")
    def photons(self) -> float:
        """Average photon count per raw frame at 10 mW, AOTF 100 %, 10 ms exposure."""
        return self.bench.photons

    @photons.setter
    def photons(self, value: float) -> None:
        self.bench.photons = float(value)
