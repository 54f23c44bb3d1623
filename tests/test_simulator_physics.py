"""The simulated microscope's physics: WF, carriers, photon counts, seeds, resolution."""

from __future__ import annotations

import numpy as np
import pytest

from simulators import (
    STRUCTURES,
    CameraModel,
    Optics,
    PatternSettings,
    average_photon_count,
    default_patterns,
    render_set,
    simulate,
)
from simulators.camera import FastNoise
from simulators.illumination import k_vectors, phase_offsets
from simulators.optics import incoherent_otf
from simulators.pairs import training_pairs
from simulators.render import illuminate_and_detect


def test_wf_is_the_mean_of_the_raw_set() -> None:
    result = simulate("er", "tirf-sim", photons=50, size=64, seed=1)
    assert result.raw.shape == (9, 64, 64) and result.raw.dtype == np.uint16
    np.testing.assert_allclose(result.wf, result.raw.astype(np.float64).mean(axis=0), rtol=1e-6)


def _carrier_peak(frame: np.ndarray, wf: np.ndarray, pixel_nm: float, cutoff_per_um: float,
                  pad: int = 4) -> np.ndarray:
    """(k_y, k_x) in cycles/µm of the strongest peak of |FFT(frame − WF)| beyond 0.3·k_c."""
    d = (frame - wf).astype(np.float64)
    d *= np.outer(np.hanning(d.shape[0]), np.hanning(d.shape[1]))
    n = d.shape[0] * pad
    spectrum = np.abs(np.fft.fft2(d, s=(n, n)))
    f = np.fft.fftfreq(n, d=pixel_nm) * 1e3
    fy, fx = np.meshgrid(f, f, indexing="ij")
    spectrum[np.hypot(fy, fx) < 0.3 * cutoff_per_um] = 0
    iy, ix = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    return np.array([fy[iy, ix], fx[iy, ix]])


@pytest.mark.parametrize("mode", ["tirf-sim", "gi-sim", "nl-sim"])
def test_carriers_sit_at_the_configured_frequency_and_angle(mode: str) -> None:
    """A dense bead layer (a SIM calibration slide) through the illumination and detection
    path: each orientation's carrier within 1 % of the configured k-vector.
    """
    optics, patterns = Optics(), default_patterns(mode)  # type: ignore[arg-type]
    fine = 6 if patterns.sr_factor == 3 else 4
    rng = np.random.default_rng(0)
    beads = rng.poisson(0.5, (128 * fine, 128 * fine)).astype(np.float32)
    kvecs = k_vectors(patterns, optics.cutoff_per_nm)
    raw = illuminate_and_detect(beads, optics.camera_pixel_nm / fine, fine, optics, patterns,
                                kvecs, phase_offsets(patterns, rng))
    assert raw.shape[0] == patterns.n_frames
    wf = raw.mean(axis=0)
    for o, k in enumerate(kvecs * 1e3):
        found = _carrier_peak(raw[o * patterns.n_phases], wf, optics.camera_pixel_nm,
                              optics.cutoff_per_nm * 1e3)
        error = min(np.linalg.norm(found - k), np.linalg.norm(found + k)) / np.linalg.norm(k)
        assert error < 0.01, f"orientation {o}: carrier {found} vs configured {k}"


def test_params_describe_the_pattern() -> None:
    p = simulate("microtubules", "tirf-sim", 100, 64, 0).params
    pat = p["pattern"]
    k = np.array(pat["k_vectors_per_um"])
    assert k.shape == (3, 2) and np.array(pat["phases_rad"]).shape == (3, 3)
    np.testing.assert_allclose(np.hypot(*k.T), 0.9 * 2 * 1.49 / 525 * 1e3, rtol=1e-9)
    np.testing.assert_allclose(np.diff(np.arctan2(k[:, 0], k[:, 1])), np.pi / 3, atol=1e-9)
    assert p["camera_pixel_nm"] == 62.6 and p["sr_pixel_nm"] == pytest.approx(31.3)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("photons", [15, 100, 600])
def test_average_photon_count_is_the_requested_level(structure: str, photons: float) -> None:
    result = simulate(structure, "tirf-sim", photons, size=128, seed=2)
    measured = average_photon_count(result.raw, CameraModel())
    assert measured == pytest.approx(photons, rel=0.05)


def test_camera_converts_photons_to_adu_as_specified() -> None:
    """A flat field of P photons: mean ADU = offset + gain·QE·P, variance = gain²·QE·P + σ²."""
    camera = CameraModel(qe=0.8, gain=2.0, offset=100.0, read_noise_e=1.5, offset_spread=0.0,
                         gain_spread=0.0)
    maps = camera.pixel_maps((256, 256))
    adu = maps.expose(np.full((256, 256), 50.0, np.float32), np.random.default_rng(0))
    assert adu.mean() == pytest.approx(100 + 2.0 * 0.8 * 50, rel=2e-3)
    read_var = float((maps.read_sigma_adu.astype(np.float64) ** 2).mean())
    assert adu.astype(np.float64).var() == pytest.approx(4.0 * 0.8 * 50 + read_var, rel=0.03)
    saturated = maps.expose(np.full((256, 256), 1e6, np.float32), np.random.default_rng(0))
    assert saturated.max() == 65535  # clipped to the bit depth


def test_fast_noise_has_the_cameras_mean_and_variance_per_pixel() -> None:
    """Real-time noise: per pixel, mean = offset + gain·QE·P and variance = gain²·QE·P + σ²
    (gain, offset and read-noise maps included); successive frames are independent; a frame
    named by a cached key reuses its moments, and a bright one saturates.
    """
    camera = CameraModel()
    maps = camera.pixel_maps((48, 48))
    noise = FastNoise(maps, np.random.default_rng(3))
    photons = np.random.default_rng(4).uniform(0.0, 60.0, (48, 48)).astype(np.float32)
    calls = []

    def expected() -> np.ndarray:
        calls.append(1)
        return photons

    frames = np.stack([noise.expose_key("scene", expected) for _ in range(1500)])
    assert len(calls) == 1  # the moments were computed once
    adu = frames.astype(np.float64)
    gain, qe = maps.gain.astype(np.float64), camera.qe
    mean = maps.offset + gain * qe * photons
    var = gain**2 * qe * photons + maps.read_sigma_adu.astype(np.float64) ** 2
    # per pixel over 1500 frames: the mean to 5.5 standard errors, the variance to 30 %
    # (8 standard errors), over all pixels to 3 % (rounding to whole ADU adds 1/12); without
    # the read noise the darkest pixels' variance would be ~99 % low, without the shot noise
    # the brightest pixels' would
    assert np.abs(adu.mean(0) - mean).max() < 5.5 * np.sqrt(var.max() / 1500)
    ratio = (adu.var(0) - 1 / 12) / var
    assert np.abs(ratio - 1).max() < 0.3 and abs(ratio.mean() - 1) < 0.03
    residual = adu - mean
    lag1 = (residual[1:] * residual[:-1]).mean() / residual.var()
    assert abs(lag1) < 0.02
    assert not any(np.array_equal(frames[i], frames[i + 1]) for i in range(len(frames) - 1))
    saturated = noise.expose(np.full((48, 48), 1e6, np.float32))
    assert saturated.min() == saturated.max() == 65535
    cached = noise.expose_key("bright", lambda: np.full((48, 48), 1e6, np.float32))
    assert cached.min() == 65535  # cached moments that can leave the ADU range are clipped
    # a cache too small to hold a set is not used (it would only thrash)
    uncached = FastNoise(maps, np.random.default_rng(3), cache_bytes=26 * 2 * 4 * 48 * 48)
    calls.clear()
    frames = np.stack([uncached.expose_key("scene", expected) for _ in range(2)])
    assert len(calls) == 2 and abs(frames.mean() - mean.mean()) < 1.0


def test_average_photon_count_of_a_known_image() -> None:
    """A disc of 40 photons/pixel on a dark field, as camera counts, reads back as 40."""
    camera = CameraModel()
    yy, xx = np.mgrid[:128, :128]
    photons = np.where(np.hypot(yy - 64, xx - 64) < 30, 40.0, 0.0)
    adu = camera.offset + camera.gain * camera.qe * photons
    assert average_photon_count(adu[None].repeat(9, axis=0), camera) == pytest.approx(40, rel=0.01)


def test_ground_truth_is_registered_to_the_camera_grid() -> None:
    """GT binned 2×2 lands on the camera grid: no shift against the noiseless WF beyond 0.1 px
    (a half-SR-pixel slip in the grid convention would show as 0.25 px).
    """
    from skimage.registration import phase_cross_correlation

    scene = render_set("microtubules", "tirf-sim", 128, seed=5)
    wf = scene.raw_photons.mean(axis=0)
    h = scene.gt.shape[0] // 2
    gt_binned = scene.gt.reshape(h, 2, h, 2).sum(axis=(1, 3))
    shift, _, _ = phase_cross_correlation(wf, gt_binned, upsample_factor=50)
    assert np.abs(shift).max() < 0.1, shift


def test_wf_mode_photon_count_holds_for_a_single_frame() -> None:
    result = simulate("microtubules", "wf", 40, size=128, seed=4)
    assert result.raw.shape == (1, 128, 128)
    assert average_photon_count(result.raw) == pytest.approx(40, rel=0.05)


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a = simulate("factin", "tirf-sim", 30, 64, seed=7)
    b = simulate("factin", "tirf-sim", 30, 64, seed=7)
    c = simulate("factin", "tirf-sim", 30, 64, seed=8)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.gt, b.gt)
    assert not np.array_equal(a.raw, c.raw)


def _spectral_support_per_um(image: np.ndarray, pixel_nm: float, rel: float = 1e-9) -> float:
    """Highest radial frequency (cycles/µm) whose mean power exceeds ``rel`` × low-frequency."""
    power = np.abs(np.fft.fft2(image)) ** 2
    f = np.fft.fftfreq(image.shape[0], d=pixel_nm) * 1e3
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij")).ravel()
    bins = np.arange(0, radius.max(), f[1])
    which = np.digitize(radius, bins)
    profile = (np.bincount(which, power.ravel()) / np.maximum(np.bincount(which), 1))[1:len(bins)]
    return float(bins[np.nonzero(profile > rel * profile[1])[0].max()])


@pytest.mark.parametrize(("mode", "expected_ratio"), [("tirf-sim", 1.9), ("nl-sim", 2.7)])
def test_ground_truth_is_sharper_than_wf_by_the_sim_factor(mode: str,
                                                           expected_ratio: float) -> None:
    """GT's spectrum reaches k_c·(1 + h·k_p/k_c), WF's stops at k_c (noiseless spectra)."""
    scene = render_set("microtubules", mode, 128 if mode == "nl-sim" else 256, seed=3)  # type: ignore[arg-type]
    p = scene.params
    wf_support = _spectral_support_per_um(scene.raw_photons.mean(axis=0), p["camera_pixel_nm"])
    gt_support = _spectral_support_per_um(scene.gt, p["sr_pixel_nm"])
    assert wf_support == pytest.approx(p["detection_cutoff_per_um"], rel=0.04)
    assert gt_support / wf_support == pytest.approx(expected_ratio, rel=0.04)


def test_otf_forms() -> None:
    ideal = incoherent_otf((64, 64), 50.0, 0.005, "ideal")
    damped = incoherent_otf((64, 64), 50.0, 0.005, "damped", curvature=0.3)
    assert ideal[0, 0] == pytest.approx(1.0) and damped[0, 0] == pytest.approx(1.0)
    assert ideal[0, 20] == 0.0  # 20 / (64·50 nm) = 0.00625 > cutoff 0.005
    assert 0 < damped[0, 5] < ideal[0, 5]


def test_nonlinear_sim_has_25_frames_and_a_3x_ground_truth() -> None:
    result = simulate("ccp", "nl-sim", 100, 64, 0)
    assert result.raw.shape == (25, 64, 64) and result.gt.shape == (192, 192)
    assert result.params["pattern"]["second_harmonic"] > 0


def test_training_pairs_cover_levels_and_are_reproducible() -> None:
    kwargs = {"structures": ("er", "ccp"), "photon_levels": (15, 300), "size": 64,
              "n_samples": 2, "seed": 5}
    pairs = list(training_pairs(input_kind="sim", **kwargs))  # type: ignore[arg-type]
    assert [(p.structure, p.photons) for p in pairs] == [
        ("er", 15), ("er", 300), ("ccp", 15), ("ccp", 300)]
    assert pairs[0].input.shape == (9, 64, 64) and pairs[0].target.shape == (128, 128)
    assert pairs[0].sample_seed == pairs[1].sample_seed != pairs[2].sample_seed
    assert pairs[1].input.mean() > pairs[0].input.mean()
    again = list(training_pairs(input_kind="sim", **kwargs))  # type: ignore[arg-type]
    assert all(np.array_equal(a.input, b.input) for a, b in zip(pairs, again, strict=True))
    wf = next(training_pairs(input_kind="wf", **kwargs))  # type: ignore[arg-type]
    assert wf.input.shape == (64, 64)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown structure"):
        simulate("mitochondria", "tirf-sim", 100, 64)
    with pytest.raises(ValueError, match="photons"):
        simulate("er", "tirf-sim", -1, 64)
    with pytest.raises(ValueError, match="even"):
        simulate("er", "tirf-sim", 100, 63)
    with pytest.raises(ValueError, match="unknown mode"):
        default_patterns("sted")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frequency_fraction"):
        PatternSettings(frequency_fraction=1.2)
    with pytest.raises(ValueError, match="Nyquist"):
        simulate("er", "tirf-sim", 100, 64, optics=Optics(camera_pixel_nm=100.0))


def test_the_demo_camera_calibration_is_the_simulated_camera() -> None:
    """The photon count's default calibration is the simulated camera's: same photons."""
    from inference.metrics.photons import DEMO_CAMERA

    camera = CameraModel()
    assert (DEMO_CAMERA.offset, DEMO_CAMERA.gain, DEMO_CAMERA.qe) == (
        camera.offset, camera.gain, camera.qe)
    adu = np.linspace(90, 4000, 64, dtype=np.float32)
    np.testing.assert_array_equal(DEMO_CAMERA.photons_from_adu(adu), camera.photons_from_adu(adu))
