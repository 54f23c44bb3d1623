"""The one registry of reconstruction methods: :func:`build_reconstructor` by name.

The acquisition runner and the GUI (:func:`acquisition.reconstruction.channel_reconstructor`),
the evaluation (:func:`inference.evaluation.methods.build_methods`), ``livesr predict --backend``
and ``livesr compile`` all build their reconstructor here, so they run the same path:

- ``wf``: :class:`WidefieldReconstructor`, the bicubically upsampled mean (the baseline);
- ``wiener-sim``: :class:`~inference.wiener_sim.WienerSIMReconstructor` (the pattern estimated
  once, a live run) or :class:`SetwiseWienerSIM` (estimated from every set, the evaluation);
- ``dfcan``, ``dfcan-sim``, ``dfcan-sisr``, ``dfgan``: a weights file on an inference backend
  (:func:`inference.backends.select_backend`; ``auto``: the fastest that works here).

It sits above :mod:`inference.reconstructor` (the interface) and the methods, which import that
interface: the registry living there would make an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from inference.backends.export_onnx import file_sha256
from inference.predict.official import resolve_mode
from inference.reconstructor import Reconstructor, check_frames

if TYPE_CHECKING:
    import numpy as np

    from inference.models.dfcan import DFCAN
    from inference.predict.normalisation import Normalisation

__all__ = [
    "DLSR_NAMES",
    "RECONSTRUCTOR_NAMES",
    "BuiltReconstructor",
    "SetwiseWienerSIM",
    "WidefieldReconstructor",
    "build_reconstructor",
    "file_sha256",
]

#: the DFCAN-family names: a weights file run on an inference backend
DLSR_NAMES: tuple[str, ...] = ("dfcan", "dfcan-sim", "dfcan-sisr", "dfgan")
#: every name :func:`build_reconstructor` knows
RECONSTRUCTOR_NAMES: tuple[str, ...] = ("wf", "wiener-sim", *DLSR_NAMES)


class WidefieldReconstructor:
    """The wide-field baseline: the mean of the set, bicubically upsampled to the SR grid.

    The intensities are the camera's (not rescaled to [0, 1]), as the evaluation has always
    scored them.
    """

    name = "wf"
    frames_per_set: int | None = None

    def __init__(self, scale: int = 2) -> None:
        self.scale = scale

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Average the set to wide-field and upsample it bicubically by ``scale``."""
        from inference.training.metrics import upsample_wf

        stack = check_frames(frames, self.frames_per_set, self.name)
        return upsample_wf(stack.mean(axis=0), self.scale)


class SetwiseWienerSIM:
    """Wiener-SIM with the pattern estimated from each set itself (the evaluation's ``wiener-sim``).

    This is what a conventional reconstruction of single sets would do.

    An estimate of low confidence (a dim or sparse set) is used all the same; its notes are kept
    in :attr:`notes` until the next set. Runs the NumPy Wiener filter.

    Parameters
    ----------
    frames_per_set
        Raw frames per set (9 or 25); ``None``: whatever each set holds (the scale then reads
        2, that of a 9-frame set).
    """

    name = "wiener-sim"

    def __init__(self, frames_per_set: int | None = None) -> None:
        from inference.wiener_sim.calibration import SIMGeometry

        self.frames_per_set = frames_per_set
        self.scale: int = SIMGeometry.for_frames(frames_per_set or 9).scale
        #: notes of the last set's pattern estimate (e.g. a low-confidence calibration)
        self.notes: tuple[str, ...] = ()

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Estimate the pattern from the set, keep its notes, and Wiener-reconstruct the set."""
        from inference.wiener_sim.estimation import estimate_calibration
        from inference.wiener_sim.wiener_reconstructor import WienerSIMReconstructor

        stack = check_frames(frames, self.frames_per_set, self.name)
        wiener = WienerSIMReconstructor(frames_per_set=stack.shape[0])
        calibration = estimate_calibration(stack, wiener.optics, otf=wiener.otf,
                                           taper_px=wiener.settings.taper_px, strict=False)
        wiener.use_calibration(calibration)
        self.notes = tuple(calibration.notes)
        return wiener.reconstruct(stack)


@dataclass(frozen=True)
class BuiltReconstructor:
    """What :func:`build_reconstructor` returns: the reconstructor and its metadata.

    ``info`` holds what a run records: ``method``, ``model``, ``scale``, ``backend`` and, for a
    DFCAN, ``in_channels``, ``weights`` (file name), ``weights_sha256`` and, when one was
    given, its ``normalisation`` (its settings as built).
    """

    reconstructor: Reconstructor
    info: dict[str, Any] = field(default_factory=dict)


def build_reconstructor(
    name: str,
    *,
    weights: str | Path | None = None,
    model: DFCAN | None = None,
    backend: str = "auto",
    device: str | None = None,
    precision: str | None = None,
    shape: tuple[int, int] | None = None,
    frames_per_set: int | None = None,
    scale: int | None = None,
    wiener_estimate: Literal["first-set", "every-set"] = "first-set",
    pattern: str | Path | None = None,
    postprocess: bool = True,
    cache_dir: str | Path | None = None,
    compile: str | None = None,
    normalisation: Normalisation | None = None,
) -> BuiltReconstructor:
    """Build the reconstructor called ``name``, and its metadata.

    Parameters
    ----------
    name
        ``wf`` (:class:`WidefieldReconstructor`), ``wiener-sim``, or a DFCAN-family name:
        ``dfcan`` (any DFCAN), ``dfcan-sim`` (a raw-SIM model), ``dfcan-sisr`` (a one-image
        model), ``dfgan`` (a DFGAN generator).
    weights, model
        A DFCAN-family name needs a weights file (``.safetensors`` or Keras ``.h5``), or the
        model already loaded (``weights`` then only names it in the metadata).
    backend, device, precision, shape, postprocess, cache_dir, compile
        How a DFCAN runs: passed to :func:`inference.backends.select_backend` (``auto``: the
        fastest backend that works here, with fallback); ``shape``: build for it now.
    frames_per_set
        Raw frames per set: the ``wiener-sim`` geometry (9 or 25; ``None``: 9, or each set's
        own with ``every-set``).
    scale
        The scale the caller's data needs: ``wf`` upsamples by it (default 2); a DFCAN or a
        ``first-set`` Wiener-SIM of another scale is refused.
    wiener_estimate
        ``first-set``: estimate the SIM pattern from the first set and reuse it (a live run,
        Wiener backend ``auto``); ``every-set``: estimate from each set, low confidence
        allowed and noted (:class:`SetwiseWienerSIM`, the evaluation's).
    pattern
        A pattern calibration file (``livesr calibrate``) for a ``first-set`` Wiener-SIM: its
        carriers are used as they are, only phases and modulation are estimated.
    normalisation
        How a DFCAN scales its sets (:class:`~inference.predict.normalisation.Normalisation`:
        per set as the official predict, or anchored for a run); default per set.

    Raises
    ------
    ValueError
        An unknown name, missing or unfit weights (wrong kind or scale), Wiener-SIM not
        installed, an anchored normalisation for a method other than a DFCAN.
    """
    if normalisation is not None and normalisation.anchored and name not in DLSR_NAMES:
        raise ValueError(f"{name}: anchored normalisation is for the DFCAN family only")
    if name == "wf":
        wf = WidefieldReconstructor(scale or 2)
        return BuiltReconstructor(wf, {"method": "wf", "model": "wf", "scale": wf.scale,
                                       "backend": "numpy"})
    if name == "wiener-sim":
        return _wiener_sim(frames_per_set, scale, wiener_estimate, pattern)
    if name in DLSR_NAMES:
        return _dlsr(name, weights, model, scale, normalisation, backend=backend,
                     device=device, precision=precision, shape=shape, postprocess=postprocess,
                     cache_dir=cache_dir, compile=compile)
    raise ValueError(f"unknown reconstruction {name!r} (one of {', '.join(RECONSTRUCTOR_NAMES)})")


def _wiener_sim(frames_per_set: int | None, scale: int | None,
                estimate: Literal["first-set", "every-set"],
                pattern: str | Path | None = None) -> BuiltReconstructor:
    """Wiener-SIM, the pattern estimated once (live) or from every set (evaluation)."""
    try:
        from inference.wiener_sim.wiener_reconstructor import WienerSIMReconstructor
    except ImportError:
        raise ValueError("wiener-sim is not available in this installation") from None
    info: dict[str, Any] = {"method": "wiener-sim", "model": "wiener-sim"}
    if estimate == "every-set":
        setwise = SetwiseWienerSIM(frames_per_set)
        return BuiltReconstructor(setwise, {**info, "scale": setwise.scale,
                                            "backend": "NumpyBackend"})
    if estimate != "first-set":
        raise ValueError(f"wiener_estimate must be first-set or every-set, not {estimate!r}")
    wiener = WienerSIMReconstructor(frames_per_set=frames_per_set or 9, backend="auto")
    if pattern is not None:
        from inference.wiener_sim.pattern_file import read_pattern

        calibrated = read_pattern(pattern)
        try:
            calibrated.check(wiener.frames_per_set, wiener.optics)
        except ValueError as exc:
            raise ValueError(f"{pattern}: {exc}") from None
        wiener.prior = calibrated.prior()
        info.update(pattern_calibration=Path(pattern).name,
                    pattern_calibration_sha256=file_sha256(Path(pattern)))
    if scale is not None and wiener.scale != scale:
        raise ValueError(f"wiener-sim: {wiener.frames_per_set} frames per set give "
                         f"{wiener.scale}×, the data {scale}×")
    info.update(scale=wiener.scale, backend=type(wiener.backend).__name__)
    # cast: its frames_per_set is narrower (int) than the Protocol's; callers only read it
    return BuiltReconstructor(cast("Reconstructor", wiener), info)


def _dlsr(name: str, weights: str | Path | None, model: DFCAN | None, scale: int | None,
          normalisation: Normalisation | None, backend: str,
          **options: Any) -> BuiltReconstructor:
    """Build a DFCAN-family network from its weights, checked against ``name`` and ``scale``.

    It runs on ``backend`` (:func:`~inference.backends.select_backend` with ``options``) and
    scales its sets by ``normalisation`` (default: per set).
    """
    from inference.backends import select_backend
    from inference.models.dfcan import DFCAN
    from inference.models.weights import load_model

    path = Path(weights) if weights is not None else None
    network: object
    if model is not None:
        network = model
    elif path is not None:
        network = load_model(path)
    else:
        raise ValueError(f"{name}: needs a weights file")
    label = path if path is not None else "the model"
    if not isinstance(network, DFCAN):
        raise ValueError(f"{label}: holds a {type(network).__name__}, not a DFCAN generator")
    config = network.config
    if scale is not None and config.scale != scale:
        raise ValueError(f"{name}: {label} upsamples {config.scale}×, the data {scale}×")
    if name == "dfcan-sim" and config.in_channels == 1:
        raise ValueError(f"{name}: {label} is a single-image (SISR) model")
    if name == "dfcan-sisr" and config.in_channels != 1:
        raise ValueError(f"{name}: {label} takes {config.in_channels} raw frames, "
                         "not one wide-field image")
    runner = select_backend(backend, network, **options)
    info: dict[str, Any] = {"method": name,
                            "model": f"dfcan-{resolve_mode(None, config.in_channels)}"}
    if path is not None:
        info.update(weights=path.name, weights_sha256=file_sha256(path))
    info.update(scale=int(config.scale), in_channels=int(config.in_channels),
                backend=runner.description)
    if normalisation is not None:
        runner.normalisation = normalisation
        info["normalisation"] = normalisation.to_dict()
    # cast: a FallbackBackend's attributes are read-only properties; callers only read them
    return BuiltReconstructor(cast("Reconstructor", runner), info)
