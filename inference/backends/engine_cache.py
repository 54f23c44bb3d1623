"""A disk cache of built engines (TensorRT plans), safe against crashes and concurrent builds.

An entry is keyed by everything an engine depends on: the ONNX graph's hash, the TensorRT
version, the GPU's name and compute capability, the precision and the input shape. Each entry
is two files, ``<digest>.engine`` and ``<digest>.json`` (the key and the engine's SHA-256); both
are written atomically (temporary file, fsync, rename), the metadata last. A file lock per entry
makes a second process wait for the first one's build instead of building too. An entry whose
metadata is missing, does not match its key or its bytes, or that fails to load, is removed and
rebuilt — never trusted. A timing cache per TensorRT version and GPU makes rebuilds faster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from filelock import FileLock

from inference.backends.errors import BackendError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CacheOutcome", "EngineCache", "EngineKey", "atomic_write"]

log = logging.getLogger(__name__)
T = TypeVar("T")
FORMAT = 1


@dataclass(frozen=True)
class EngineKey:
    """What a built engine depends on."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (``input_shape`` as a list)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @property
    def digest(self) -> str:
        """The entry's file name stem."""
        text = json.dumps({"format": FORMAT, **self.as_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def timing_cache_name(self) -> str:
        """One timing cache per TensorRT version and GPU."""
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu_name).strip("-").lower()
        return f"timing-trt{self.tensorrt_version}-{gpu}-sm{self.compute_capability}.cache"


@dataclass(frozen=True)
class CacheOutcome:
    """How :meth:`EngineCache.get_or_build` got its engine."""

    built: bool
    #: why an existing entry was discarded, if one was
    discarded: str | None
    path: Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class EngineCache:
    """Built engines under ``root``, one entry per :class:`EngineKey`.

    Args:
        root: the cache folder (created when needed).
        lock_timeout: seconds to wait for another process's build (-1: forever).
    """

    def __init__(self, root: str | Path, lock_timeout: float = -1) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout

    def engine_path(self, key: EngineKey) -> Path:
        """Return the path of the entry's serialised engine (``<digest>.engine``)."""
        return self.root / f"{key.digest}.engine"

    def meta_path(self, key: EngineKey) -> Path:
        """Return the path of the entry's metadata (``<digest>.json``)."""
        return self.root / f"{key.digest}.json"

    def lock_path(self, key: EngineKey) -> Path:
        """Return the path of the entry's lock file (``<digest>.lock``)."""
        return self.root / f"{key.digest}.lock"

    def timing_cache_path(self, key: EngineKey) -> Path:
        """Return the path of the timing cache shared by this TensorRT version and GPU."""
        return self.root / key.timing_cache_name

    def lock(self, key: EngineKey) -> FileLock:
        """Return the inter-process lock of one entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.lock_path(key)), timeout=self.lock_timeout)

    def read(self, key: EngineKey) -> tuple[bytes | None, str | None]:
        """Read the entry's engine bytes if present and consistent; else None and why.

        ``(None, None)`` when the entry is absent.
        """
        engine, meta = self.engine_path(key), self.meta_path(key)
        if not engine.exists() and not meta.exists():
            return None, None
        try:
            info = json.loads(meta.read_text())
            data = engine.read_bytes()
        except (OSError, ValueError) as exc:
            return None, f"unreadable entry ({type(exc).__name__}: {exc})"
        if not isinstance(info, dict) or info.get("key") != key.as_dict():
            return None, "metadata does not match the key (stale entry)"
        if info.get("sha256") != hashlib.sha256(data).hexdigest() or info.get("size") != len(data):
            return None, "engine bytes do not match their checksum (corrupt entry)"
        return data, None

    def discard(self, key: EngineKey) -> None:
        """Remove an entry (metadata first, so a half-removed entry reads as absent/corrupt)."""
        self.meta_path(key).unlink(missing_ok=True)
        self.engine_path(key).unlink(missing_ok=True)

    def write(self, key: EngineKey, data: bytes) -> None:
        """Store an engine: bytes first, then the metadata that vouches for them."""
        atomic_write(self.engine_path(key), data)
        info = {"format": FORMAT, "key": key.as_dict(),
                "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        atomic_write(self.meta_path(key), (json.dumps(info, indent=1) + "\n").encode())

    def get_or_build(
        self,
        key: EngineKey,
        build: Callable[[bytes | None], tuple[bytes, bytes | None]],
        load: Callable[[bytes], T | None],
    ) -> tuple[T, CacheOutcome]:
        """Return the loaded engine for ``key``: from the cache, or built (under the entry's lock).

        ``build(timing_cache)`` returns ``(engine_bytes, new_timing_cache)``; ``load(bytes)``
        deserialises (raising or returning None on failure). A cached entry that fails any check
        or ``load`` is discarded and rebuilt.
        """
        with self.lock(key):
            data, problem = self.read(key)
            if data is not None:
                try:
                    loaded = load(data)
                except Exception as exc:
                    loaded, problem = None, f"failed to load ({type(exc).__name__}: {exc})"
                else:
                    if loaded is None:
                        problem = "failed to load"
                if loaded is not None:
                    return loaded, CacheOutcome(False, None, self.engine_path(key))
            if problem is not None:
                log.warning("engine cache %s: %s; rebuilding", self.engine_path(key), problem)
                self.discard(key)
            timing_path = self.timing_cache_path(key)
            try:
                timing = timing_path.read_bytes() if timing_path.exists() else None
            except OSError:
                timing = None
            engine, new_timing = build(timing)
            if not engine:
                raise BackendError("the engine build returned nothing")
            self.write(key, engine)
            if new_timing:
                atomic_write(timing_path, new_timing)
            built = load(engine)
            if built is None:
                self.discard(key)
                raise BackendError("a freshly built engine failed to load")
            return built, CacheOutcome(True, problem, self.engine_path(key))
