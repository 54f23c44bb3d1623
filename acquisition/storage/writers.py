"""The run's writers: ``raw/``, ``wf/`` and ``sr/`` images written in place as sets arrive.

Per position, ``raw/raw_pNNN`` holds every raw frame (``TCZYX``, Z = SIM pattern index) and
``wf/wf_pNNN`` the wide-field image (the mean) of every SIM set (``TCYX``, float32). SR images go
to ``sr/sr_pNNN_<channel>`` (``TCYX`` with one channel, as each channel may use another method
and scale; uint16, the reconstruction's [0, 1] × 65535), on the run's time axis: a set whose SR
was not saved (``save.sr: displayed``) leaves its plane at zero. Each is an OME-TIFF or OME-Zarr
created at its full size when its first set arrives (:mod:`~acquisition.storage.streams`), with
the per-frame metadata in ``STEM.jsonl`` beside it; :meth:`RunWriters.finish` only rewrites
metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from acquisition.storage.streams import (
    MetadataLog,
    StreamLayout,
    StreamReport,
    open_stream,
    rewrite_metadata,
)

if TYPE_CHECKING:
    from pathlib import Path

    from acquisition.storage.streams import ImageStream
    from hardware.frameset import FrameSet

__all__ = ["ChannelInfo", "RunWriters"]

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


class _Open:
    """One image being written: its stream, its metadata log, and each plane's time."""

    def __init__(self, stem: Path, layout: StreamLayout) -> None:
        self.stream: ImageStream = open_stream(stem, layout)
        try:
            self.log = MetadataLog(stem, layout)
        except BaseException:
            self.stream.close()
            raise
        n_planes = int(np.prod(layout.shape[:3 if len(layout.shape) == 5 else 2]))
        #: each plane's DeltaT and exposure (s), NaN until written (for the OME-XML at the end)
        self.delta_t = np.full(n_planes, np.nan)
        self.exposure = np.full(n_planes, np.nan)

    def write(self, t: int, c: int, block: np.ndarray, entries: list[dict[str, Any]]) -> None:
        """Write the block's pixels, then its metadata lines (a line means data on disk)."""
        self.stream.write(t, c, block)
        self.log.append(entries)
        layout = self.stream.layout
        first = (t * layout.shape[1] + c) * layout.planes_per_block
        for k, entry in enumerate(entries):
            self.delta_t[first + k] = float(entry["timestamp_ms"]) / 1000
            self.exposure[first + k] = float(entry["exposure_ms"]) / 1000

    def close(self) -> None:
        self.stream.close()
        self.log.close()


class RunWriters:
    """The images of one run, created as their first set arrives.

    Parameters
    ----------
    n_time_points
        The protocol's time points: every image is created with this many.
    fmt
        ``ome-tiff`` or ``ome-zarr``.
    compression
        OME-Zarr chunks: ``lz4``, ``zstd`` (lossless Blosc) or ``none``.
    """

    def __init__(self, out: Path, channels: list[ChannelInfo], frames_per_set: int,
                 pixel_size_um: float, interval_s: float, mode: str, save_wf: bool,
                 positions: list[dict[str, Any]] | None = None, sr_every: bool = True,
                 fmt: str = "ome-tiff", n_time_points: int = 1,
                 compression: str = "none") -> None:
        self.out = out
        self.channels = {c.name: c for c in channels}
        self.frames_per_set = frames_per_set
        self.pixel_size_um = pixel_size_um
        self.interval_s = interval_s
        self.mode = mode
        self.save_wf = save_wf and frames_per_set > 1
        self.positions = positions or []
        #: SR of every set (else of the displayed sets only: the other planes stay at zero)
        self.sr_every = sr_every
        self.format = fmt
        self.compression = compression if fmt == "ome-zarr" else "none"
        self.n_time_points = max(1, int(n_time_points))
        self._raw: dict[int, _Open] = {}
        self._wf: dict[int, _Open] = {}
        self._sr: dict[tuple[int, str], _Open] = {}
        self.raw_frames = self.wf_frames = self.sr_frames = 0

    def open_images(self, shape: tuple[int, int], n_positions: int) -> None:
        """Create every position's raw (and WF) image now, before the camera starts.

        Creating a long OME-TIFF writes all its IFDs (seconds for 10⁵ planes): done here, it
        does not hold up the first sets. Images not opened here open at their first set.
        """
        for p in range(n_positions):
            if p not in self._raw:
                self._open_raw(p, shape)
            if self.save_wf and p not in self._wf:
                self._open_wf(p, shape)

    # -- raw and WF (the raw writer thread)
    def write_set(self, frame_set: FrameSet) -> np.ndarray | None:
        """Write the set's raw frames (and its WF image); returns the WF image if made."""
        channel = self.channels[frame_set.channel]
        p, t = frame_set.position, frame_set.t
        raw = self._raw.get(p) or self._open_raw(p, frame_set.shape)
        common = {"t": t, "c": channel.index, "channel": channel.name,
                  "p": p, "wavelength_nm": channel.wavelength_nm,
                  "exposure_ms": frame_set.exposure_ms,
                  "laser_powers_mw": {str(k): v for k, v in frame_set.laser_powers_mw.items()},
                  "hardware_sequenced": frame_set.hardware_sequenced}
        entries = []
        for z in range(frame_set.n_frames):
            entry = {**common, "z": z, "pattern": frame_set.patterns[z],
                     "timestamp_ms": float(frame_set.timestamps_ms[z])}
            if frame_set.camera_metadata:
                entry["camera"] = frame_set.camera_metadata[z]
            entries.append(entry)
        frames = frame_set.frames if raw.stream.layout.axes == "TCZYX" else frame_set.frames[0]
        raw.write(t, channel.index, frames, entries)
        self.raw_frames += frame_set.n_frames
        if not self.save_wf:
            return None
        wf_image = frame_set.widefield()
        wf = self._wf.get(p) or self._open_wf(p, frame_set.shape)
        wf.write(t, channel.index, wf_image, [{
            **common, "z": 0, "timestamp_ms": float(frame_set.timestamps_ms[0]),
            "source_frames": frame_set.n_frames}])
        self.wf_frames += 1
        return wf_image

    def _position(self, p: int) -> dict[str, Any]:
        return self.positions[p] if p < len(self.positions) else {}

    def _layout(self, stream: str, p: int, shape: tuple[int, ...], dtype: str, axes: str,
                channels: list[ChannelInfo], pixel_size_um: float, description: str,
                annotation: dict[str, Any]) -> StreamLayout:
        return StreamLayout(
            stream=stream, name=f"{stream} p{p}", axes=axes, shape=shape, dtype=dtype,
            channels=[{"name": c.name, "wavelength_nm": c.wavelength_nm} for c in channels],
            pixel_size_um=pixel_size_um, interval_s=self.interval_s, description=description,
            annotation={"livesr.stream": stream, "livesr.mode": self.mode,
                        "livesr.position": self._position(p), **annotation},
            fmt=self.format, compression=self.compression)

    def _open_raw(self, p: int, shape: tuple[int, int]) -> _Open:
        n = self.frames_per_set
        sim = n > 1
        description = (f"LiveSR raw {self.mode} frames, {n} per set. " + SIM_Z_NOTE) if sim \
            else f"LiveSR raw {self.mode} frames"
        channels = list(self.channels.values())
        full = ((self.n_time_points, len(channels), n, *shape) if sim
                else (self.n_time_points, len(channels), *shape))
        layout = self._layout("raw", p, full, "uint16", "TCZYX" if sim else "TCYX", channels,
                              self.pixel_size_um, description,
                              {"livesr.z": "SIM pattern index" if sim else "none"})
        opened = self._raw[p] = _Open(self.out / "raw" / f"raw_p{p:03d}", layout)
        return opened

    def _open_wf(self, p: int, shape: tuple[int, int]) -> _Open:
        channels = list(self.channels.values())
        layout = self._layout("wf", p, (self.n_time_points, len(channels), *shape), "float32",
                              "TCYX", channels, self.pixel_size_um,
                              f"LiveSR wide-field images: the mean of each {self.mode} set", {})
        opened = self._wf[p] = _Open(self.out / "wf" / f"wf_p{p:03d}", layout)
        return opened

    # -- SR (the SR writer thread)
    def write_sr(self, image: np.ndarray, meta: dict[str, Any]) -> None:
        """Write one SR image (float in [0, 1]) of channel ``meta['channel']`` at its time point."""
        channel = self.channels[meta["channel"]]
        p = int(meta.get("p", 0))
        opened = self._sr.get((p, channel.name))
        if opened is None:
            info = channel.reconstruction
            scale = int(info.get("scale", 1))
            description = (f"LiveSR super-resolved images ({info.get('method')}, "
                           f"{info.get('model', '')}, scale {scale}): SR pixel = camera pixel / "
                           f"{scale}; values = output x 65535")
            if not self.sr_every:
                description += ("; only the sets shown live were saved: the other time points "
                                "are zero (their JSON lines say which were)")
            layout = self._layout(
                "sr", p, (self.n_time_points, 1, *image.shape), "uint16", "TCYX", [channel],
                self.pixel_size_um / scale, description,
                {**{f"livesr.{k}": v for k, v in info.items()},
                 "livesr.sr_sets": "every" if self.sr_every else "displayed"})
            opened = _Open(self.out / "sr" / f"sr_p{p:03d}_{channel.name}", layout)
            self._sr[(p, channel.name)] = opened
        data = np.clip(np.rint(np.asarray(image, np.float32) * 65535), 0, 65535).astype(np.uint16)
        opened.write(int(meta["t"]), 0, data, [{**meta, "c": 0}])
        self.sr_frames += 1

    # -- end
    def close(self) -> None:
        """Close every image and metadata log of the run (safe twice)."""
        for opened in self._all():
            opened.close()

    def _all(self) -> list[_Open]:
        return [*self._raw.values(), *self._wf.values(), *self._sr.values()]

    def paths(self) -> list[Path]:
        """Return the path of every image opened (raw, WF, then SR)."""
        return [o.stream.path for o in self._all()]

    def time_points_written(self) -> int:
        """Time points from the start whose raw sets are all written (every position)."""
        if not self._raw:
            return 0
        done = []
        for opened in self._raw.values():
            per_t = opened.delta_t.reshape(self.n_time_points, -1)
            complete = ~np.isnan(per_t).any(axis=1)
            done.append(int(np.argmin(complete)) if not complete.all() else len(complete))
        return min(done)

    def finish(self, n_t: int | None = None) -> list[StreamReport]:
        """Close the images and cut their time axis to ``n_t`` (default: what was written).

        Only metadata is written: the OME-XML (SizeT, each plane's DeltaT and exposure) or the
        Zarr array's shape. Returns one report per image.
        """
        self.close()
        if n_t is None:
            n_t = self.time_points_written()
        reports = []
        for opened in self._all():
            layout = opened.stream.layout
            keep = max(1, min(n_t, layout.shape[0])) * int(np.prod(layout.shape[1:-2]))
            shape = rewrite_metadata(opened.stream.path, layout, n_t,
                                     opened.delta_t[:keep], opened.exposure[:keep])
            written = int(np.count_nonzero(~np.isnan(opened.delta_t[:keep])))
            reports.append(StreamReport(opened.stream.path, shape, layout.axes, written,
                                        keep - written))
        return reports
