"""Emission goes off on process exit and on SIGTERM, without anyone calling close()."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from hardware.microscope import Microscope

    original = Microscope.emission_off
    def reporting_emission_off(self):
        original(self)
        print("emitting after emission_off:", self.emitting(), flush=True)
    Microscope.emission_off = reporting_emission_off

    scope = Microscope.open({cfg!r})
    scope.set_powers({{488: 30}})
    scope.lasers[488].on()
    scope.aotf.unblank()
    print("emitting:", scope.emitting(), flush=True)
    {ending}
""")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo microscope with a 64-pixel sensor: its sample renders in an instant."""
    from faulty_devices import demo_cfg_variant

    return str(demo_cfg_variant(tmp_path_factory.mktemp("cfg") / "small.cfg", "small", 64))


def _run(cfg: str, ending: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(cfg=cfg, ending=ending)],
                          capture_output=True, text=True, timeout=120)


def test_emission_off_at_interpreter_exit(cfg: str) -> None:
    result = _run(cfg, "sys.exit(3)")
    assert result.returncode == 3, result.stderr
    assert "emitting: ['Laser488', 'AOTF']" in result.stdout
    assert "emitting after emission_off: []" in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_emission_off_on_sigterm_then_the_default_action(cfg: str) -> None:
    result = _run(cfg, "os.kill(os.getpid(), signal.SIGTERM); print('still alive', flush=True)")
    assert "emitting after emission_off: []" in result.stdout
    assert "still alive" not in result.stdout
    assert result.returncode == -signal.SIGTERM


def test_ctrl_c_still_raises_keyboard_interrupt_after_emission_off(cfg: str) -> None:
    result = _run(cfg, "os.kill(os.getpid(), signal.SIGINT)\nimport time\ntime.sleep(5)")
    assert "emitting after emission_off: []" in result.stdout
    assert "KeyboardInterrupt" in result.stderr


def test_closing_destroys_the_core_after_a_sequenced_run(cfg: str) -> None:
    """A core left alive until interpreter exit after a hardware-sequenced run can abort the
    process; closing the microscope must free it at once (checked in a fresh interpreter: the
    test runner's log capture keeps references to the core).
    """
    script = textwrap.dedent(f"""
        import weakref, useq
        from hardware.microscope import Microscope
        from hardware.sim_engine import SIMAcquisition
        scope = Microscope.open({cfg!r})
        core = weakref.ref(scope.backend.core)
        summary = SIMAcquisition(scope).run(
            useq.MDASequence(time_plan={{"interval": 0, "loops": 2}}, channels=["488"]),
            {{488: 5}})
        scope.close()
        print("sequenced sets:", summary.hardware_sequenced_sets, "core freed:", core() is None)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "sequenced sets: 2 core freed: True" in result.stdout
