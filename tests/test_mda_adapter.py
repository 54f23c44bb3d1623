"""The pymmcore-plus internals that :mod:`hardware.mda_adapter` relies on are still there.

Checked against pymmcore-plus 0.18.1. When one of these fails after an upgrade, re-check the
adapter against the new version (its module docstring lists each internal and why), then update
it and the version it names.
"""

from __future__ import annotations

import inspect
import threading
from typing import TYPE_CHECKING

import pymmcore_plus
import pytest
import useq
from pymmcore_plus.experimental.unicore import UniMMCore
from pymmcore_plus.mda import MDAEngine, MDARunner

from hardware.backend import DeviceError
from hardware.core import create_core, release_core
from hardware.mda_adapter import RUNNER_T0, StrictMDAEngine, is_camera_thread

if TYPE_CHECKING:
    from collections.abc import Iterator

VERSION = f"pymmcore-plus {pymmcore_plus.__version__} (the adapter was checked against 0.18.1)"


@pytest.fixture
def core() -> Iterator[UniMMCore]:
    """An empty core (no devices) with one config group ``G`` holding an empty preset ``P``."""
    mmc = create_core(None)
    mmc.defineConfigGroup("G")
    mmc.defineConfig("G", "P")
    yield mmc
    release_core(mmc)


@pytest.mark.parametrize(("name", "parameter"), [("_set_event_channel", "event"),
                                                 ("_set_event_properties", "properties")])
def test_the_overridden_engine_helpers_exist(name: str, parameter: str) -> None:
    helper = getattr(MDAEngine, name, None)
    assert callable(helper), f"MDAEngine.{name} is gone in {VERSION}"
    assert list(inspect.signature(helper).parameters) == ["self", parameter], \
        f"MDAEngine.{name} changed its signature in {VERSION}"


@pytest.mark.parametrize("hook", ["setup_single_event", "setup_sequenced_event"])
@pytest.mark.parametrize("helper", ["_set_event_channel", "_set_event_properties"])
def test_the_public_hooks_still_go_through_the_helpers(hook: str, helper: str) -> None:
    """Otherwise the overrides would silently stop being called."""
    source = inspect.getsource(getattr(MDAEngine, hook))
    assert f"self.{helper}(" in source, f"MDAEngine.{hook} no longer calls {helper} in {VERSION}"


def test_the_core_remembers_the_last_preset_applied(core: UniMMCore) -> None:
    assert getattr(core, "_last_config", None) == ("", ""), \
        f"CMMCorePlus._last_config is gone in {VERSION}"
    core.setConfig("G", "P")
    assert getattr(core, "_last_config", None) == ("G", "P")


def test_the_camera_thread_class_is_still_there() -> None:
    from pymmcore_plus.experimental.unicore.core import _unicore

    thread_class = getattr(_unicore, "AcquisitionThread", None)
    assert isinstance(thread_class, type) and issubclass(thread_class, threading.Thread), \
        f"UniMMCore's AcquisitionThread is gone in {VERSION}"
    assert "AcquisitionThread(" in inspect.getsource(UniMMCore), \
        f"UniMMCore no longer runs sequences in an AcquisitionThread in {VERSION}"
    assert is_camera_thread(thread_class.__new__(thread_class))
    assert not is_camera_thread(threading.Thread())
    assert not is_camera_thread(None)


def test_the_runner_still_stamps_its_start_time() -> None:
    assert f'metadata["{RUNNER_T0}"]' in inspect.getsource(MDARunner), \
        f"MDARunner no longer sets event.metadata[{RUNNER_T0!r}] in {VERSION}"


def test_device_failures_raise_through_the_public_setup(core: UniMMCore) -> None:
    engine = StrictMDAEngine(core)
    with pytest.raises(DeviceError, match="'Nope': setting X to 1 failed"):
        engine.setup_event(useq.MDAEvent(properties=[("Nope", "X", "1")]))
    with pytest.raises(DeviceError, match="'Nope/X': applying the channel preset failed"):
        engine.setup_event(useq.MDAEvent(channel={"group": "Nope", "config": "X"}))


def test_an_unchanged_preset_is_not_applied_again(core: UniMMCore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[tuple[str, str]] = []
    set_config = core.setConfig

    def counting(group: str, preset: str) -> None:
        applied.append((group, preset))
        set_config(group, preset)

    monkeypatch.setattr(core, "setConfig", counting)
    engine = StrictMDAEngine(core)
    event = useq.MDAEvent(channel={"group": "G", "config": "P"})
    engine.setup_event(event)
    engine.setup_event(event)
    assert applied == [("G", "P")]
