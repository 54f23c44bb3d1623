"""Which device of a Micro-Manager ``.cfg`` plays which role: the microscope settings file.

A small YAML file maps the roles LiveSR needs (a camera, lasers, an AOTF, a SIM pattern
generator, the channel presets) onto device labels and property names of the user's own ``.cfg``.
The defaults fit the bundled demo microscope, so an empty file (or none) means "demo".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from yamlconfig.located import FieldError, YamlSource, load_yaml, validate_source

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "AOTFRole",
    "CameraRole",
    "ChannelsRole",
    "LaserRole",
    "MicroscopeSettings",
    "PatternRole",
    "load_settings",
]


class _Role(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CameraCalibration(_Role):
    """What one camera count means: offset, gain, quantum efficiency and read noise.

    Measured by the photon-transfer method (``livesr calibrate-camera``); the photon count of
    a set (and the dose advisor) uses it instead of the simulated camera's defaults.
    """

    offset_adu: float = Field(ge=0, description="mean dark level (ADU)")
    gain_adu_per_e: float = Field(gt=0, description="ADU per photo-electron")
    qe: float = Field(gt=0, le=1, description="quantum efficiency at the emission wavelength")
    read_noise_e: float = Field(ge=0, description="read noise (e⁻ rms)")

    def photons_from_adu(self, adu: np.ndarray) -> np.ndarray:
        """Return photons per pixel from camera counts (offset removed, gain and QE undone)."""
        return (np.asarray(adu, dtype=np.float32) - self.offset_adu) / (
            self.gain_adu_per_e * self.qe)


class CameraRole(_Role):
    """The camera: the device label (``Core-Camera`` is set to it), and its calibration."""

    device: str = Field("Camera", min_length=1, description="camera device label")
    binning_property: str = Field("Binning", description="binning property name")
    calibration: CameraCalibration | None = Field(
        None, description="offset, gain, QE and read noise (livesr calibrate-camera); none: "
        "photon counts are estimates from the simulated camera's defaults")


class LaserRole(_Role):
    """One laser line: a shutter device (emission on/off) with a power property in mW."""

    device: str = Field(min_length=1, description="laser device label (a shutter device)")
    wavelength_nm: int = Field(gt=200, lt=2000, description="excitation wavelength")
    max_power_mw: float = Field(gt=0, description="highest power LiveSR may set, in mW")
    power_property: str = Field("PowerSetpoint-mW", description="power setpoint property, mW")


class AOTFRole(_Role):
    """The AOTF: a shutter device (blanking) with one intensity property per laser line."""

    device: str = Field("AOTF", min_length=1, description="AOTF device label (a shutter)")
    intensity_properties: dict[int, str] = Field(
        default_factory=lambda: {405: "Intensity-405", 488: "Intensity-488",
                                 560: "Intensity-560"},
        description="laser line (nm) -> its transmission property (0-100 %)")


class PatternRole(_Role):
    """The SIM pattern generator: a property whose values select orientation × phase states."""

    device: str = Field("Pattern", min_length=1, description="pattern device label")
    property: str = Field("Pattern", min_length=1, description="property selecting the state")
    uniform_state: str = Field("WF", description="value for uniform (wide-field) illumination")
    state_format: str = Field("{index}", description="value of SIM state k (orientation-major)")
    mode_property: str | None = Field(
        "Mode", description="property choosing 9 (linear) or 25 (nonlinear) states; none: fixed")
    mode_values: dict[int, str] = Field(
        default_factory=lambda: {9: "3x3", 25: "5x5"},
        description="number of states -> value of the mode property")
    illumination_property: str | None = Field(
        "Illumination", description="property choosing TIRF or GI illumination; none: fixed")
    illumination_values: dict[str, str] = Field(
        default_factory=lambda: {"tirf": "TIRF", "gi": "GI"},
        description="illumination (tirf, gi) -> value of the illumination property")
    period_property: str | None = Field(
        "Period-nm-{line}", description="property reporting the pattern period in the sample "
        "(nm) in the current mode, '{line}' standing for the laser line; none: not reported")
    angle_property: str | None = Field(
        "Angle-deg", description="property reporting the first orientation's angle (degrees "
        "from the camera's x axis toward its y axis, the wave vector's direction); none: not "
        "reported")

    @model_validator(mode="after")
    def _check_format(self) -> PatternRole:
        if "{index}" not in self.state_format:
            raise FieldError("state_format", "must contain {index}")
        return self

    def state(self, index: int) -> str:
        """Return the property value of SIM state ``index``."""
        return self.state_format.format(index=index)

    def period_property_of(self, line: int) -> str | None:
        """Return the name of the property reporting line ``line``'s period (None: none)."""
        if self.period_property is None:
            return None
        return self.period_property.replace("{line}", str(line))


class ChannelsRole(_Role):
    """The channel config group and the laser line each of its presets lights."""

    group: str = Field("Channel", min_length=1, description="config group of the channels")
    lines: dict[str, int] = Field(
        default_factory=lambda: {"405": 405, "488": 488, "560": 560},
        description="preset name -> laser line (nm) it uses")


def _demo_lasers() -> list[LaserRole]:
    return [LaserRole(device="Laser405", wavelength_nm=405, max_power_mw=100),
            LaserRole(device="Laser488", wavelength_nm=488, max_power_mw=200),
            LaserRole(device="Laser560", wavelength_nm=560, max_power_mw=200)]


class MicroscopeSettings(BaseModel):
    """The roles of a microscope's devices (defaults: the demo microscope)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    camera: CameraRole = Field(default_factory=CameraRole)
    lasers: list[LaserRole] = Field(default_factory=_demo_lasers, min_length=1)
    aotf: AOTFRole | None = Field(default_factory=AOTFRole, description="none: no AOTF")
    pattern: PatternRole | None = Field(default_factory=PatternRole,
                                        description="none: wide-field only")
    channels: ChannelsRole = Field(default_factory=ChannelsRole)

    _source: YamlSource | None = PrivateAttr(default=None)

    @classmethod
    def from_source(cls, source: YamlSource) -> MicroscopeSettings:
        """Validate the settings read into ``source``; :meth:`where` then points into its file."""
        settings: MicroscopeSettings = validate_source(cls, source)
        settings._source = source
        return settings

    @model_validator(mode="after")
    def _check_lines(self) -> MicroscopeSettings:
        lines = [laser.wavelength_nm for laser in self.lasers]
        if len(set(lines)) != len(lines):
            raise FieldError("lasers", f"two lasers share a wavelength: {lines}")
        unknown = {p: line for p, line in self.channels.lines.items() if line not in lines}
        if unknown:
            raise FieldError(("channels", "lines"), f"channel presets use lines with no laser: "
                             f"{unknown} (lasers: {lines})")
        return self

    def laser(self, line: int) -> LaserRole:
        """Return the laser of ``line`` nm."""
        for laser in self.lasers:
            if laser.wavelength_nm == line:
                return laser
        lines = [la.wavelength_nm for la in self.lasers]
        raise KeyError(f"no laser at {line} nm (lasers: {lines})")

    def where(self, *loc: str | int) -> str:
        """Where a field was set: ``FILE:LINE:COL`` when read from a file, else ``settings``."""
        return self._source.where(loc) if self._source is not None else "settings"

    def located(self, loc: tuple[str | int, ...], message: str) -> str:
        """``message`` prefixed with the field's location and path."""
        if self._source is not None:
            return self._source.error(loc, message)
        return f"settings: {'.'.join(map(str, loc))}: {message}"


def load_settings(path: str | Path | None = None, **data: Any) -> MicroscopeSettings:
    """Load settings from a YAML file, or the demo defaults when ``path`` is ``None``.

    Errors in a file read ``FILE:LINE:COL: field: message``. Without a file, ``data`` overrides
    fields of the defaults.
    """
    if path is None:
        return MicroscopeSettings.model_validate(data)
    return MicroscopeSettings.from_source(load_yaml(path))
