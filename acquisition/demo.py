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

__all__ = ["bundled_weights", "demo_protocol"]


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
