"""The bundled demo: its protocol on the simulated microscope and the weights shipped with LiveSR.

``acquisition/protocols/demo.yaml`` is a hardware-sequenced TIRF-SIM time-lapse (5 time points ×
the 488 and 560 nm channels × 9 patterns) on the demo microscope (``simulators/demo.cfg``);
:func:`demo_protocol` fills in the ROI, the time points and the bundled weights
(:func:`bundled_weights`). ``livesr demo`` (:mod:`acquisition.cli.demo`) runs it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["bundled_weights", "demo_protocol", "paced_for_sr"]


def bundled_weights() -> dict[str, Path]:
    """Find the trained weights shipped in ``inference/weights``: ``{"sim": …, "sisr": …}``.

    DFCAN-SIM for 9-frame sets, DFCAN-SISR for WF frames; those present only.
    """
    folder = resources.files("inference") / "weights"
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = entry.name.lower()
        if not name.endswith(".safetensors"):
            continue
        kind = "sisr" if "sisr" in name else "sim" if "sim" in name else None
        if kind is not None and kind not in found:
            found[kind] = Path(str(entry))
    return found


def demo_protocol(roi: int | None = None, timepoints: int | None = None,
                  weights: dict[str, Path] | None = None) -> Any:
    """Load the bundled protocol, with ``roi``/``timepoints`` overridden.

    Each channel is reconstructed by the SIM weights (else the SISR weights) when given.
    """
    from acquisition.protocol import Reconstruction, protocol_from_text

    text = (resources.files("acquisition") / "protocols" / "demo.yaml").read_text("utf-8")
    protocol = protocol_from_text(text, "demo.yaml", base=Path.cwd(), check=False)
    update: dict[str, Any] = {}
    if roi is not None:
        update["microscope"] = protocol.microscope.model_copy(update={"roi": roi or None})
    if timepoints is not None:
        if timepoints < 1:
            raise ValueError(f"--timepoints must be ≥ 1, got {timepoints}")
        update["timelapse"] = protocol.timelapse.model_copy(update={"count": timepoints})
    weights = weights or {}
    chosen = weights.get("sim") or weights.get("sisr")
    if chosen is not None:
        rec = Reconstruction(method="dfcan", weights=chosen)
        update["channels"] = [c.model_copy(update={"reconstruction": rec})
                              for c in protocol.channels]
    if not update:
        return protocol
    return protocol.edited(update)  # the copy in the output folder is the protocol as run


def paced_for_sr(protocol: Any, margin: float = 2.0) -> tuple[Any, float]:
    """Space the time points so that the SR of every set keeps up here; save every SR image.

    Times one set through each channel's reconstructor as the run builds it (after a warm-up,
    which also fills the caches the run then reuses) and sets ``interval_s`` to ``margin`` ×
    the channels' SR time per time point, rounded up to 0.5 s, unless the protocol's interval
    is already longer. The margin leaves room for the acquisition itself, which shares the CPU
    with the SR (the simulated camera renders on it). Returns the protocol and the seconds per
    set measured (the slowest channel).
    """
    import math
    import time

    import numpy as np

    from acquisition.reconstruction import channel_reconstructor

    roi = protocol.microscope.roi or 512
    frames = np.random.default_rng(0).integers(100, 2000, (protocol.frames_per_set, roi, roi),
                                                dtype=np.uint16)
    per_set = 0.0
    for channel in protocol.channels:
        built = channel_reconstructor(protocol, channel, (roi, roi))
        if built is None:
            continue
        reconstructor = built[0]
        reconstructor.reconstruct(frames)
        start = time.perf_counter()
        reconstructor.reconstruct(frames)
        per_set = max(per_set, time.perf_counter() - start)
    needed = math.ceil(2 * margin * per_set * len(protocol.channels)) / 2
    timelapse = protocol.timelapse
    update: dict[str, Any] = {"save": protocol.save.model_copy(update={"sr": "every"})}
    if needed > timelapse.interval_s:
        update["timelapse"] = timelapse.model_copy(update={"interval_s": needed})
    return protocol.edited(update), per_set
