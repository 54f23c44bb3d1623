"""The pattern prior and the frame-order detector, on the real MT.mrc and on simulated sets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.wiener_sim import (
    OTFModel,
    ReconstructionPlan,
    SIMCalibration,
    SIMOptics,
    estimate_calibration,
)
from inference.wiener_sim.frame_order import detect_order, to_orientation_major
from inference.wiener_sim.priors import PatternPrior
from simulators import CameraModel, PatternSettings, render_set

MT_MRC = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dlsr" / "MT.mrc"
#: MT.mrc's optics (BioSR: NA 1.49, 62.6 nm camera pixels, GFP emission)
MT_OPTICS = SIMOptics(na=1.49, emission_um=0.525, pixel_um=0.0626)

needs_mt = pytest.mark.skipif(not MT_MRC.is_file(), reason=f"{MT_MRC} is not here")


@pytest.fixture(scope="module")
def mt_raw() -> np.ndarray:
    from inference.predict.image_io import read_image

    return np.asarray(read_image(MT_MRC))


def _lobe_balance(image: np.ndarray, angles: np.ndarray, cutoff: float, pixel_um: float
                  ) -> np.ndarray:
    """Per orientation: the power the reconstruction puts beyond the WF cutoff along it.

    Power in a ±15° sector between 1.1 and 1.7 × the cutoff, over the power of the same
    sector inside the WF band (0.4–0.8 × the cutoff), so the sample's own anisotropy cancels.
    An orientation whose bands were not (or wrongly) moved leaves its sector empty: the
    directional streaks of a failed estimate.
    """
    h, w = image.shape
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    ky = np.fft.fftfreq(h, pixel_um)[:, None]
    kx = np.fft.fftfreq(w, pixel_um)[None, :]
    kr, theta = np.hypot(ky, kx), np.arctan2(ky, kx) % np.pi
    out = []
    for angle in angles:
        sector = np.abs(np.angle(np.exp(2j * (theta - angle)))) / 2 < np.radians(15)
        beyond = sector & (kr > 1.1 * cutoff) & (kr < 1.7 * cutoff)
        inside = sector & (kr > 0.4 * cutoff) & (kr < 0.8 * cutoff)
        out.append(power[beyond].mean() / power[inside].mean())
    return np.array(out)


@needs_mt
def test_mt_mrc_all_three_orientations_found_with_the_prior(mt_raw: np.ndarray) -> None:
    blind = estimate_calibration(mt_raw, MT_OPTICS, strict=False)
    assert blind.notes  # blind, two orientations are lost in the sample's own structure
    cal = estimate_calibration(mt_raw, MT_OPTICS, strict=False, prior=PatternPrior())
    assert not cal.notes, cal.summary()
    assert cal.joint_confidence is not None and cal.joint_confidence >= 0.5
    angles = np.sort(np.degrees(cal.angles_rad))
    spacing = np.diff(np.append(angles, angles[0] + 180))
    np.testing.assert_allclose(spacing, 60.0, atol=1.0)
    k = cal.frequency_per_um
    assert k.max() / k.min() - 1 < 0.01
    assert abs(k.mean() - 5.55) < 0.05  # all three share the carrier of the two clear ones
    summary = cal.summary()
    assert "joint fit" in summary and "confidence" in summary


@needs_mt
def test_mt_mrc_reconstruction_has_no_directional_streaks(mt_raw: np.ndarray) -> None:
    """Every orientation extends the support: no direction is left at the WF resolution.

    Blind, one orientation's bands go to a wrong carrier and its sector beyond the cutoff
    stays nearly empty (about 700× below the strongest). With the prior all three are within
    2× (within 7× while the modulations were biased low by noise: the Wiener filter weights
    each band by its modulation).
    """
    otf = OTFModel(MT_OPTICS)
    cal = estimate_calibration(mt_raw, MT_OPTICS, strict=False, prior=PatternPrior())
    blind = estimate_calibration(mt_raw, MT_OPTICS, strict=False)
    half_pixel = MT_OPTICS.pixel_um / 2
    lobes = {name: _lobe_balance(ReconstructionPlan(c, otf).reconstruct(mt_raw),
                                 cal.angles_rad, otf.cutoff_per_um, half_pixel)
             for name, c in (("prior", cal), ("blind", blind))}
    assert lobes["prior"].max() / lobes["prior"].min() < 3, lobes
    assert lobes["blind"].max() / lobes["blind"].min() > 100, lobes


@needs_mt
def test_frame_order_of_mt_mrc_and_of_its_phase_major_permutation(mt_raw: np.ndarray) -> None:
    found = detect_order(mt_raw, MT_OPTICS)
    assert found.order == "orientation-major" and found.margin > 0.1, found.describe()
    phase_major = mt_raw.reshape(3, 3, *mt_raw.shape[1:]).transpose(1, 0, 2, 3).reshape(
        mt_raw.shape)
    found = detect_order(phase_major, MT_OPTICS)
    assert found.order == "phase-major" and found.margin > 0.1, found.describe()
    np.testing.assert_array_equal(to_orientation_major(phase_major, "phase-major"), mt_raw)
    with pytest.raises(ValueError, match="unknown frame order"):
        to_orientation_major(mt_raw, "sideways")  # type: ignore[arg-type]


@needs_mt
def test_reconstruct_cli_writes_mt_mrc_at_512(tmp_path: Path) -> None:
    out = tmp_path / "mt.npy"
    proc = subprocess.run([sys.executable, "-m", "acquisition.cli", "reconstruct", "--input",
                           str(MT_MRC), "--output", str(out)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "frame order: orientation-major" in proc.stdout
    assert "joint fit" in proc.stdout
    image = np.load(out)
    assert image.shape == (512, 512) and np.isfinite(image).all()


def _true_k(params: dict) -> np.ndarray:
    return np.array(params["pattern"]["k_vectors_per_um"])


def _worst_errors(cal: SIMCalibration, params: dict) -> tuple[float, float]:
    """Worst relative |k| error and worst phase-offset error (rad) against the truth."""
    k_true = _true_k(params)
    phases_true = np.array(params["pattern"]["phases_rad"])
    k_err, phase_err = 0.0, 0.0
    for o in range(len(k_true)):
        sign = 1.0 if np.dot(cal.k_per_um[o], k_true[o]) > 0 else -1.0
        k = sign * cal.k_per_um[o]
        k_err = max(k_err, float(np.hypot(*(k - k_true[o])) / np.hypot(*k_true[o])))
        offset = sign * (cal.phases_rad[o] + np.angle(cal.amplitudes[o, 0])) - phases_true[o]
        phase_err = max(phase_err, float(np.abs(np.angle(np.exp(1j * offset))).max()))
    return k_err, phase_err


@pytest.fixture(scope="module")
def dim_low_contrast_set():
    """Microtubules at 25 photons under a weak pattern (modulation 0.2, as in MT.mrc)."""
    scene = render_set("microtubules", "tirf-sim", size=256, seed=4,
                       patterns=PatternSettings(modulation=0.2))
    return scene.at_photons(25, CameraModel(), seed=5)


def test_prior_finds_carriers_and_phases_of_a_dim_weak_pattern(dim_low_contrast_set) -> None:
    item = dim_low_contrast_set
    cal = estimate_calibration(item.raw, strict=False, prior=PatternPrior())
    assert not cal.notes, cal.summary()
    k_err, phase_err = _worst_errors(cal, item.params)
    assert k_err < 0.005 and phase_err < 0.2, (k_err, phase_err)
    steps = np.diff(np.unwrap(cal.phases_rad, axis=1), axis=1)
    np.testing.assert_allclose(np.abs(steps), 2 * np.pi / 3, atol=1e-9)  # the known step


def test_expected_carriers_confine_the_search(dim_low_contrast_set) -> None:
    item = dim_low_contrast_set
    k_true = _true_k(item.params)
    # a calibration a little off (1 %, 0.5°) and of either sign: the window finds the carriers
    turn = np.radians(0.5)
    rotate = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    expected = 1.01 * (k_true @ rotate.T) * np.array([[1.0], [-1.0], [1.0]])
    prior = PatternPrior(expected_k_per_um=tuple(map(tuple, expected)))
    cal = estimate_calibration(item.raw, strict=False, prior=prior)
    assert cal.joint_confidence is None  # the calibration vouches for the carriers
    k_err, _ = _worst_errors(cal, item.params)
    assert k_err < 0.005, k_err
    with pytest.raises(ValueError, match="3 \\(k_y, k_x\\) pairs"):
        estimate_calibration(item.raw, prior=PatternPrior(expected_k_per_um=((5.0, 0.0),)))


def test_a_calibration_from_bright_sets_finds_the_carriers_of_a_dim_one(tmp_path: Path) -> None:
    """Run `livesr calibrate` on two bright sets, then estimate a set at 8 photons with it."""
    from inference.wiener_sim.pattern_file import read_pattern

    weak = PatternSettings(modulation=0.2)
    bright = []
    for seed in (6, 7):
        scene = render_set("er", "tirf-sim", size=256, seed=seed, patterns=weak)
        path = tmp_path / f"bright{seed}.npy"
        np.save(path, scene.at_photons(500, CameraModel(), seed=seed).raw)
        bright.append(str(path))
    out = tmp_path / "cal.json"
    proc = subprocess.run([sys.executable, "-m", "acquisition.cli", "calibrate", *bright,
                           "--out", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    pattern = read_pattern(out)
    dim_scene = render_set("microtubules", "tirf-sim", size=256, seed=8, patterns=weak)
    dim = dim_scene.at_photons(8, CameraModel(), seed=9)
    k_true = _true_k(dim.params)
    blind = estimate_calibration(dim.raw, strict=False)
    with_calibration = estimate_calibration(dim.raw, strict=False, prior=pattern.prior())
    blind_error, _ = _worst_errors(blind, dim.params)
    k_error, _ = _worst_errors(with_calibration, dim.params)
    assert blind_error > 0.05  # blind, a carrier is lost at this light level
    assert k_error < 0.005, (k_error, with_calibration.summary(), k_true)
    # the file says what it is for
    with pytest.raises(ValueError, match="sets of 9 frames"):
        pattern.check(25, SIMOptics())
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a LiveSR pattern calibration"):
        read_pattern(tmp_path / "other.json")


def test_a_protocol_channel_reconstructs_with_a_pattern_calibration(tmp_path: Path) -> None:
    """``reconstruction: {method: wiener-sim, calibration: CAL.json}``: the file's carriers."""
    from acquisition.protocol import Protocol, check_protocol
    from acquisition.reconstruction import channel_reconstructor
    from inference.wiener_sim.pattern_file import combine, write_pattern
    from yamlconfig.located import ConfigError

    scene = render_set("er", "tirf-sim", size=128, seed=10)
    bright = scene.at_photons(500, CameraModel(), seed=11)
    estimate = estimate_calibration(bright.raw, prior=PatternPrior())
    write_pattern(tmp_path / "cal.json", combine([estimate], SIMOptics(), ["bright"]), [estimate])
    protocol = Protocol.model_validate({
        "channels": [{"preset": "488", "power_mw": 1, "exposure_ms": 5, "reconstruction": {
            "method": "wiener-sim", "calibration": str(tmp_path / "cal.json")}}]})
    assert not check_protocol(protocol)
    built = channel_reconstructor(protocol, protocol.channels[0], None)
    assert built is not None
    reconstructor, info = built
    assert info["pattern_calibration"] == "cal.json"
    assert len(info["pattern_calibration_sha256"]) == 64
    image = reconstructor.reconstruct(scene.at_photons(30, CameraModel(), seed=12).raw)
    assert image.shape == (256, 256)
    used = reconstructor.calibration.k_per_um  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.abs(used), np.abs(estimate.k_per_um))  # as calibrated
    missing = Protocol.model_validate({
        "channels": [{"preset": "488", "power_mw": 1, "exposure_ms": 5, "reconstruction": {
            "method": "wiener-sim", "calibration": str(tmp_path / "nowhere.json")}}]})
    assert any("calibration: no such file" in p for p in check_protocol(missing))
    with pytest.raises((ConfigError, ValueError), match="takes no pattern calibration"):
        Protocol.model_validate({"channels": [{
            "preset": "488", "power_mw": 1, "exposure_ms": 5, "reconstruction": {
                "method": "none", "calibration": str(tmp_path / "cal.json")}}]})


def test_the_pattern_device_reports_the_expected_carriers() -> None:
    """The simulated pattern device reports period and angle; a Wiener-SIM channel uses them."""
    from acquisition.modes import set_mode_illumination
    from acquisition.protocol import Protocol
    from acquisition.reconstruction import channel_reconstructor, use_device_pattern
    from hardware.microscope import Microscope
    from simulators.illumination import default_patterns, k_vectors
    from simulators.optics import Optics

    protocol = Protocol.model_validate({"mode": "gi-sim", "channels": [{
        "preset": "560", "power_mw": 1, "exposure_ms": 5,
        "reconstruction": {"method": "wiener-sim"}}]})
    channel = protocol.channels[0]
    with Microscope.open("demo") as scope:
        set_mode_illumination(scope, protocol)
        reported = scope.expected_pattern(560)
        built = channel_reconstructor(protocol, channel, None)
        use_device_pattern(built, channel, scope)
    assert reported is not None and built is not None
    truth = k_vectors(default_patterns("gi-sim"), Optics.for_line(560).cutoff_per_nm) * 1e3
    assert reported.period_nm == pytest.approx(1e3 / np.hypot(*truth[0]), rel=1e-4)
    reconstructor, info = built
    expected = reconstructor.prior.expected(3)  # type: ignore[attr-defined]
    np.testing.assert_allclose(expected, truth, atol=1e-3)
    assert info["pattern_expected"]["source"] == "Pattern.Period-nm-560, Pattern.Angle-deg"
    # settings can say that a device reports no pattern: nothing is expected then
    from hardware.settings import load_settings

    quiet = load_settings(None, pattern={"period_property": None})
    assert quiet.pattern is not None and quiet.pattern.period_property_of(560) is None


def test_settings_name_missing_pattern_properties(tmp_path: Path) -> None:
    """A settings file naming period/angle properties the device lacks is refused, located."""
    from hardware.microscope import Microscope
    from yamlconfig.located import ConfigError

    settings = tmp_path / "roles.yaml"
    settings.write_text("pattern:\n  angle_property: Orientation\n")
    with pytest.raises(ConfigError, match=r"roles.yaml:2.*no property 'Orientation'"):
        Microscope.open("demo", settings=settings)
