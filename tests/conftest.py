"""Shared test set-up: Qt offscreen, and one demo microscope per test module that needs it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymmcore_plus.experimental.unicore import UniMMCore

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="module")
def demo_core() -> Iterator[UniMMCore]:
    """The demo ``.cfg`` loaded into a real UniMMCore; shutters closed, devices unloaded after."""
    from hardware.core import create_core, release_core

    core = create_core("demo")
    yield core
    release_core(core)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Exported graphs and engines go to a folder of this test session, not ~/.cache."""
    previous = os.environ.get("LIVESR_CACHE_DIR")
    os.environ["LIVESR_CACHE_DIR"] = str(tmp_path_factory.mktemp("livesr-cache"))
    yield
    if previous is None:
        os.environ.pop("LIVESR_CACHE_DIR", None)
    else:
        os.environ["LIVESR_CACHE_DIR"] = previous
