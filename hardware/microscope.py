"""The microscope: a backend, its roles checked against the loaded ``.cfg``, and laser safety.

    with Microscope.open("demo") as scope:        # or a .cfg path, settings, backend
        scope.set_powers({488: 20.0})
        scope.camera.exposure_ms = 10
        ...
    # every laser off, the AOTF blanked, the core released

Settings that name a device or property the ``.cfg`` lacks are refused with a message naming
both (and the settings file's line when it came from a file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from hardware import safety
from hardware.backend import Backend, PymmcoreBackend
from hardware.roles import AOTF, Camera, Laser, PatternGenerator
from hardware.settings import MicroscopeSettings, load_settings
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from types import TracebackType

__all__ = ["BackendName", "Microscope", "PatternGeometry"]

BackendName = Literal["pymmcore-plus", "pycromanager"]


class PatternGeometry(NamedTuple):
    """The SIM pattern a pattern device reports: period in the sample and first angle."""

    period_nm: float
    #: the first orientation's wave vector, degrees from the camera's x axis toward its y axis
    angle_deg: float
    #: the properties it was read from
    source: str


class Microscope:
    """Roles over a backend. Emission goes off on :meth:`close`, at exit and on signals."""

    def __init__(self, backend: Backend, settings: MicroscopeSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or MicroscopeSettings()
        check_settings(backend, self.settings)
        s = self.settings
        self.camera = Camera(backend, s.camera)
        self.lasers = {role.wavelength_nm: Laser(backend, role) for role in s.lasers}
        self.aotf = AOTF(backend, s.aotf) if s.aotf else None
        self.pattern = PatternGenerator(backend, s.pattern) if s.pattern else None
        if backend.camera_device() != s.camera.device:
            backend.set_camera_device(s.camera.device)
        safety.register(self)
        self._closed = False

    @classmethod
    def open(
        cls,
        cfg: str | Path = "demo",
        settings: MicroscopeSettings | str | Path | None = None,
        backend: BackendName = "pymmcore-plus",
    ) -> Microscope:
        """Open a microscope over ``cfg`` and map the roles of ``settings``.

        pymmcore-plus loads ``cfg``; pycromanager attaches to the running Micro-Manager and uses
        the configuration loaded there.
        """
        if not isinstance(settings, MicroscopeSettings):
            settings = load_settings(settings)
        be: Backend
        if backend == "pymmcore-plus":
            be = PymmcoreBackend.from_config(str(cfg))
        elif backend == "pycromanager":
            from hardware.pycromanager_backend import PycromanagerBackend

            be = PycromanagerBackend()
        else:
            raise ValueError(f"unknown backend {backend!r} (pymmcore-plus or pycromanager)")
        try:
            return cls(be, settings)
        except BaseException:
            be.release()
            raise

    # -- light
    def check_powers(self, powers_mw: Mapping[int, float]) -> dict[int, float]:
        """Every requested power checked against its laser's limit before any is set."""
        checked = {}
        for line, mw in powers_mw.items():
            if line not in self.lasers:
                raise ValueError(f"no laser at {line} nm (lasers: {sorted(self.lasers)})")
            checked[line] = self.lasers[line].check_power(mw)
        return checked

    def set_powers(self, powers_mw: Mapping[int, float]) -> None:
        """Set laser powers (mW); all are checked first, so a bad one changes nothing."""
        for line, mw in self.check_powers(powers_mw).items():
            self.lasers[line].power_mw = mw

    def powers_mw(self) -> dict[int, float]:
        """Return each laser's power setpoint in mW, per line (nm)."""
        return {line: laser.power_mw for line, laser in self.lasers.items()}

    def emission_off(self) -> None:
        """Turn every laser's emission off and blank the AOTF.

        Each is tried; failures are raised together afterwards.
        """
        errors = []
        for laser in self.lasers.values():
            try:
                laser.off()
            except Exception as exc:
                errors.append(str(exc))
        if self.aotf is not None:
            try:
                self.aotf.blank()
            except Exception as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("emission could not be turned off everywhere: "
                               + "; ".join(errors))

    def emitting(self) -> list[str]:
        """Labels of the lasers whose emission is on (and the AOTF if it is not blanked)."""
        on = [laser.label for laser in self.lasers.values() if laser.is_on]
        if self.aotf is not None and not self.aotf.blanked:
            on.append(self.aotf.label)
        return on

    def channel_line(self, preset: str) -> int:
        """Return the laser line (nm) that channel preset ``preset`` uses."""
        lines = self.settings.channels.lines
        if preset not in lines:
            raise ValueError(f"channel {preset!r} is not in the settings' channel presets "
                             f"{sorted(lines)}")
        return lines[preset]

    def expected_pattern(self, line: int) -> PatternGeometry | None:
        """Return the SIM pattern the pattern device reports for ``line`` in its current mode.

        ``None`` when the settings name no period and angle properties; a ValueError when the
        device reports something that is not a positive period.
        """
        role = self.settings.pattern
        if role is None or role.angle_property is None:
            return None
        period_property = role.period_property_of(line)
        if period_property is None:
            return None
        period = float(self.backend.get_property(role.device, period_property))
        angle = float(self.backend.get_property(role.device, role.angle_property))
        if not period > 0:
            raise ValueError(f"{role.device}.{period_property} reports a period of {period} nm")
        return PatternGeometry(period, angle, f"{role.device}.{period_property}, "
                                              f"{role.device}.{role.angle_property}")

    # -- life cycle
    def close(self) -> None:
        """Emission off, then release the backend (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.emission_off()
        finally:
            safety.unregister(self)
            self.backend.release()

    def __enter__(self) -> Microscope:
        """Return the microscope itself."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the microscope: emission off, backend released."""
        self.close()


def check_settings(backend: Backend, settings: MicroscopeSettings) -> None:
    """Check that every device, property and preset the settings name is in the configuration.

    All problems are reported at once, in one :class:`~yamlconfig.located.ConfigError`.
    """
    cfg = backend.config_file()
    devices = backend.loaded_devices()
    problems: list[str] = []

    def need_device(loc: tuple[str | int, ...], label: str, shutter: bool = False) -> bool:
        if label not in devices:
            problems.append(settings.located(
                loc, f"device {label!r} is not in {cfg} (its devices: {', '.join(devices)})"))
            return False
        if shutter and not backend.is_shutter(label):
            problems.append(settings.located(
                loc, f"device {label!r} in {cfg} is not a shutter device"))
        return True

    def need_property(loc: tuple[str | int, ...], label: str, prop: str) -> None:
        if prop not in backend.property_names(label):
            problems.append(settings.located(
                loc, f"device {label!r} in {cfg} has no property {prop!r}"))

    need_device(("camera", "device"), settings.camera.device)
    for i, laser in enumerate(settings.lasers):
        if need_device(("lasers", i, "device"), laser.device, shutter=True):
            need_property(("lasers", i, "power_property"), laser.device, laser.power_property)
    if settings.aotf is not None:
        aotf = settings.aotf
        if need_device(("aotf", "device"), aotf.device, shutter=True):
            for line, prop in aotf.intensity_properties.items():
                need_property(("aotf", "intensity_properties", line), aotf.device, prop)
    if settings.pattern is not None:
        pattern = settings.pattern
        if need_device(("pattern", "device"), pattern.device):
            need_property(("pattern", "property"), pattern.device, pattern.property)
            if pattern.mode_property is not None:
                need_property(("pattern", "mode_property"), pattern.device,
                              pattern.mode_property)
            if pattern.illumination_property is not None:
                need_property(("pattern", "illumination_property"), pattern.device,
                              pattern.illumination_property)
            if pattern.angle_property is not None:
                need_property(("pattern", "angle_property"), pattern.device,
                              pattern.angle_property)
            for line in sorted(set(settings.channels.lines.values())):
                period = pattern.period_property_of(line)
                if period is not None:
                    need_property(("pattern", "period_property"), pattern.device, period)
    presets = backend.config_presets(settings.channels.group)
    if not presets:
        problems.append(settings.located(
            ("channels", "group"), f"config group {settings.channels.group!r} is not in {cfg}"))
    else:
        for preset in settings.channels.lines:
            if preset not in presets:
                problems.append(settings.located(
                    ("channels", "lines", preset),
                    f"preset {preset!r} is not in group {settings.channels.group!r} of {cfg} "
                    f"(its presets: {', '.join(presets)})"))
    if problems:
        raise ConfigError(problems)
