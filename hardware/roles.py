"""Device roles: what a SIM microscope's parts do, over any :class:`~hardware.backend.Backend`.

Each role holds a backend and its part of :class:`~hardware.settings.MicroscopeSettings`. Values
are checked before they reach a device: a power above the configured limit is refused, as is an
AOTF intensity outside 0–100 % or a SIM state the pattern generator does not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.backend import Backend, DeviceError

if TYPE_CHECKING:
    import numpy as np

    from hardware.settings import AOTFRole, CameraRole, LaserRole, PatternRole

__all__ = ["AOTF", "Camera", "Laser", "PatternGenerator"]


class Camera:
    """Exposure, ROI, binning, snap and sequence acquisition of the core camera."""

    def __init__(self, backend: Backend, role: CameraRole) -> None:
        self.backend, self.role, self.label = backend, role, role.device

    @property
    def exposure_ms(self) -> float:
        """Exposure in ms; set within (0, 10000]."""
        return self.backend.get_exposure()

    @exposure_ms.setter
    def exposure_ms(self, ms: float) -> None:
        if not 0 < ms <= 10_000:
            raise ValueError(f"camera {self.label!r}: exposure must be in (0, 10000] ms, got {ms}")
        self.backend.set_exposure(ms)

    @property
    def roi(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` in sensor pixels."""
        return self.backend.get_roi()

    def set_roi(self, x: int, y: int, width: int, height: int) -> None:
        """Set the ROI, in sensor pixels."""
        self.backend.set_roi(x, y, width, height)

    def centred_roi(self, size: int) -> tuple[int, int, int, int]:
        """Set a centred square ROI of ``size`` pixels (after clearing any ROI)."""
        self.backend.clear_roi()
        _, _, width, height = self.backend.get_roi()
        if not 0 < size <= min(width, height):
            raise ValueError(f"camera {self.label!r}: ROI {size} does not fit the "
                             f"{width}×{height} sensor")
        x, y = (width - size) // 2, (height - size) // 2
        self.backend.set_roi(x, y, size, size)
        return x, y, size, size

    def clear_roi(self) -> None:
        """Use the whole sensor."""
        self.backend.clear_roi()

    @property
    def binning(self) -> int:
        """Binning (1 when the camera has no binning property); set among its allowed values."""
        prop = self.role.binning_property
        if prop not in self.backend.property_names(self.label):
            return 1
        return int(float(self.backend.get_property(self.label, prop)))

    @binning.setter
    def binning(self, value: int) -> None:
        prop = self.role.binning_property
        if value == self.binning:
            return
        if prop not in self.backend.property_names(self.label):
            raise DeviceError(self.label, f"has no {prop} property; binning {value} impossible")
        allowed = self.backend.allowed_values(self.label, prop)
        if allowed and str(value) not in allowed:
            raise ValueError(f"camera {self.label!r}: binning {value} not in {allowed}")
        self.backend.set_property(self.label, prop, str(value))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the frames it delivers now."""
        _, _, width, height = self.roi
        return height, width

    def snap(self) -> np.ndarray:
        """Snap one frame and return it."""
        return self.backend.snap()


class Laser:
    """One laser line: emission on/off (its shutter) and power in mW within configured limits."""

    def __init__(self, backend: Backend, role: LaserRole) -> None:
        self.backend, self.role, self.label = backend, role, role.device
        self.wavelength_nm = role.wavelength_nm
        self.max_power_mw = role.max_power_mw

    def check_power(self, mw: float) -> float:
        """``mw`` as a float, or a ValueError when it lies outside 0…max_power_mw."""
        mw = float(mw)
        if not 0 <= mw <= self.max_power_mw:
            raise ValueError(f"laser {self.label!r} ({self.wavelength_nm} nm): power {mw} mW is "
                             f"outside 0…{self.max_power_mw} mW (the configured limit)")
        return mw

    @property
    def power_mw(self) -> float:
        """Power setpoint in mW; a value outside 0…max_power_mw is refused."""
        return float(self.backend.get_property(self.label, self.role.power_property))

    @power_mw.setter
    def power_mw(self, mw: float) -> None:
        self.backend.set_property(self.label, self.role.power_property, self.check_power(mw))

    @property
    def is_on(self) -> bool:
        """Whether emission is on (the laser's shutter open)."""
        return self.backend.get_shutter_open(self.label)

    def on(self) -> None:
        """Turn emission on, after checking the power setpoint against the limit."""
        self.check_power(self.power_mw)  # never emit at a power above the limit
        self.backend.set_shutter_open(self.label, True)

    def off(self) -> None:
        """Turn emission off."""
        self.backend.set_shutter_open(self.label, False)


class AOTF:
    """Per-line transmission (0–100 %) and blanking (the shutter: closed = no light passes)."""

    def __init__(self, backend: Backend, role: AOTFRole) -> None:
        self.backend, self.role, self.label = backend, role, role.device

    @property
    def lines(self) -> list[int]:
        """Laser lines (nm) with an intensity property, ascending."""
        return sorted(self.role.intensity_properties)

    def _property(self, line: int) -> str:
        try:
            return self.role.intensity_properties[line]
        except KeyError:
            raise ValueError(f"AOTF {self.label!r} has no {line} nm line "
                             f"(lines: {self.lines})") from None

    def intensity(self, line: int) -> float:
        """Return the transmission (%) of ``line`` nm."""
        return float(self.backend.get_property(self.label, self._property(line)))

    def set_intensity(self, line: int, percent: float) -> None:
        """Set the transmission (0–100 %) of ``line`` nm."""
        if not 0 <= percent <= 100:
            raise ValueError(f"AOTF {self.label!r}: intensity must be 0…100 %, got {percent}")
        self.backend.set_property(self.label, self._property(line), float(percent))

    @property
    def blanked(self) -> bool:
        """Whether no light passes (the shutter closed)."""
        return not self.backend.get_shutter_open(self.label)

    def blank(self) -> None:
        """Let no light pass."""
        self.backend.set_shutter_open(self.label, False)

    def unblank(self) -> None:
        """Let light pass, at each line's transmission."""
        self.backend.set_shutter_open(self.label, True)


class PatternGenerator:
    """The SIM pattern: orientation × phase states (9 linear, 25 nonlinear) and a uniform state."""

    def __init__(self, backend: Backend, role: PatternRole) -> None:
        self.backend, self.role, self.label = backend, role, role.device

    @property
    def n_states(self) -> int:
        """SIM states of the current mode (9 or 25)."""
        if self.role.mode_property is None:
            return min(self.role.mode_values)
        value = self.backend.get_property(self.label, self.role.mode_property)
        for n, name in self.role.mode_values.items():
            if name == value:
                return n
        raise DeviceError(self.label, f"unknown {self.role.mode_property} {value!r} "
                                      f"(settings know {self.role.mode_values})")

    def set_n_states(self, n: int) -> None:
        """Choose linear (9) or nonlinear (25) SIM."""
        if n not in self.role.mode_values:
            raise ValueError(f"pattern generator {self.label!r} offers "
                             f"{sorted(self.role.mode_values)} states, not {n}")
        if self.role.mode_property is None:
            return
        self.backend.set_property(self.label, self.role.mode_property, self.role.mode_values[n])

    def set_illumination(self, kind: str) -> None:
        """Choose TIRF (``"tirf"``) or grazing-incidence (``"gi"``) illumination."""
        values = self.role.illumination_values
        if kind not in values:
            raise ValueError(f"pattern generator {self.label!r} offers illumination "
                             f"{sorted(values)}, not {kind!r}")
        if self.role.illumination_property is None:
            return
        self.backend.set_property(self.label, self.role.illumination_property, values[kind])

    def states(self) -> list[str]:
        """Return the property values of SIM states 0…n−1 (orientation-major)."""
        return [self.role.state(k) for k in range(self.n_states)]

    @property
    def state(self) -> str:
        """The pattern property's current value."""
        return self.backend.get_property(self.label, self.role.property)

    def set_state(self, index: int) -> None:
        """Show SIM state ``index`` of the current mode."""
        n = self.n_states
        if not 0 <= index < n:
            raise ValueError(f"pattern generator {self.label!r}: state {index} outside 0…{n - 1}")
        self.backend.set_property(self.label, self.role.property, self.role.state(index))

    def uniform(self) -> None:
        """Uniform (wide-field) illumination."""
        self.backend.set_property(self.label, self.role.property, self.role.uniform_state)

    @property
    def sequenceable(self) -> bool:
        """Whether the pattern property can run a hardware property sequence."""
        return self.backend.is_sequenceable(self.label, self.role.property)
