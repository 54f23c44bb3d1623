"""The run's writers: ``raw/``, ``wf/`` and ``sr/`` journals, finalized into OME-TIFF (or OME-Zarr).

Per position, ``raw/raw_pNNN`` holds every raw frame (``TCZYX``, Z = SIM pattern index) and
``wf/wf_pNNN`` the wide-field image (the mean) of every SIM set (``TCYX``, float32). SR images go
to ``sr/sr_pNNN_<channel>`` (``TYX`` per channel, as each channel may use another method and
scale; uint16, the reconstruction's [0, 1] × 65535). Each is a crash-safe
:mod:`~acquisition.storage.journal` while the run goes, and an OME-TIFF once it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from acquisition.storage.finalize import FinalizeReport, finalize_journal
from acquisition.storage.journal import JournalWriter

if TYPE_CHECKING:
    from pathlib import Path

    from hardware.frameset import FrameSet

__all__ = ["ChannelInfo", "RunWriters", "find_journals"]

SIM_Z_NOTE = ("Z is the SIM pattern index (orientation-major: 3 orientations x 3 phases, or "
              "5 x 5 for nonlinear SIM), not a focal position")


@dataclass(frozen=True)
class ChannelInfo:
    """One protocol channel as the writers need it."""

    index: int
    name: str
    wavelength_nm: int
    #: reconstruction metadata (method, model, weights hash, backend, scale); empty: none
    reconstruction: dict[str, Any] = field(default_factory=dict)


class RunWriters:
    """Journals of one run, created as their first frame arrives."""

    def __init__(self, out: Path, channels: list[ChannelInfo], frames_per_set: int,
                 pixel_size_um: float, interval_s: float, mode: str, save_wf: bool,
                 positions: list[dict[str, Any]] | None = None, sr_every: bool = True,
                 fmt: str = "ome-tiff") -> None:
        self.out = out
        self.channels = {c.name: c for c in channels}
        self.frames_per_set = frames_per_set
        self.pixel_size_um = pixel_size_um
        self.interval_s = interval_s
        self.mode = mode
        self.save_wf = save_wf and frames_per_set > 1
        self.positions = positions or []
        #: SR of every set (else of the displayed sets only: a sparse time axis)
        self.sr_every = sr_every
        #: what the journals become when the run ends: ``ome-tiff`` or ``ome-zarr``
        self.format = fmt
        self._raw: dict[int, JournalWriter] = {}
        self._wf: dict[int, JournalWriter] = {}
        self._sr: dict[tuple[int, str], JournalWriter] = {}
        self.raw_frames = self.wf_frames = self.sr_frames = 0

    # -- raw and WF (the raw writer thread)
    def write_set(self, frame_set: FrameSet) -> np.ndarray | None:
        """Append the set's raw frames (and its WF image); returns the WF image if made."""
        channel = self.channels[frame_set.channel]
        p = frame_set.position
        raw = self._raw.get(p) or self._open_raw(p, frame_set.shape)
        common = {"t": frame_set.t, "c": channel.index, "channel": channel.name,
                  "p": p, "wavelength_nm": channel.wavelength_nm,
                  "exposure_ms": frame_set.exposure_ms,
                  "laser_powers_mw": {str(k): v for k, v in frame_set.laser_powers_mw.items()},
                  "hardware_sequenced": frame_set.hardware_sequenced}
        for z, frame in enumerate(frame_set.frames):
            meta = {**common, "z": z, "pattern": frame_set.patterns[z],
                    "timestamp_ms": float(frame_set.timestamps_ms[z])}
            if frame_set.camera_metadata:
                meta["camera"] = frame_set.camera_metadata[z]
            raw.append(frame, meta)
            self.raw_frames += 1
        if not self.save_wf:
            return None
        wf_image = frame_set.widefield()
        wf = self._wf.get(p) or self._open_wf(p, frame_set.shape)
        wf.append(wf_image, {**common, "z": 0, "timestamp_ms": float(frame_set.timestamps_ms[0]),
                             "source_frames": frame_set.n_frames})
        self.wf_frames += 1
        return wf_image

    def _position(self, p: int) -> dict[str, Any]:
        return self.positions[p] if p < len(self.positions) else {}

    def _header(self, stream: str, p: int, shape: tuple[int, int], dtype: str, axes: str,
                z: int, channels: list[ChannelInfo], pixel_size_um: float,
                description: str, annotation: dict[str, Any]) -> dict[str, Any]:
        return {"stream": stream, "name": f"{stream} p{p}", "dtype": dtype,
                "shape": list(shape), "axes": axes, "z": z,
                "channels": [{"name": c.name, "wavelength_nm": c.wavelength_nm}
                             for c in channels],
                "pixel_size_um": pixel_size_um, "pixel_size_unit": "µm",
                "interval_s": self.interval_s, "position": self._position(p),
                "description": description,
                "annotation": {"livesr.stream": stream, "livesr.mode": self.mode, **annotation},
                "format": self.format}

    def _open_raw(self, p: int, shape: tuple[int, int]) -> JournalWriter:
        n = self.frames_per_set
        sim = n > 1
        description = (f"LiveSR raw {self.mode} frames, {n} per set. " + SIM_Z_NOTE) if sim \
            else f"LiveSR raw {self.mode} frames"
        header = self._header("raw", p, shape, "uint16", "TCZYX" if sim else "TCYX", n,
                              list(self.channels.values()), self.pixel_size_um, description,
                              {"livesr.z": "SIM pattern index" if sim else "none"})
        writer = self._raw[p] = JournalWriter(self.out / "raw" / f"raw_p{p:03d}", header)
        return writer

    def _open_wf(self, p: int, shape: tuple[int, int]) -> JournalWriter:
        header = self._header("wf", p, shape, "float32", "TCYX", 1,
                              list(self.channels.values()), self.pixel_size_um,
                              f"LiveSR wide-field images: the mean of each {self.mode} set",
                              {})
        writer = self._wf[p] = JournalWriter(self.out / "wf" / f"wf_p{p:03d}", header)
        return writer

    # -- SR (the SR writer thread)
    def write_sr(self, image: np.ndarray, meta: dict[str, Any]) -> None:
        """Append one SR image (float in [0, 1]) of channel ``meta['channel']``."""
        channel = self.channels[meta["channel"]]
        p = int(meta.get("p", 0))
        writer = self._sr.get((p, channel.name))
        if writer is None:
            info = channel.reconstruction
            scale = int(info.get("scale", 1))
            header = self._header(
                "sr", p, image.shape, "uint16", "TCYX", 1, [channel],
                self.pixel_size_um / scale,
                f"LiveSR super-resolved images ({info.get('method')}, {info.get('model', '')}, "
                f"scale {scale}): SR pixel = camera pixel / {scale}; values = output x 65535",
                {f"livesr.{k}": v for k, v in info.items()})
            if not self.sr_every:
                header["sparse_t"] = True
                header["description"] += ("; only the sets shown live: T counts them, each "
                                          "one's time point is in its JSON line and DeltaT")
            writer = JournalWriter(self.out / "sr" / f"sr_p{p:03d}_{channel.name}", header)
            self._sr[(p, channel.name)] = writer
        data = np.clip(np.rint(np.asarray(image, np.float32) * 65535), 0, 65535).astype(np.uint16)
        writer.append(data, {**meta, "c": 0})
        self.sr_frames += 1

    # -- end
    def close(self) -> None:
        """Close every journal of the run."""
        for w in (*self._raw.values(), *self._wf.values(), *self._sr.values()):
            w.close()

    def stems(self) -> list[Path]:
        """Return the stem of every journal opened (raw, WF, then SR)."""
        return [w.stem for w in (*self._raw.values(), *self._wf.values(), *self._sr.values())]


def find_journals(out: Path) -> list[Path]:
    """Every journal stem under ``out/raw``, ``out/wf`` and ``out/sr`` still to finalize."""
    stems = []
    for stream in ("raw", "wf", "sr"):
        folder = out / stream
        if folder.is_dir():
            stems += sorted(p.with_suffix("") for p in folder.glob("*.bin"))
    return stems


def finalize_all(stems: list[Path]) -> list[FinalizeReport]:
    return [finalize_journal(stem) for stem in stems]
