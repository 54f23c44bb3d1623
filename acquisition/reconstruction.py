"""The reconstructor of each protocol channel, made by the one registry.

The registry is :func:`inference.registry.build_reconstructor`: DFCAN on the chosen backend
(scaled per set or anchored, :class:`~inference.predict.normalisation.Normalisation`),
Wiener-SIM, none. Once the microscope is open, a Wiener-SIM channel without a pattern
calibration takes the pattern the pattern device reports (:func:`use_device_pattern`), and an
anchored DFCAN channel takes its input's zero from the camera's calibration, when the settings
hold one (:func:`use_camera_calibration`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from inference.predict.normalisation import Normalisation
from inference.registry import build_reconstructor, file_sha256

if TYPE_CHECKING:
    from acquisition.protocol import ChannelSpec, Protocol
    from hardware.microscope import Microscope
    from inference.reconstructor import Reconstructor

__all__ = [
    "DEVICE_PATTERN_WINDOW",
    "channel_normalisation",
    "channel_reconstructor",
    "file_sha256",
    "use_camera_calibration",
    "use_device_pattern",
]

#: a carrier is searched within this fraction of |k| around the one the pattern device reports
DEVICE_PATTERN_WINDOW = 0.05


def channel_reconstructor(
    protocol: Protocol, channel: ChannelSpec, shape: tuple[int, int] | None
) -> tuple[Reconstructor, dict[str, Any]] | None:
    """Build the channel's reconstructor and its metadata, or ``None`` for ``method: none``.

    The metadata holds the method, model, weights hash, backend and scale, an anchored
    DFCAN's normalisation and its trust signal (:mod:`acquisition.trust`: the reconstructor
    then measures each set's trust and falls back below the threshold). ``shape``: build the
    backend for it now.
    """
    rec = channel.reconstruction
    if rec.method == "none":
        return None
    weights = protocol.resolve(rec.weights) if rec.weights is not None else None
    pattern = protocol.resolve(rec.calibration) if rec.calibration is not None else None
    # per set (the default) is the backends' own: the metadata says normalisation only if anchored
    normalisation = (Normalisation("anchored", rec.anchor_sets, rec.anchor_headroom)
                     if rec.normalisation == "anchored" else None)
    built = build_reconstructor(
        rec.method, weights=weights, backend=protocol.inference.backend,
        device=protocol.inference.device, shape=shape, frames_per_set=protocol.frames_per_set,
        pattern=pattern, normalisation=normalisation)
    if rec.trust is None:
        return built.reconstructor, built.info
    from acquisition.trust import trusted

    wrapped = trusted(built.reconstructor, rec.trust, frames_per_set=protocol.frames_per_set,
                      structure=channel.structure)
    return wrapped, {**built.info, "trust": rec.trust.model_dump()}


def channel_normalisation(reconstructor: Reconstructor) -> Normalisation | None:
    """Return the normalisation a channel's reconstructor scales sets by (``None``: not a DFCAN)."""
    found = getattr(reconstructor, "normalisation", None)
    return found if isinstance(found, Normalisation) else None


def use_camera_calibration(built: tuple[Reconstructor, dict[str, Any]] | None,
                           scope: Microscope) -> None:
    """Give an anchored DFCAN channel its input's zero from the camera's calibration.

    Nothing changes without a calibration in the microscope settings (the zero is then the
    anchor sets' minimum) or for another normalisation. Call it before the first set.
    """
    if built is None:
        return
    reconstructor, info = built
    normalisation = channel_normalisation(reconstructor)
    calibration = scope.settings.camera.calibration
    if normalisation is None or not normalisation.anchored or calibration is None:
        return
    normalisation.use_camera(calibration.offset_adu,
                             1.0 / (calibration.gain_adu_per_e * calibration.qe))
    info["normalisation"] = normalisation.to_dict()


def use_device_pattern(built: tuple[Reconstructor, dict[str, Any]] | None, channel: ChannelSpec,
                       scope: Microscope) -> None:
    """Give a Wiener-SIM channel the pattern its pattern device reports, as expected carriers.

    Only a Wiener-SIM reconstructor without a calibration file (or the Wiener-SIM of a DFCAN
    channel's trust signal) is changed: its carriers are then
    searched within :data:`DEVICE_PATTERN_WINDOW` of the reported ones (one |k| from the period,
    orientations 180°/n apart from the first angle), and ``pattern_expected`` in its metadata
    says what was reported. Call it in the mode the run uses (the period can depend on it).
    """
    if built is None:
        return
    found: object = built[0]
    info = built[1]
    if info.get("method") != "wiener-sim":
        # the Wiener-SIM a trust signal compares with (acquisition.trust) takes it too
        found = getattr(found, "wiener", None)
        info = info.get("trust", {})
    if found is None or "pattern_calibration" in info:
        return
    from inference.wiener_sim.priors import PatternPrior
    from inference.wiener_sim.wiener_reconstructor import WienerSIMReconstructor

    if not isinstance(found, WienerSIMReconstructor):
        return
    reconstructor = found
    reported = scope.expected_pattern(scope.channel_line(channel.preset))
    if reported is None:
        return
    n = reconstructor.geometry.n_orientations
    k = 1000.0 / reported.period_nm
    angles = np.radians(reported.angle_deg) + np.arange(n) * np.pi / n
    reconstructor.prior = PatternPrior(
        expected_k_per_um=tuple((float(k * np.sin(a)), float(k * np.cos(a))) for a in angles),
        window=DEVICE_PATTERN_WINDOW)
    info["pattern_expected"] = {"period_nm": reported.period_nm,
                                "angle_deg": reported.angle_deg, "source": reported.source,
                                "window": DEVICE_PATTERN_WINDOW}
