"""Training and evaluation configs report every error as ``FILE:LINE:COL: field: message``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from acquisition.cli import main as livesr
from inference.cli.evaluate import load_evaluation_config
from inference.evaluation.config import EvaluationConfig
from inference.training.config import TrainConfig, load_config, parse_config
from yamlconfig import ConfigError, FieldError, load_model

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

REPO = Path(__file__).resolve().parents[1]


def _raises(path: Path, pattern: str) -> AbstractContextManager[pytest.ExceptionInfo[ConfigError]]:
    """A single located error: ``PATH`` then ``pattern`` (a regular expression)."""
    return pytest.raises(ConfigError, match=f"^{re.escape(str(path))}{pattern}")


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


BAD_TRAINING = """
    name: bad
    model:
      in_channels: 9
      features: 32
      reduction: 8
    data:
      kind: scene_bank
      photons: [0, 800]
    optim:
      lr: fast
      learning_rate: 1.0e-4
    """


def test_bad_training_config_lists_every_located_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", BAD_TRAINING)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert sorted(info.value.messages) == sorted([
        f"{path}:8:12: data.photons: the lower end must be > 0",
        f"{path}:10:7: optim.lr: Input should be a valid number, unable to parse string as a "
        f"number",
        f"{path}:11:18: optim.learning_rate: Extra inputs are not permitted",
    ])


def test_validator_errors_point_at_their_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "ranges.yaml", """
        model: {in_channels: 9, features: 32, reduction: 8}
        data:
          kind: scene_bank
          modulation: [0.5, 1.5]
        """)
    with _raises(path, r":4:15: data\.modulation: at most 1$"):
        load_config(path)
    path = _write(tmp_path / "channels.yaml", """
        data:
          kind: simulated
          input_kind: wf
        model:
          in_channels: 9
        """)
    with _raises(path, r":5:16: model\.in_channels: input_kind 'wf' "):
        load_config(path)
    path = _write(tmp_path / "pairs.yaml", """
        data:
          kind: tiff_pairs
          inputs: in
          targets: out
          val_targets: val
        """)
    with _raises(path, r":5:16: data\.val_targets: give both"):
        load_config(path)
    # the network's own check (a FieldError in inference.models.dfcan) points at its field
    path = _write(tmp_path / "model.yaml", """
        data: {kind: simulated}
        model:
          features: 30
          reduction: 8
        """)
    with _raises(path, r":4:14: model.reduction: features \(30\) must be a "):
        load_config(path)


def test_discriminator_and_missing_fields_are_located(tmp_path: Path) -> None:
    path = _write(tmp_path / "kind.yaml", """
        name: x
        data:
          kind: biosr-ish
        """)
    with _raises(path, r":3:9: data\.kind: Input tag 'biosr-ish'"):
        load_config(path)
    path = _write(tmp_path / "root.yaml", """
        name: x
        data:
          kind: biosr
          structures: [CCPs]
        """)
    # a missing field points at its section, a discriminated union's tag is not in the path
    with _raises(path, r":3:3: data\.root: Field required$"):
        load_config(path)
    path = _write(tmp_path / "empty.yaml", "# nothing yet\n")
    with _raises(path, r":1:1: data: Field required$"):
        load_config(path)
    path = _write(tmp_path / "list.yaml", "- a\n- b\n")
    with _raises(path, r":1:1: \(top level\): expected a mapping"):
        load_config(path)


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    path = _write(tmp_path / "syntax.yaml", """
        name: x
        data:
          kind: simulated
         photon_levels: [15, 25
        """)
    with _raises(path, r":4:\d+: YAML syntax error: "):
        load_config(path)
    path = _write(tmp_path / "evaluate.yaml", """
        name: x
        methods: [wf, wiener-sim
        """)
    with _raises(path, r":3:1: YAML syntax error: "):
        load_evaluation_config(path)
    path.write_bytes(b"name: \xff\n")
    with _raises(path, r":1:1: \(top level\): not a UTF-8 text"):
        load_evaluation_config(path)


def test_bad_evaluation_config_lists_every_located_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "evaluate.yaml", """
        name: bad
        data:
          kind: simulated
          sets_per_cell: 0
          image_size: 65
        methods: [wf, dfcan-9000]
        colour: red
        """)
    with pytest.raises(ConfigError) as info:
        load_evaluation_config(path)
    messages = info.value.messages
    assert f"{path}:4:18: data.sets_per_cell: Input should be greater than or equal to 1" \
        in messages
    assert any(m.startswith(f"{path}:6:15: methods.1: Input should be ") for m in messages)
    assert f"{path}:7:9: colour: Extra inputs are not permitted" in messages
    assert len(messages) == 3
    # the validator's check, once the fields themselves are valid, points at its field
    path = _write(tmp_path / "evaluate.yaml", """
        name: bad
        data:
          kind: simulated
          seed: 1
          image_size: 65
        """)
    with _raises(path, r":4:9: data\.seed: seed 1 draws the training"):
        load_evaluation_config(path)
    path = _write(tmp_path / "evaluate.yaml", """
        data:
          kind: simulated
          image_size: 65
        """)
    with _raises(path, r":3:15: data\.image_size: must be even, got 65"):
        load_evaluation_config(path)


def test_committed_configs_load() -> None:
    training = sorted((REPO / "inference/training/configs").glob("*.yaml"))
    evaluation = sorted((REPO / "inference/evaluation/configs").glob("*.yaml"))
    assert training and evaluation
    for path in training:
        assert isinstance(load_config(path), TrainConfig), path
    for path in evaluation:
        assert isinstance(load_evaluation_config(path), EvaluationConfig), path


def test_relative_paths_resolve_as_before(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.yaml", """
        name: rel
        output_dir: runs
        data: {kind: scene_bank, bank: runs/bank}
        model: {in_channels: 9}
        """)
    config = load_config(path)  # training paths: relative to the working folder
    assert config.run_dir == Path("runs/rel")
    assert config.data.bank == Path("runs/bank")  # type: ignore[union-attr]
    assert load_config(path, output_dir="elsewhere").run_dir == Path("elsewhere/rel")
    path = _write(tmp_path / "evaluate.yaml", "name: rel\noutput_dir: out\n")
    assert load_evaluation_config(path).output_path() == (tmp_path / "out" / "rel").resolve()


def test_overrides_and_mappings_without_a_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", BAD_TRAINING)
    with pytest.raises(ConfigError) as info:
        load_config(path, output_dir=["not", "a", "path"])
    assert any(m.startswith(f"{path}:1:1: output_dir: ") for m in info.value.messages)
    with pytest.raises(ConfigError, match=r"^config: data\.photons: the lower end 500\.0 is "
                                          r"above the upper end 20\.0$"):
        parse_config({"model": {"in_channels": 9},
                      "data": {"kind": "scene_bank", "photons": [500, 20]}})


def test_load_model_returns_the_source_for_later_checks(tmp_path: Path) -> None:
    path = _write(tmp_path / "evaluate.yaml", """
        name: later
        data:
          kind: biosr
          root: nowhere
          structures: [CCPs]
        """)
    config, source = load_model(path, EvaluationConfig)
    assert config.name == "later"
    assert source.error(("data", "root"), "no such folder") == \
        f"{path}:4:9: data.root: no such folder"
    assert str(FieldError("a.b", "wrong")) == "a.b: wrong"


def test_train_cli_prints_the_located_errors_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "bad.yaml", BAD_TRAINING)
    assert livesr(["train", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"livesr train: error: {path}:")
    assert f"{path}:8:12: data.photons: the lower end must be > 0" in err
    assert f"{path}:11:18: optim.learning_rate: Extra inputs are not permitted" in err
    assert not (tmp_path / "runs").exists()
    assert livesr(["train", str(tmp_path / "missing.yaml"), "--no-progress"]) == 2
    assert "cannot read the training config" in capsys.readouterr().err
