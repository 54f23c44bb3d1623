"""The engine cache and the TensorRT build flow, with a fake builder (TensorRT cannot be
installed here): keying, atomic writes, locking, rebuild of corrupt or stale entries.
"""

from __future__ import annotations

import json
import os
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from filelock import FileLock, Timeout

from inference.backends.engine_cache import EngineCache, EngineKey, atomic_write
from inference.backends.errors import BackendError
from inference.backends.tensorrt_backend import build_engine, strongly_typed_flags

if TYPE_CHECKING:
    from pathlib import Path

KEY = EngineKey("ab" * 32, "10.3.0", "NVIDIA H100 80GB HBM3", "9.0", "fp16", (1, 9, 512, 512))


class FakeBuilder:
    """Stands in for TensorRT's builder: returns engine bytes derived from the key, records
    the timing cache it was given and returns a grown one.
    """

    def __init__(self, key: EngineKey = KEY) -> None:
        self.calls: list[bytes | None] = []
        self.key = key

    def __call__(self, timing: bytes | None) -> tuple[bytes, bytes]:
        self.calls.append(timing)
        return f"ENGINE {self.key.digest}".encode(), (timing or b"") + b"T"


def load(data: bytes) -> str | None:
    """Stands in for deserialisation: refuses anything that is not an engine."""
    return data.decode() if data.startswith(b"ENGINE ") else None


def test_the_key_covers_everything_an_engine_depends_on() -> None:
    digests = {KEY.digest}
    for change in ({"onnx_sha256": "cd" * 32}, {"tensorrt_version": "10.4.0"},
                   {"gpu_name": "NVIDIA H200"}, {"compute_capability": "8.9"},
                   {"precision": "bf16"}, {"input_shape": (1, 9, 1024, 1024)}):
        digests.add(EngineKey(**{**KEY.as_dict(), "input_shape": KEY.input_shape,
                                 **change}).digest)
    assert len(digests) == 7
    assert EngineKey(**{**KEY.as_dict(), "input_shape": (1, 9, 512, 512)}).digest == KEY.digest
    assert KEY.timing_cache_name == "timing-trt10.3.0-nvidia-h100-80gb-hbm3-sm9.0.cache"


def test_built_once_then_loaded_from_disk(tmp_path: Path) -> None:
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    engine, outcome = cache.get_or_build(KEY, builder, load)
    assert outcome.built and engine == f"ENGINE {KEY.digest}"
    again, outcome2 = EngineCache(tmp_path).get_or_build(KEY, builder, load)
    assert not outcome2.built and again == engine and len(builder.calls) == 1
    meta = json.loads(cache.meta_path(KEY).read_text())
    assert meta["key"]["gpu_name"] == "NVIDIA H100 80GB HBM3" and meta["size"] > 0


def test_the_timing_cache_is_kept_and_reused(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    first = FakeBuilder()
    cache.get_or_build(KEY, first, load)
    assert first.calls == [None]
    other = EngineKey(**{**KEY.as_dict(), "input_shape": (1, 9, 256, 256)})
    second = FakeBuilder(other)
    cache.get_or_build(other, second, load)
    assert second.calls == [b"T"]  # same TensorRT and GPU: the first build's timings
    assert cache.timing_cache_path(KEY).read_bytes() == b"TT"


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate", "stale_meta", "no_meta", "bad_json"])
def test_a_corrupt_or_stale_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    cache.get_or_build(KEY, builder, load)
    engine, meta = cache.engine_path(KEY), cache.meta_path(KEY)
    if damage == "flip_bytes":
        data = bytearray(engine.read_bytes())
        data[-1] ^= 0xFF
        engine.write_bytes(bytes(data))
    elif damage == "truncate":
        engine.write_bytes(engine.read_bytes()[:5])
    elif damage == "stale_meta":
        info = json.loads(meta.read_text())
        info["key"]["tensorrt_version"] = "8.6.1"
        meta.write_text(json.dumps(info))
    elif damage == "no_meta":
        meta.unlink()
    else:
        meta.write_text("{not json")
    result, outcome = cache.get_or_build(KEY, builder, load)
    assert outcome.built and outcome.discarded and len(builder.calls) == 2
    assert result == f"ENGINE {KEY.digest}"
    assert cache.read(KEY) == (engine.read_bytes(), None)


def test_an_entry_that_fails_to_load_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    cache.write(KEY, b"consistent bytes from another TensorRT")  # checksum fine, load refuses
    builder = FakeBuilder()
    result, outcome = cache.get_or_build(KEY, builder, load)
    assert outcome.built and outcome.discarded == "failed to load" and result.startswith("ENGINE")


def test_a_build_that_does_not_load_leaves_no_entry(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    with pytest.raises(BackendError, match="failed to load"):
        cache.get_or_build(KEY, lambda timing: (b"garbage", None), load)
    assert not cache.engine_path(KEY).exists() and not cache.meta_path(KEY).exists()


def test_atomic_write_keeps_the_old_file_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.engine"
    atomic_write(target, b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.engine"]  # no temporary left


def test_the_entry_is_locked_while_it_builds(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    seen: list[bool] = []

    def builder(timing: bytes | None) -> tuple[bytes, None]:
        other = FileLock(str(cache.lock_path(KEY)), timeout=0)  # as a second process would
        try:
            other.acquire()
        except Timeout:
            seen.append(True)
        else:
            other.release()
            seen.append(False)
        return b"ENGINE x", None

    cache.get_or_build(KEY, builder, load)
    assert seen == [True]


def test_concurrent_requests_build_once(tmp_path: Path) -> None:
    builder = FakeBuilder()
    entered, release = threading.Event(), threading.Event()

    def slow_builder(timing: bytes | None) -> tuple[bytes, bytes]:
        entered.set()
        release.wait(30)
        return builder(timing)

    results: list[str] = []
    first = threading.Thread(
        target=lambda: results.append(EngineCache(tmp_path).get_or_build(KEY, slow_builder,
                                                                          load)[0]))
    first.start()
    assert entered.wait(30)  # the first build holds the lock now
    second = threading.Thread(
        target=lambda: results.append(EngineCache(tmp_path).get_or_build(KEY, slow_builder,
                                                                          load)[0]))
    second.start()
    release.set()
    first.join(30)
    second.join(30)
    assert len(builder.calls) == 1 and len(results) == 2 and results[0] == results[1]


# -- the TensorRT build flow against a fake ``tensorrt`` module ----------------------------------


def fake_tensorrt(version: str = "10.3.0", parses: bool = True,
                  strongly_typed: bool = True) -> Any:
    """The parts of TensorRT's Python API that :func:`build_engine` uses, recording calls."""
    log: dict[str, Any] = {"flags": [], "network_flags": None, "timing_in": None}

    class Flags:
        EXPLICIT_BATCH = 0

    if strongly_typed:
        Flags.STRONGLY_TYPED = 5  # type: ignore[attr-defined]

    class Config:
        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            log["workspace"] = size

        def set_flag(self, flag: str) -> None:
            log["flags"].append(flag)

        def create_timing_cache(self, data: bytes) -> bytes:
            log["timing_in"] = data
            return data

        def set_timing_cache(self, cache: bytes, ignore_mismatch: bool) -> None:
            self.cache = cache

        def get_timing_cache(self) -> Any:
            return SimpleNamespace(serialize=lambda: self.cache + b"+")

    class Parser:
        num_errors = 0 if parses else 1

        def __init__(self, network: Any, logger: Any) -> None:
            pass

        def parse(self, data: bytes) -> bool:
            log["onnx"] = data
            return parses

        def get_error(self, i: int) -> str:
            return "node DFT: unsupported operator"

    class Builder:
        def __init__(self, logger: Any) -> None:
            pass

        def create_network(self, flags: int) -> object:
            log["network_flags"] = flags
            return object()

        def create_builder_config(self) -> Config:
            return Config()

        def build_serialized_network(self, network: Any, config: Config) -> bytes:
            return b"PLAN"

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            pass

    return SimpleNamespace(
        __version__=version, log=log, Logger=Logger, Builder=Builder,
        OnnxParser=Parser, NetworkDefinitionCreationFlag=Flags,
        MemoryPoolType=SimpleNamespace(WORKSPACE="workspace"),
        BuilderFlag=SimpleNamespace(FP16="FP16", BF16="BF16"),
    )


def test_build_engine_strongly_typed_keeps_precision_in_the_graph() -> None:
    trt = fake_tensorrt("10.3.0")
    plan, timing = build_engine(trt, b"onnx", "fp16", b"old", workspace=123)
    assert plan == b"PLAN" and timing == b"old+"
    assert trt.log["network_flags"] == 1 << 5 and trt.log["flags"] == []
    assert trt.log["timing_in"] == b"old" and trt.log["workspace"] == 123


def test_build_engine_on_tensorrt_8_asks_for_fp16_by_flag() -> None:
    trt = fake_tensorrt("8.6.1", strongly_typed=False)
    build_engine(trt, b"onnx", "fp16", None)
    assert trt.log["flags"] == ["FP16"] and trt.log["timing_in"] == b""
    assert strongly_typed_flags(fake_tensorrt("11.2.0", strongly_typed=False)) == (0, True)


def test_a_parser_failure_is_reported_with_its_messages() -> None:
    trt = fake_tensorrt(parses=False)
    with pytest.raises(BackendError, match="node DFT: unsupported operator"):
        build_engine(trt, b"onnx", "fp16", None)
