"""Crash-safe frame journals: raw bytes appended to a ``.bin`` file, one JSON line per frame.

A journal is two files side by side, ``NAME.bin`` and ``NAME.jsonl``. The first JSON line is a
header (what the stream holds: dtype, frame shape, channels, planes per time point, pixel size,
…); then, for every frame, its bytes are appended to the ``.bin`` file and flushed, and only then
its JSON line (offset, t, c, z, timestamp, exposure, powers, …) is written and flushed. A process
killed at any moment therefore leaves every frame whose line is complete readable, and at most
one torn line or one frame's worth of orphan bytes at the end, which :func:`read_journal`
ignores. (Flushing hands the data to the operating system, which keeps it across a killed
process; a power cut is another matter.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["JournalContents", "JournalWriter", "read_journal"]

VERSION = 1


class JournalWriter:
    """Appends frames of one dtype and shape to ``NAME.bin`` / ``NAME.jsonl``."""

    def __init__(self, stem: Path, header: Mapping[str, Any]) -> None:
        self.stem = stem
        self.dtype = np.dtype(header["dtype"])
        self.shape = tuple(int(v) for v in header["shape"])
        stem.parent.mkdir(parents=True, exist_ok=True)
        self.bin_path, self.index_path = stem.with_suffix(".bin"), stem.with_suffix(".jsonl")
        if self.bin_path.exists() or self.index_path.exists():
            raise FileExistsError(f"a journal already exists at {self.index_path}")
        self._bin = open(self.bin_path, "wb")  # noqa: SIM115 (held for the run)
        self._index = open(self.index_path, "w", encoding="utf-8")  # noqa: SIM115
        self._index.write(json.dumps({"livesr_journal": VERSION, **header}) + "\n")
        self._index.flush()
        self.frames = 0
        self.offset = 0

    def append(self, frame: np.ndarray, meta: Mapping[str, Any]) -> None:
        """Write one frame, then its index line (each flushed)."""
        if frame.shape != self.shape:
            raise ValueError(f"{self.stem.name}: frame shape {frame.shape} is not the "
                             f"journal's {self.shape}")
        data = np.ascontiguousarray(frame, dtype=self.dtype)
        self._bin.write(data.data.cast("B"))
        self._bin.flush()
        line = {"i": self.frames, "offset": self.offset, **meta}
        self._index.write(json.dumps(line, default=_jsonable) + "\n")
        self._index.flush()
        self.frames += 1
        self.offset += data.nbytes

    def close(self) -> None:
        """Close the ``.bin`` and ``.jsonl`` files (safe to call twice)."""
        for f in (self._bin, self._index):
            if not f.closed:
                f.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class JournalContents:
    """What a journal on disk holds: its header and the complete frames' index lines."""

    stem: Path
    header: dict[str, Any]
    frames: list[dict[str, Any]] = field(default_factory=list)
    #: index lines that were cut off (a kill while the line was written)
    torn_lines: int = 0
    #: frames whose line is complete but whose bytes are not all on disk
    short_frames: int = 0

    @property
    def dtype(self) -> np.dtype[Any]:
        """The frames' data type."""
        return np.dtype(str(self.header["dtype"]))

    @property
    def shape(self) -> tuple[int, int]:
        """The frames' ``(height, width)``."""
        h, w = self.header["shape"]
        return int(h), int(w)

    def data(self) -> np.ndarray:
        """Map the ``.bin`` file read-only as a ``(n_bytes,)`` uint8 array (empty if no bytes)."""
        path = self.stem.with_suffix(".bin")
        if path.stat().st_size == 0:
            return np.zeros(0, np.uint8)
        return np.memmap(path, dtype=np.uint8, mode="r")

    def frame(self, data: np.ndarray, entry: Mapping[str, Any]) -> np.ndarray:
        """Return the frame of index line ``entry`` as a view of ``data`` (from :meth:`data`)."""
        nbytes = self.dtype.itemsize * self.shape[0] * self.shape[1]
        start = int(entry["offset"])
        return data[start:start + nbytes].view(self.dtype).reshape(self.shape)


def read_journal(stem: Path) -> JournalContents:
    """Read the header and every complete frame of the journal ``stem`` (``.bin``/``.jsonl``).

    A torn last line and orphan bytes after the last complete frame are ignored.
    """
    index_path, bin_path = stem.with_suffix(".jsonl"), stem.with_suffix(".bin")
    raw_lines = index_path.read_bytes().split(b"\n")
    # everything after the last newline is a line cut off mid-write
    torn = 1 if raw_lines and raw_lines[-1].strip() else 0
    lines = [line for line in raw_lines[:-1] if line.strip()]
    if not lines:
        raise ValueError(f"{index_path}: no journal header (the run stopped before its first "
                         "frame)")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{index_path}:1: corrupt journal header: {exc}") from None
    if header.get("livesr_journal") != VERSION:
        raise ValueError(f"{index_path}: not a LiveSR journal (version "
                         f"{header.get('livesr_journal')!r})")
    contents = JournalContents(stem, header, torn_lines=torn)
    size = bin_path.stat().st_size if bin_path.exists() else 0
    nbytes = np.dtype(header["dtype"]).itemsize * int(np.prod(header["shape"]))
    for number, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{index_path}:{number}: corrupt index line: {exc}") from None
        if int(entry["offset"]) + nbytes > size:
            contents.short_frames += 1
            continue
        contents.frames.append(entry)
    return contents
