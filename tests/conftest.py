"""Shared test set-up: Qt offscreen, and one demo microscope per test module that needs it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pymmcore_plus.experimental.unicore import UniMMCore

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="module")
def demo_core() -> Iterator[UniMMCore]:
    """The demo ``.cfg`` loaded into a real UniMMCore; shutters closed, devices unloaded after."""
    from hardware.core import create_core, release_core

    core = create_core("demo")
    yield core
    release_core(core)
