"""The acquisition protocol: a YAML file validated into a frozen pydantic model.

    microscope: {config: demo, roi: 256}
    mode: tirf-sim                      # gi-sim, nl-sim, wf
    channels:
      - {preset: "488", power_mw: 20, exposure_ms: 10,
         reconstruction: {method: dfcan, weights: weights/dfcan_sim.safetensors,
                          normalisation: anchored}}   # per-set (default) or anchored
    timelapse: {count: 10, interval_s: 1.0}
    save: {wf: true, sr: every, format: ome-tiff}
    output: runs/cells-01
    inference: {backend: auto}

Relative paths are taken from the protocol file's folder. Every error, the file's own and those
found by the checks that need no device (channel presets and laser limits of the role settings,
weights files and their channel count, the reconstruction method's availability), is reported
as ``FILE:LINE:COL: field: message``, all at once, before any device is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from hardware.settings import MicroscopeSettings, load_settings
from yamlconfig.located import (
    ConfigError,
    FieldError,
    YamlSource,
    parse_yaml,
    read_text,
    validate_source,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import useq

__all__ = [
    "MODES",
    "ChannelSpec",
    "DoseSpec",
    "Estimate",
    "MicroscopeSpec",
    "Protocol",
    "Reconstruction",
    "TrustSpec",
    "load_protocol",
]

Mode = Literal["tirf-sim", "gi-sim", "nl-sim", "wf"]
MODES: tuple[str, ...] = ("tirf-sim", "gi-sim", "nl-sim", "wf")
#: raw frames per set of each mode
FRAMES_PER_SET = {"tirf-sim": 9, "gi-sim": 9, "nl-sim": 25, "wf": 1}


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MicroscopeSpec(_Spec):
    """Which microscope: a Micro-Manager ``.cfg`` (or ``demo``) and the roles of its devices."""

    config: str = Field("demo", min_length=1, description="a .cfg path, or demo")
    settings: Path | None = Field(None, description="roles settings YAML (none: demo defaults)")
    backend: Literal["pymmcore-plus", "pycromanager"] = "pymmcore-plus"
    roi: int | None = Field(None, gt=0, le=8192, description="centred square camera ROI, px")


class TrustSpec(_Spec):
    """A DFCAN channel's trust signal per SR set, and what to show below its threshold."""

    signal: Literal["combined", "agreement", "agreement-high", "dose", "spectrum"] = Field(
        "combined", description="combined: atanh(agreement) + 0.5 spectrum (ranked held-out "
        "sets by DFCAN NRMSE best); agreement: correlation with Wiener-SIM of the same set in "
        "the band both support (-1…1); agreement-high: the same beyond the wide-field cutoff; "
        "dose: 1 - the evaluation matrix's DFCAN NRMSE at the set's photon count; spectrum: "
        "log10 of the input's signal over its noise floor")
    threshold: float | None = Field(
        None, ge=-1000, le=1000, description="sets whose trust is below it are low (none: "
        "trust is only measured and recorded)")
    fallback: Literal["none", "wiener-sim", "wf"] = Field(
        "none", description="what low sets are shown and saved as: none (the SR image, "
        "flagged), wiener-sim (its Wiener-SIM reconstruction) or wf (the upsampled wide field)")

    @model_validator(mode="after")
    def _fallback_needs_threshold(self) -> TrustSpec:
        if self.fallback != "none" and self.threshold is None:
            raise FieldError("fallback", f"fallback {self.fallback} needs a threshold")
        return self


class Reconstruction(_Spec):
    """How a channel's sets become SR images."""

    method: Literal["dfcan", "wiener-sim", "none"] = "none"
    weights: Path | None = Field(None, description="DFCAN weights (.safetensors or .h5)")
    calibration: Path | None = Field(
        None, description="wiener-sim: a pattern calibration (livesr calibrate) whose carriers "
        "are used; only phases and modulation are estimated")
    normalisation: Literal["per-set", "anchored"] = Field(
        "per-set", description="dfcan: per-set: each set's input and output scaled to its own "
        "range (the official predict: every SR image spans [0, 1]); anchored: both scalings "
        "fixed by the first anchor_sets sets and kept for the run, so SR intensity follows the "
        "sample's brightness (bleaching stays visible); the input's zero is the camera's "
        "offset when the settings hold a calibration; brighter than the anchors plus the "
        "headroom is clipped")
    anchor_sets: int = Field(3, ge=1, le=1000, description="anchored: the first sets "
                             "reconstructed whose ranges fix the scalings")
    anchor_headroom: float = Field(0.1, ge=0, le=10, description="anchored: room above the "
                                   "anchor sets' maximum before clipping (0.1: 10 %)")
    trust: TrustSpec | None = Field(
        None, description="dfcan: measure a trust signal per SR set (run.json, the SR JSON "
        "lines, the GUI) and optionally fall back below a threshold")

    @model_validator(mode="after")
    def _weights_for_dfcan(self) -> Reconstruction:
        if self.method == "dfcan" and self.weights is None:
            raise FieldError("weights", "method dfcan needs a weights file")
        if self.method != "dfcan" and self.weights is not None:
            raise FieldError("weights", f"method {self.method} takes no weights file")
        if self.method != "wiener-sim" and self.calibration is not None:
            raise FieldError("calibration", f"method {self.method} takes no pattern calibration")
        if self.normalisation == "anchored" and self.method != "dfcan":
            raise FieldError("normalisation", f"anchored is for method dfcan, not {self.method}")
        if self.trust is not None and self.method != "dfcan":
            raise FieldError("trust", f"the trust signal judges DFCAN output, not {self.method}")
        for key in ("anchor_sets", "anchor_headroom"):
            if key in self.model_fields_set and self.normalisation != "anchored":
                raise FieldError(key, "applies to normalisation: anchored only")
        return self


class DoseSpec(_Spec):
    """How a channel's excitation changes over a run: fixed, or adapted set by set to trust."""

    mode: Literal["fixed", "adaptive"] = Field(
        "fixed", description="fixed: power_mw throughout; adaptive: from power_mw, lowered by "
        "step_down after a set whose trust is at or above the threshold (plus margin), raised "
        "by step_up after one below it")
    min_power_mw: float = Field(0.1, gt=0, description="adaptive: the lowest power, mW")
    max_power_mw: float | None = Field(
        None, gt=0, description="adaptive: the highest power, mW (none: the laser's maximum)")
    step_down: float = Field(0.8, gt=0, lt=1, description="adaptive: factor after a trusted set")
    step_up: float = Field(1.25, gt=1, le=4, description="adaptive: factor after a low set")
    margin: float = Field(0.0, ge=0, description="adaptive: trust above the threshold needed "
                                                  "before the power is lowered")

    @model_validator(mode="after")
    def _bounds(self) -> DoseSpec:
        if self.max_power_mw is not None and self.max_power_mw < self.min_power_mw:
            raise FieldError("max_power_mw", f"{self.max_power_mw} mW is below min_power_mw "
                                             f"({self.min_power_mw} mW)")
        return self


class ChannelSpec(_Spec):
    """One channel: a preset of the settings' channel group, its laser power and exposure."""

    preset: str = Field(min_length=1, description="channel preset name, e.g. 488")
    power_mw: float = Field(ge=0, description="laser power, mW")
    exposure_ms: float = Field(gt=0, le=10_000, description="exposure per raw frame, ms")
    reconstruction: Reconstruction = Field(default_factory=Reconstruction)
    structure: Literal["ccp", "er", "microtubules", "factin"] | None = Field(
        None, description="what the sample shows: the dose advisor's row of the evaluation "
                          "matrix")
    dose: DoseSpec = Field(default_factory=DoseSpec)

    @model_validator(mode="after")
    def _adaptive_needs_a_threshold(self) -> ChannelSpec:
        if self.dose.mode == "adaptive":
            trust = self.reconstruction.trust
            if trust is None or trust.threshold is None:
                raise FieldError("dose", "adaptive dose follows the trust signal: the "
                                 "channel's reconstruction needs trust: {threshold: …}")
            if self.power_mw < self.dose.min_power_mw:
                raise FieldError("power_mw", f"{self.power_mw} mW is below the adaptive "
                                 f"dose's min_power_mw ({self.dose.min_power_mw} mW)")
        return self


class TimeLapse(_Spec):
    count: int = Field(1, ge=1, le=10_000_000, description="time points")
    interval_s: float = Field(0.0, ge=0, description="time between time-point starts, s")


class Position(_Spec):
    x: float
    y: float
    z: float | None = None
    name: str | None = None


class SaveSpec(_Spec):
    """What to save besides every raw frame."""

    wf: bool = Field(True, description="the wide-field image (mean) of every SIM set")
    sr: Literal["every", "displayed", "none"] = Field(
        "every", description="SR of every set, of the sets shown live only, or none")
    format: Literal["auto", "ome-tiff", "ome-zarr"] = Field(
        "auto", description="auto: OME-TIFF for runs up to 2 GB (one file Fiji opens), "
        "OME-Zarr beyond (long runs: one chunk per set, each written atomically)")
    compression: Literal["lz4", "zstd", "none"] = Field(
        "lz4", description="OME-Zarr chunks: lossless Blosc (byte shuffle), lz4 fast, zstd "
        "smaller; OME-TIFF is written uncompressed (in place)")


class InferenceSpec(_Spec):
    backend: Literal["auto", "tensorrt", "torch", "onnxruntime"] = "auto"
    device: str | None = Field(None, description="cpu, cuda, cuda:1 … (none: the backend's)")


class Protocol(_Spec):
    """A whole acquisition: microscope, mode, channels, time-lapse, positions, saving."""

    microscope: MicroscopeSpec = Field(default_factory=MicroscopeSpec)
    mode: Mode = "tirf-sim"
    channels: list[ChannelSpec] = Field(min_length=1)
    timelapse: TimeLapse = Field(default_factory=TimeLapse)
    positions: list[Position] = Field(default_factory=list)
    save: SaveSpec = Field(default_factory=SaveSpec)
    output: Path = Field(Path("livesr-output/run"), description="output folder")
    inference: InferenceSpec = Field(default_factory=InferenceSpec)

    _source: YamlSource | None = PrivateAttr(default=None)
    _base: Path = PrivateAttr(default_factory=Path.cwd)
    _text: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_channels(self) -> Protocol:
        presets = [c.preset for c in self.channels]
        if len(set(presets)) != len(presets):
            raise FieldError("channels", f"a channel preset appears twice: {presets}")
        return self

    @model_validator(mode="after")
    def _adaptive_needs_an_interval(self) -> Protocol:
        adaptive = [c.preset for c in self.channels if c.dose.mode == "adaptive"]
        if adaptive and not self.timelapse.interval_s > 0:
            raise FieldError("timelapse", f"adaptive dose ({', '.join(adaptive)}) changes the "
                             "power between time points: it needs interval_s > 0 (at 0 the "
                             "time-lapse streams as one hardware sequence)")
        return self

    # -- derived
    @property
    def frames_per_set(self) -> int:
        """Raw frames per set of the mode (9, 25 for nl-sim, 1 for wf)."""
        return FRAMES_PER_SET[self.mode]

    @property
    def n_positions(self) -> int:
        """Stage positions visited (1 when none are listed)."""
        return max(1, len(self.positions))

    @property
    def n_sets(self) -> int:
        """Raw sets of the whole run: time points × channels × positions."""
        return self.timelapse.count * len(self.channels) * self.n_positions

    @property
    def n_frames(self) -> int:
        """Raw frames of the whole run."""
        return self.n_sets * self.frames_per_set

    @property
    def base_dir(self) -> Path:
        """The folder relative paths are taken from (the protocol file's)."""
        return self._base

    def source_text(self) -> str:
        """Return the protocol as written (its YAML file's text, else a YAML dump of the model)."""
        if self._text is not None:
            return self._text
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def edited(self, update: dict[str, Any]) -> Protocol:
        """Return a copy with ``update`` applied; its :meth:`source_text` is then the copy's."""
        changed = self.model_copy(update=update)
        changed._text = None  # noqa: SLF001 - a copy of this class
        return changed

    def resolve(self, path: Path) -> Path:
        """``path`` taken relative to the protocol file's folder."""
        return path if path.is_absolute() else (self._base / path)

    def located(self, loc: tuple[str | int, ...], message: str) -> str:
        """``message`` located at ``loc`` in the protocol file (or named ``protocol``)."""
        if self._source is not None:
            return self._source.error(loc, message)
        return f"protocol: {'.'.join(map(str, loc))}: {message}"

    def config_path(self) -> str:
        """Return the microscope's ``.cfg`` path, resolved (``demo`` as is)."""
        cfg = self.microscope.config
        return cfg if cfg == "demo" else str(self.resolve(Path(cfg)))

    def settings_path(self) -> Path | None:
        """Return the role settings file, resolved (``None``: the demo defaults)."""
        s = self.microscope.settings
        return None if s is None else self.resolve(s)

    def output_dir(self) -> Path:
        """Return the output folder, resolved."""
        return self.resolve(self.output)

    def to_sequence(self) -> useq.MDASequence:
        """Build the useq sequence the protocol describes.

        That is its time-lapse, each channel preset at its exposure, its stage positions (laser
        powers are not part of it).
        """
        import useq

        return useq.MDASequence(
            time_plan=useq.TIntervalLoops(interval=self.timelapse.interval_s,
                                          loops=self.timelapse.count),
            channels=tuple(useq.Channel(config=c.preset, exposure=c.exposure_ms)
                           for c in self.channels),
            stage_positions=tuple(useq.Position(x=p.x, y=p.y, z=p.z, name=p.name)
                                  for p in self.positions))


def load_protocol(path: str | Path, *, check: bool = True) -> Protocol:
    """Read and validate a protocol file.

    ``check`` adds the device-free checks (presets, powers, weights, methods). Raises
    :class:`ConfigError` with every located error.
    """
    path = Path(path)
    return protocol_from_text(read_text(path), str(path), base=path.resolve().parent, check=check)


def protocol_from_text(text: str, name: str = "<protocol>", base: Path | None = None,
                       check: bool = True) -> Protocol:
    """Read a protocol from YAML text (``name`` in messages; ``base`` for relative paths)."""
    source = parse_yaml(text, name)
    try:
        protocol = validate_source(Protocol, source)
    except ConfigError as exc:
        # the channels that are well-formed still get their preset and power checked
        raise ConfigError(exc.messages + _raw_channel_checks(source, base or Path.cwd())) \
            from None
    # the model's own private state, set by its factory in the same module
    protocol._source = source  # noqa: SLF001
    protocol._base = base or Path.cwd()  # noqa: SLF001
    protocol._text = text  # noqa: SLF001
    if check:
        problems = check_protocol(protocol)
        if problems:
            raise ConfigError(problems)
    return protocol


def check_protocol(protocol: Protocol,
                   settings: MicroscopeSettings | None = None) -> list[str]:
    """Return the located problems found without any device.

    The checks cover role settings, presets, powers, weights and reconstruction methods.
    ``settings``: those of an open microscope the protocol is to run on (a GUI's), instead of
    the protocol's own settings file.
    """
    problems: list[str] = []
    settings_path = protocol.settings_path()
    if settings is None:
        try:
            settings = load_settings(settings_path)
        except ConfigError as exc:
            problems.extend(exc.messages)
        except OSError as exc:
            problems.append(protocol.located(
                ("microscope", "settings"), f"cannot read {settings_path}: {exc.strerror or exc}"))
    cfg = protocol.microscope.config
    if cfg != "demo" and not Path(protocol.config_path()).is_file():
        problems.append(protocol.located(("microscope", "config"),
                                         f"no such file: {protocol.config_path()}"))
    if settings is not None:
        problems += _check_channels(protocol, settings)
    if protocol.positions and protocol.microscope.backend != "pymmcore-plus":
        problems.append(protocol.located(("positions",), "positions need pymmcore-plus"))
    if protocol.mode != "wf" and protocol.microscope.backend != "pymmcore-plus":
        problems.append(protocol.located(("microscope", "backend"),
                                         "the SIM engine runs on pymmcore-plus"))
    for i, channel in enumerate(protocol.channels):
        problems += _check_reconstruction(protocol, i, channel.reconstruction)
    return problems


def _channel_problems(located: Callable[[tuple[str | int, ...], str], str], i: int,
                      channel: ChannelSpec, settings: MicroscopeSettings) -> list[str]:
    lines = settings.channels.lines
    if channel.preset not in lines:
        return [located(("channels", i, "preset"),
                        f"{channel.preset!r} is not a channel preset of the microscope settings "
                        f"(presets: {', '.join(sorted(lines))})")]
    try:
        laser = settings.laser(lines[channel.preset])
    except KeyError as exc:
        return [located(("channels", i, "preset"), str(exc.args[0]))]
    if channel.power_mw > laser.max_power_mw:
        return [located(("channels", i, "power_mw"),
                        f"{channel.power_mw} mW is above the {laser.wavelength_nm} nm laser's "
                        f"limit of {laser.max_power_mw} mW")]
    return []


def _raw_channel_checks(source: YamlSource, base: Path) -> list[str]:
    """Check the preset and power of the well-formed channels of an invalid protocol.

    The protocol failed validation elsewhere; one pass then reports these problems too.
    """
    data = source.data if isinstance(source.data, dict) else {}
    channels = data.get("channels")
    microscope = data.get("microscope")
    settings_file = microscope.get("settings") if isinstance(microscope, dict) else None
    if not isinstance(channels, list):
        return []
    try:
        settings = load_settings(None if settings_file is None else base / str(settings_file))
    except Exception:
        return []  # the settings' own errors are reported once the protocol is well-formed
    problems = []
    for i, raw in enumerate(channels):
        try:
            channel = ChannelSpec.model_validate(raw)
        except ValidationError:
            continue
        problems += _channel_problems(source.error, i, channel, settings)
    return problems


def _check_channels(protocol: Protocol, settings: MicroscopeSettings) -> list[str]:
    problems = []
    for i, channel in enumerate(protocol.channels):
        problems += _channel_problems(protocol.located, i, channel, settings)
    if protocol.mode != "wf" and settings.pattern is None:
        problems.append(protocol.located(("mode",), f"{protocol.mode} needs a pattern generator "
                                                    "in the microscope settings"))
    elif protocol.mode in ("tirf-sim", "gi-sim") and settings.pattern is not None:
        kind = protocol.mode.split("-")[0]
        values = settings.pattern.illumination_values
        if settings.pattern.illumination_property is not None and kind not in values:
            problems.append(protocol.located(
                ("mode",), f"the pattern generator offers no {kind} illumination "
                           f"(settings: {sorted(values)})"))
    if protocol.mode != "wf" and settings.pattern is not None:
        n = protocol.frames_per_set
        if n not in settings.pattern.mode_values:
            problems.append(protocol.located(
                ("mode",), f"{protocol.mode} needs {n} pattern states; the pattern generator "
                           f"offers {sorted(settings.pattern.mode_values)}"))
    return problems


def _check_reconstruction(protocol: Protocol, i: int, rec: Reconstruction) -> list[str]:
    loc: tuple[str | int, ...] = ("channels", i, "reconstruction")
    n = protocol.frames_per_set
    if rec.method == "dfcan" and rec.weights is not None:
        path = protocol.resolve(rec.weights)
        if not path.is_file():
            return [protocol.located((*loc, "weights"), f"no such file: {path}")]
        try:
            from inference.models.weights import load_model

            model = load_model(path)
            in_channels = int(model.config.in_channels)  # type: ignore[union-attr,arg-type]
        except Exception as exc:
            return [protocol.located((*loc, "weights"), f"cannot load {path}: {exc}")]
        if in_channels not in (1, n):
            return [protocol.located(
                (*loc, "weights"),
                f"{path.name} takes {in_channels} frames per set, but {protocol.mode} gives {n} "
                f"(use a SISR model with 1 input, or a {n}-frame SIM model)")]
    if rec.trust is not None:
        problems = _trust_problems(protocol, loc, rec.trust)
        if problems:
            return problems
    if rec.method == "wiener-sim":
        if protocol.mode == "wf":
            return [protocol.located((*loc, "method"), "wiener-sim needs SIM sets, not wf mode")]
        try:
            import inference.wiener_sim.wiener_reconstructor  # noqa: F401
        except ImportError:
            return [protocol.located((*loc, "method"),
                                     "wiener-sim is not available in this installation")]
        if rec.calibration is not None:
            return _pattern_problems(protocol, loc, rec.calibration)
    return []


def _trust_problems(protocol: Protocol, loc: tuple[str | int, ...], trust: TrustSpec
                    ) -> list[str]:
    """Say why a channel's trust signal or fallback cannot work in the protocol's mode."""
    problems = []
    if protocol.frames_per_set != 9 and trust.signal != "spectrum":
        problems.append(protocol.located(
            (*loc, "trust", "signal"), f"{trust.signal} needs 9-frame linear SIM sets, not "
            f"{protocol.mode} (use spectrum)"))
    if protocol.mode == "wf" and trust.fallback == "wiener-sim":
        problems.append(protocol.located((*loc, "trust", "fallback"),
                                         "wiener-sim needs SIM sets, not wf mode"))
    wants_wiener = trust.signal not in ("dose", "spectrum") or trust.fallback == "wiener-sim"
    if wants_wiener and not problems:
        try:
            import inference.wiener_sim.wiener_reconstructor  # noqa: F401
        except ImportError:
            problems.append(protocol.located((*loc, "trust"),
                                             "wiener-sim is not available in this installation"))
    return problems


def _pattern_problems(protocol: Protocol, loc: tuple[str | int, ...], calibration: Path
                      ) -> list[str]:
    """Say what is wrong with a channel's pattern calibration file (nothing: ``[]``)."""
    from inference.wiener_sim.pattern_file import read_pattern

    path = protocol.resolve(calibration)
    if not path.is_file():
        return [protocol.located((*loc, "calibration"), f"no such file: {path}")]
    try:
        pattern = read_pattern(path)
    except (OSError, ValueError, KeyError) as exc:
        return [protocol.located((*loc, "calibration"), f"cannot read {path}: {exc}")]
    if pattern.n_frames != protocol.frames_per_set:
        return [protocol.located((*loc, "calibration"),
                                 f"{path.name} is for sets of {pattern.n_frames} frames, the "
                                 f"protocol takes {protocol.frames_per_set}")]
    return []


@dataclass(frozen=True)
class Estimate:
    """What a run will take: duration, data written, memory, disk."""

    frames: int
    sets: int
    seconds: float
    bytes_raw: int
    bytes_wf: int
    bytes_sr: int
    ram_bytes: int
    disk_bytes: int

    @property
    def bytes_total(self) -> int:
        """Data written in all: raw + WF + SR, bytes."""
        return self.bytes_raw + self.bytes_wf + self.bytes_sr


#: a raw set waiting in the writer queue at most (bytes); the queue holds as many sets as fit
WRITER_QUEUE_BYTES = 512 * 1024**2
#: per-frame readout and event overhead assumed by the duration estimate, ms
FRAME_OVERHEAD_MS = 2.0


def writer_queue_sets(set_bytes: int) -> int:
    """How many raw sets the writer queue holds (at least 4)."""
    return max(4, WRITER_QUEUE_BYTES // max(set_bytes, 1))


#: ``save.format: auto`` writes OME-Zarr for runs that write more than this
AUTO_ZARR_BYTES = 2 * 1024**3


def storage_format(protocol: Protocol, est: Estimate) -> str:
    """Return the format the images are written in: the protocol's, or for ``auto`` by size."""
    if protocol.save.format != "auto":
        return protocol.save.format
    return "ome-zarr" if est.bytes_total > AUTO_ZARR_BYTES else "ome-tiff"


def estimate(protocol: Protocol, height: int, width: int, scales: dict[str, int] | None = None
             ) -> Estimate:
    """Estimate the duration, data volume, RAM and disk of ``protocol`` at ``height × width``.

    ``scales``: the SR scale of each reconstructed channel preset (default 2, 3 for nl-sim).
    """
    n = protocol.frames_per_set
    per_tp_s = sum(n * (c.exposure_ms + FRAME_OVERHEAD_MS) for c in protocol.channels) / 1000
    per_tp_s *= protocol.n_positions
    count = protocol.timelapse.count
    seconds = (count - 1) * max(protocol.timelapse.interval_s, per_tp_s) + per_tp_s
    sets_per_channel = count * protocol.n_positions
    frame_bytes = height * width * 2
    bytes_raw = protocol.n_frames * frame_bytes
    bytes_wf = (sets_per_channel * len(protocol.channels) * height * width * 4
                if protocol.save.wf and protocol.mode != "wf" else 0)
    bytes_sr = 0
    ram_sr = 0
    scales = scales or {}
    for c in protocol.channels:
        if c.reconstruction.method == "none":
            continue
        s = scales.get(c.preset, 3 if protocol.mode == "nl-sim" else 2)
        if protocol.save.sr == "every":
            bytes_sr += sets_per_channel * height * width * s * s * 2
        # a DFCAN keeps a handful of 64-channel feature maps alive at the SR size
        ram_sr = max(ram_sr, 8 * 64 * height * width * s * s * 4)
    set_bytes = n * frame_bytes
    # the writer queue, and as many raw sets again waiting for every-set inference
    queues = 2 if protocol.save.sr == "every" and ram_sr else 1
    ram = queues * writer_queue_sets(set_bytes) * set_bytes + ram_sr + 300 * 1024**2
    total = bytes_raw + bytes_wf + bytes_sr
    # the images are written in place, once; metadata (IFDs or chunk files, the JSON lines)
    # adds about 1 KB per raw frame
    return Estimate(frames=protocol.n_frames, sets=protocol.n_sets, seconds=seconds,
                    bytes_raw=bytes_raw, bytes_wf=bytes_wf, bytes_sr=bytes_sr, ram_bytes=ram,
                    disk_bytes=total + 1024 * protocol.n_frames + 16 * 1024**2)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    h, rem = divmod(round(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"

