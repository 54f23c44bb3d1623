"""The demo's protocol: bundled with the package, valid, and given the bundled weights when the
installation has them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acquisition_support import tiny_dfcan

from acquisition.demo import bundled_weights, demo_protocol, paced_for_sr
from acquisition.protocol import check_protocol

if TYPE_CHECKING:
    from pathlib import Path


def test_bundled_demo_protocol_is_valid() -> None:
    protocol = demo_protocol()
    assert check_protocol(protocol) == []
    assert protocol.mode == "tirf-sim" and protocol.microscope.config == "demo"
    assert [c.preset for c in protocol.channels] == ["488", "560"]
    assert protocol.microscope.roi == 256 and protocol.timelapse.count == 5


def test_demo_uses_sim_weights_when_present(tmp_path: Path) -> None:
    sim = tiny_dfcan(tmp_path / "dfcan_sim_demo.safetensors", in_channels=9)
    sisr = tiny_dfcan(tmp_path / "dfcan_sisr_demo.safetensors", in_channels=1)
    protocol = demo_protocol(roi=64, timepoints=2, weights={"sim": sim, "sisr": sisr})
    assert check_protocol(protocol) == []
    assert protocol.microscope.roi == 64 and protocol.timelapse.count == 2
    for channel in protocol.channels:
        assert channel.reconstruction.method == "dfcan"
        assert channel.reconstruction.weights == sim
    assert "method: dfcan" in protocol.source_text() and sim.name in protocol.source_text()
    only_sisr = demo_protocol(weights={"sisr": sisr})
    assert only_sisr.channels[0].reconstruction.weights == sisr


def test_bundled_weights_are_named_by_kind() -> None:
    for kind, path in bundled_weights().items():
        assert kind in path.name.lower() and path.suffix == ".safetensors"


def test_demo_paces_its_time_points_for_the_sr_of_every_set(tmp_path: Path) -> None:
    sim = tiny_dfcan(tmp_path / "dfcan_sim_demo.safetensors", in_channels=9)
    protocol = demo_protocol(roi=32, timepoints=2, weights={"sim": sim})
    paced, per_set_s = paced_for_sr(protocol)
    assert per_set_s > 0 and paced.save.sr == "every"
    # two channels' SR per time point, with room for the acquisition, in 0.5 s steps
    assert paced.timelapse.interval_s >= 2 * 2 * per_set_s
    assert paced.timelapse.interval_s % 0.5 == 0
    assert check_protocol(paced) == []
