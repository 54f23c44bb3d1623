"""Protocol files: valid ones load, bad ones (hand-written, hypothesis-generated, YAML syntax
errors) give every error as FILE:LINE:COL: field: message, never a traceback, and no device is
touched; the dry run estimates and refuses a run the disk cannot hold.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import useq
import yaml
from acquisition_support import tiny_dfcan, write_protocol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acquisition
from acquisition.cli import main
from acquisition.protocol import Protocol, check_protocol, estimate, load_protocol
from yamlconfig.located import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

GOOD = """
microscope: {config: demo, roi: 128}
mode: tirf-sim
channels:
  - {preset: "488", power_mw: 20, exposure_ms: 10}
  - {preset: "560", power_mw: 30, exposure_ms: 5}
timelapse: {count: 4, interval_s: 1.5}
save: {wf: true, sr: none}
output: out
"""


def _located(path: Path, messages: list[str]) -> None:
    assert messages
    for message in messages:
        assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: \S", message), message


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_protocol(path)
    _located(path, info.value.messages)
    return info.value.messages


def test_good_protocol_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = write_protocol(tmp_path, GOOD)
    protocol = load_protocol(path)
    assert protocol.n_sets == 8 and protocol.n_frames == 72 and protocol.frames_per_set == 9
    assert protocol.output_dir() == tmp_path / "out"
    with pytest.raises(Exception, match="frozen"):
        protocol.mode = "wf"  # type: ignore[misc]


def test_every_error_is_located_and_reported_at_once(tmp_path: Path) -> None:
    path = write_protocol(tmp_path, """
        microscope: {config: demo, rio: 128}
        mode: sted
        channels:
          - {preset: "488", power_mw: -1, exposure_ms: 10}
          - {preset: "640", power_mw: 20, exposure_ms: 10}
          - {preset: "560", power_mw: 20, exposure_ms: 0}
        timelapse: {count: 0}
        save: {sr: sometimes}
        """)
    messages = _errors(path)
    text = "\n".join(messages)
    assert len(messages) == 7, text
    assert f"{path}:1:" in text and "microscope.rio: Extra inputs are not permitted" in text
    assert f"{path}:2:7: mode:" in text
    assert f"{path}:4:" in text and "channels.0.power_mw" in text
    assert f"{path}:5:" in text and "channels.1.preset: '640' is not a channel preset" in text
    assert "channels.2.exposure_ms" in text and "timelapse.count" in text
    assert "save.sr" in text


def test_device_free_checks_are_located_too(tmp_path: Path) -> None:
    weights = tiny_dfcan(tmp_path / "sisr3.safetensors", in_channels=3)
    path = write_protocol(tmp_path, f"""
        mode: tirf-sim
        channels:
          - {{preset: "640", power_mw: 20, exposure_ms: 10}}
          - {{preset: "488", power_mw: 500, exposure_ms: 10,
              reconstruction: {{method: dfcan, weights: missing.safetensors}}}}
          - {{preset: "560", power_mw: 20, exposure_ms: 10,
              reconstruction: {{method: dfcan, weights: {weights.name}}}}}
        """)
    text = "\n".join(_errors(path))
    assert "channels.0.preset: '640' is not a channel preset" in text
    assert "channels.1.power_mw: 500.0 mW is above the 488 nm laser's limit of 200.0 mW" in text
    assert f"channels.1.reconstruction.weights: no such file: {tmp_path / 'missing'}" in text
    assert "sisr3.safetensors takes 3 frames per set, but tirf-sim gives 9" in text
    assert f"{path}:4:" in text  # the second channel's power is on line 4


def test_wiener_sim_needs_sim_sets_and_an_installation_that_has_it(tmp_path: Path) -> None:
    path = write_protocol(tmp_path, """
        mode: wf
        channels: [{preset: "488", power_mw: 1, exposure_ms: 1,
                    reconstruction: {method: wiener-sim}}]
        """)
    assert "wiener-sim needs SIM sets" in "\n".join(_errors(path))
    path = write_protocol(tmp_path, """
        mode: tirf-sim
        channels: [{preset: "488", power_mw: 1, exposure_ms: 1,
                    reconstruction: {method: wiener-sim}}]
        """)
    try:
        import inference.wiener_sim.wiener_reconstructor  # noqa: F401
    except ImportError:
        assert "wiener-sim is not available in this installation" in "\n".join(_errors(path))
    else:
        assert load_protocol(path).channels[0].reconstruction.method == "wiener-sim"


@pytest.mark.parametrize("text, where", [
    ("mode: tirf-sim\nchannels: [{preset: '488'\n", ":3:1: YAML syntax error"),
    ("mode: tirf-sim\n  channels: x\n", ":2:11: YAML syntax error"),
    ("channels:\n\t- {preset: '488'}\n", ":2:1: YAML syntax error"),
    ("- just\n- a list\n", ":1:1: (top level): expected a mapping"),
    ("", ":1:1: channels: Field required"),
])
def test_yaml_syntax_and_shape_errors_are_located(tmp_path: Path, text: str, where: str) -> None:
    path = write_protocol(tmp_path, text)
    messages = _errors(path)
    assert where in messages[0], messages


def test_bad_protocol_touches_no_device_and_cli_prints_no_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hardware.microscope import Microscope

    opened: list[object] = []
    monkeypatch.setattr(Microscope, "open", classmethod(lambda cls, *a, **k: opened.append(a)))
    path = write_protocol(tmp_path, "mode: wf\nchannels: [{preset: '488', power_mw: 999, "
                                    "exposure_ms: 1}]\n")
    with pytest.raises(ConfigError):
        acquisition.run(path)
    assert main(["run", str(path)]) == 2
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and "Traceback" not in err
    assert opened == []


def test_dry_run_estimates_and_refuses_a_short_disk(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write_protocol(tmp_path, GOOD)
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "frames: 72 raw in 8 sets" in out and "disk: needs" in out and "RAM" in out
    est = estimate(load_protocol(path), 128, 128)
    assert est.bytes_raw == 72 * 128 * 128 * 2 and est.bytes_wf == 8 * 128 * 128 * 4
    assert est.seconds == pytest.approx(3 * 1.5 + 9 * (10 + 2 + 5 + 2) / 1000)
    # the images are written once, in place: the data and ~1 KB of metadata per frame
    assert est.disk_bytes == est.bytes_total + 1024 * 72 + 16 * 1024**2
    assert "images: OME-TIFF (auto: OME-Zarr beyond 2 GB)" in out
    huge = write_protocol(tmp_path, GOOD.replace("count: 4", "count: 9000000")
                          .replace("roi: 128", "roi: 8192"), "huge.yaml")
    assert main(["run", str(huge), "--dry-run"]) == 2
    assert "not enough disk space" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- generated protocols: located error or valid, never anything else

_junk = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.floats(allow_nan=True),
                  st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
_channel = st.fixed_dictionaries(
    {"preset": st.one_of(st.sampled_from(["405", "488", "560", "640"]), _junk),
     "power_mw": st.one_of(st.floats(-10, 300), _junk),
     "exposure_ms": st.one_of(st.floats(-1, 50), _junk)},
    optional={"reconstruction": st.one_of(
        st.fixed_dictionaries({"method": st.sampled_from(["none", "dfcan", "wiener-sim", "x"])},
                              optional={"weights": st.sampled_from(["w.safetensors", "n.h5"])}),
        _junk),
        "extra": _junk})
_protocol = st.fixed_dictionaries(
    {"channels": st.one_of(st.lists(_channel, min_size=0, max_size=3), _junk)},
    optional={
        "mode": st.one_of(st.sampled_from(["tirf-sim", "gi-sim", "nl-sim", "wf"]), _junk),
        "microscope": st.one_of(st.fixed_dictionaries(
            {}, optional={"config": st.sampled_from(["demo", "nope.cfg"]),
                          "roi": st.one_of(st.integers(-2, 600), _junk),
                          "backend": st.sampled_from(["pymmcore-plus", "pycromanager", "x"])}),
            _junk),
        "timelapse": st.one_of(st.fixed_dictionaries(
            {}, optional={"count": st.one_of(st.integers(-2, 20), _junk),
                          "interval_s": st.one_of(st.floats(-1, 5), _junk)}), _junk),
        "save": st.one_of(st.fixed_dictionaries(
            {}, optional={"wf": _junk, "sr": st.sampled_from(["every", "displayed", "none", "x"]),
                          "format": st.sampled_from(["ome-tiff", "ome-zarr", "png"])}), _junk),
        "positions": st.one_of(st.lists(st.fixed_dictionaries({"x": _junk, "y": st.floats()}),
                                        max_size=2), _junk),
        "unknown_key": _junk,
    })


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=_protocol, cut=st.integers(0, 400), noise=st.sampled_from(["", ":", "[", "\t", "{"]))
def test_generated_protocols_are_valid_or_located_errors(tmp_path: Path, data: dict, cut: int,
                                                         noise: str) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    if noise:  # damage the text: a YAML syntax error, or a different document
        cut = min(cut, len(text))
        text = text[:cut] + noise + text[cut:]
    path = write_protocol(tmp_path, text, "generated.yaml")
    try:
        protocol = load_protocol(path)
    except ConfigError as exc:
        _located(path, exc.messages)
        return
    assert isinstance(protocol, Protocol)
    assert estimate(protocol, 64, 64).frames == protocol.n_frames


def test_a_protocol_is_checked_against_an_open_microscopes_settings() -> None:
    """A GUI's microscope has its own role settings: its presets count, not the file's."""
    from hardware.settings import ChannelsRole, MicroscopeSettings

    protocol = Protocol.model_validate(
        {"channels": [{"preset": "GFP", "power_mw": 10, "exposure_ms": 5}]})
    assert any("'GFP' is not a channel preset" in p for p in check_protocol(protocol))
    own = MicroscopeSettings(channels=ChannelsRole(lines={"GFP": 488}))
    assert check_protocol(protocol, own) == []


# -- the protocol's useq sequence


def _sequence_as_the_runner_built_it(protocol: Protocol) -> useq.MDASequence:
    """What ``acquisition/runner.py`` built inline before ``Protocol.to_sequence``."""
    return useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=protocol.timelapse.interval_s,
                                      loops=protocol.timelapse.count),
        channels=tuple(useq.Channel(config=c.preset, exposure=c.exposure_ms)
                       for c in protocol.channels),
        stage_positions=tuple(
            useq.Position(x=p.x, y=p.y, z=p.z, name=p.name) for p in protocol.positions))


def test_to_sequence_is_the_sequence_the_runner_built(tmp_path: Path) -> None:
    from acquisition.demo import demo_protocol

    with_positions = GOOD + "positions: [{x: 1, y: 2}, {x: -5, y: 0.5, z: 3, name: cell}]\n"
    for protocol in (demo_protocol(), load_protocol(write_protocol(tmp_path, GOOD)),
                     load_protocol(write_protocol(tmp_path, with_positions, "positions.yaml"))):
        sequence = protocol.to_sequence()
        before = _sequence_as_the_runner_built_it(protocol)
        assert sequence == before
        assert list(sequence) == list(before)  # the very same events, in order
    demo = demo_protocol().to_sequence()
    assert [c.config for c in demo.channels] == ["488", "560"]
    assert [c.exposure for c in demo.channels] == [10.0, 10.0]
    assert len(list(demo)) == 5 * 2 and not demo.stage_positions
    events = list(load_protocol(tmp_path / "positions.yaml").to_sequence())
    assert len(events) == 4 * 2 * 2
    assert {(e.x_pos, e.y_pos, e.z_pos, e.pos_name) for e in events} == {
        (1.0, 2.0, None, None), (-5.0, 0.5, 3.0, "cell")}


def test_auto_format_is_ome_tiff_for_short_runs_and_ome_zarr_for_long_ones(tmp_path: Path) -> None:
    from acquisition.protocol import storage_format

    short = load_protocol(write_protocol(tmp_path, GOOD))
    assert short.save.format == "auto" and short.save.compression == "lz4"
    assert storage_format(short, estimate(short, 128, 128)) == "ome-tiff"
    long = load_protocol(write_protocol(tmp_path, GOOD.replace("count: 4", "count: 2000"),
                                        "long.yaml"))
    assert storage_format(long, estimate(long, 512, 512)) == "ome-zarr"  # about 19 GB
    chosen = load_protocol(write_protocol(tmp_path, GOOD.replace("count: 4", "count: 2000")
                                          .replace("save: {", "save: {format: ome-tiff, "),
                                          "chosen.yaml"))
    assert storage_format(chosen, estimate(chosen, 512, 512)) == "ome-tiff"
