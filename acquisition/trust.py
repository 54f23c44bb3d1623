"""A channel's trust signal per SR set, and the fallback for the sets below its threshold.

:class:`TrustedReconstructor` wraps a DFCAN channel's reconstructor: after each set it measures
the set's trust (:class:`inference.evaluation.trust.TrustMeter`, higher = more trustworthy) and
reports it with the set (``trust``, ``trust_signal``, ``trust_low``; the SR JSON line holds it).
With a fallback, a set whose trust is below the threshold is shown and saved as the Wiener-SIM
(or upsampled wide-field) reconstruction of the same set instead, and its report says so
(``shown: wiener-sim``). :class:`TrustTally` gathers the values per channel for ``run.json``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from acquisition.protocol import TrustSpec
    from acquisition.set_info import SetInfo
    from inference.evaluation.trust import TrustReading
    from inference.reconstructor import Reconstructor
    from inference.streaming import StreamResult

__all__ = ["Meter", "TrustTally", "TrustedReconstructor", "trusted"]


class Meter(Protocol):
    """What measures a set's trust (:class:`~inference.evaluation.trust.TrustMeter`)."""

    signal: str

    def measure(self, frames: np.ndarray, sr: np.ndarray) -> TrustReading:
        """Measure the trust of ``sr``, the SR image of the raw set ``frames``."""
        ...


class TrustedReconstructor:
    """A reconstructor whose every set gets a trust value, and a fallback below the threshold.

    Parameters
    ----------
    inner
        The channel's reconstructor (a DFCAN on its backend).
    meter
        Measures each set's trust.
    threshold
        Sets whose trust is below it are *low* (``None``: only measured).
    fallback
        ``none`` (low sets are only flagged), ``wiener-sim`` (the meter's Wiener-SIM image of
        the set, or a reconstruction by ``fallback_reconstructor``) or ``wf`` (the upsampled
        wide field, scaled to [0, 1]).
    fallback_reconstructor
        What reconstructs a low set when the meter gives no image to fall back to.
    """

    def __init__(self, inner: Reconstructor, meter: Meter, threshold: float | None = None,
                 fallback: str = "none",
                 fallback_reconstructor: Reconstructor | None = None) -> None:
        if fallback not in ("none", "wiener-sim", "wf"):
            raise ValueError(f"fallback must be none, wiener-sim or wf, not {fallback!r}")
        self.inner = inner
        self.meter = meter
        self.threshold = threshold
        self.fallback = fallback
        self.fallback_reconstructor = fallback_reconstructor
        self.name = inner.name
        self.scale = inner.scale
        self.frames_per_set = inner.frames_per_set
        #: what the inner reconstructor reported on the last set, with its trust
        self.last_report: dict[str, Any] = {}

    @property
    def normalisation(self) -> object:
        """The inner reconstructor's normalisation (an anchored DFCAN's)."""
        return getattr(self.inner, "normalisation", None)

    @property
    def wiener(self) -> object:
        """The Wiener-SIM the trust is measured against, else the fallback's (or ``None``)."""
        found = getattr(self.meter, "wiener", None)
        if found is None and self.fallback == "wiener-sim":
            return self.fallback_reconstructor
        return found

    # the streaming predictor pipelines backends that stage a set's upload
    def upload(self, frames: np.ndarray) -> tuple[np.ndarray, Any]:
        """Start the inner reconstructor's upload of ``frames`` (if it stages them)."""
        upload = getattr(self.inner, "upload", None)
        return frames, (upload(frames) if upload is not None else None)

    def complete(self, staged: tuple[np.ndarray, Any]) -> np.ndarray:
        """Finish a staged set: its SR image, or the fallback's when its trust is low."""
        frames, inner_staged = staged
        complete = getattr(self.inner, "complete", None)
        image = (complete(inner_staged) if complete is not None
                 else self.inner.reconstruct(frames))
        return self._judge(frames, image)

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Reconstruct one set; the fallback's image when its trust is below the threshold."""
        return self._judge(frames, self.inner.reconstruct(frames))

    def _judge(self, frames: np.ndarray, image: np.ndarray) -> np.ndarray:
        report = dict(getattr(self.inner, "last_report", None) or {})
        report["trust_signal"] = self.meter.signal
        try:
            reading = self.meter.measure(frames, image)
        except Exception as exc:  # a set the signal cannot judge: shown as it is, said so
            report["trust_error"] = f"{type(exc).__name__}: {exc}"
            self.last_report = report
            return image
        low = self.threshold is not None and reading.value < self.threshold
        report["trust"] = round(float(reading.value), 4)
        report["trust_low"] = bool(low)
        if low and self.fallback != "none":
            image = self._fallback_image(frames, reading)
            report["shown"] = self.fallback
        self.last_report = report
        return image

    def _fallback_image(self, frames: np.ndarray, reading: TrustReading) -> np.ndarray:
        if self.fallback == "wiener-sim" and reading.reference is not None:
            return reading.reference
        if self.fallback_reconstructor is not None:
            out = np.asarray(self.fallback_reconstructor.reconstruct(frames), dtype=np.float32)
            if self.fallback == "wf":
                low, high = float(out.min()), float(out.max())
                out = (out - low) / max(high - low, 1e-12)
            return out.astype(np.float32, copy=False)
        raise RuntimeError(f"no {self.fallback} reconstruction to fall back to")


def trusted(inner: Reconstructor, spec: TrustSpec, *, frames_per_set: int,
            structure: str | None = None) -> TrustedReconstructor:
    """Wrap a channel's reconstructor with the trust signal and fallback of its protocol."""
    from inference.evaluation.trust import TrustMeter
    from inference.registry import build_reconstructor

    meter = TrustMeter(spec.signal, frames_per_set=frames_per_set, structure=structure)
    fallback: Reconstructor | None = None
    if spec.fallback == "wf":
        fallback = build_reconstructor("wf", scale=inner.scale).reconstructor
    elif spec.fallback == "wiener-sim" and getattr(meter, "wiener", None) is None:
        fallback = build_reconstructor("wiener-sim", frames_per_set=frames_per_set,
                                       scale=inner.scale).reconstructor
    return TrustedReconstructor(inner, meter, spec.threshold, spec.fallback, fallback)


class TrustTally:
    """Per channel, every set's trust: ``run.json``'s ``summary.trust``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, dict[str, list[Any]]] = {}
        self._unmeasured: dict[str, int] = {}
        self._settings: dict[str, dict[str, Any]] = {}

    def configure(self, channel: str, signal: str, threshold: float | None,
                  fallback: str) -> None:
        """Record a channel's signal, threshold and fallback (said in the summary)."""
        with self._lock:
            self._settings[channel] = {"signal": signal, "threshold": threshold,
                                       "fallback": fallback}

    @property
    def configured(self) -> bool:
        """Whether any channel has a trust signal."""
        with self._lock:
            return bool(self._settings)

    def add(self, result: StreamResult[SetInfo]) -> None:
        """Count one result's trust (results without a trust signal are ignored)."""
        report = result.report
        if "trust_signal" not in report:
            return
        channel = result.metadata.channel
        with self._lock:
            if "trust" not in report:
                self._unmeasured[channel] = self._unmeasured.get(channel, 0) + 1
                return
            columns = self._sets.setdefault(channel, {"t": [], "p": [], "trust": [],
                                                      "low": [], "shown": []})
            columns["t"].append(result.metadata.t)
            columns["p"].append(result.metadata.p)
            columns["trust"].append(float(report["trust"]))
            columns["low"].append(bool(report.get("trust_low", False)))
            columns["shown"].append(str(report.get("shown", "sr")))

    def low_sets(self, channel: str | None = None) -> int:
        """Count the sets below the threshold so far (of ``channel``, or of every channel)."""
        with self._lock:
            return sum(sum(c["low"]) for name, c in self._sets.items()
                       if channel is None or name == channel)

    def summary(self) -> dict[str, dict[str, Any]]:
        """JSON-ready, per channel: settings, count, min, median, max, sets below, per set."""
        with self._lock:
            found: dict[str, dict[str, Any]] = {}
            for channel in sorted(set(self._settings) | set(self._sets)
                                  | set(self._unmeasured)):
                columns = self._sets.get(channel, {"t": [], "p": [], "trust": [], "low": [],
                                                   "shown": []})
                values = np.array(columns["trust"], dtype=float)
                found[channel] = {
                    **self._settings.get(channel, {}),
                    "count": int(values.size),
                    "min": float(values.min()) if values.size else None,
                    "median": float(np.median(values)) if values.size else None,
                    "max": float(values.max()) if values.size else None,
                    "below_threshold": int(sum(columns["low"])),
                    "fallback_shown": sum(s != "sr" for s in columns["shown"]),
                    "unmeasured": self._unmeasured.get(channel, 0),
                    "sets": {k: list(v) for k, v in columns.items()},
                }
            return found
