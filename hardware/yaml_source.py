"""YAML settings files whose errors say ``FILE:LINE:COL: field: message``.

The data is read with ``yaml.safe_load``; a second pass over the composed node tree records where
each key's value starts, so that a pydantic ``ValidationError`` (or any later check that knows a
field's path) can point into the file. Every error of a file is reported at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["ConfigError", "Location", "YamlSource", "load_yaml", "validate_source"]

Location = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """One or more located errors in a settings or protocol file."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


@dataclass
class YamlSource:
    """Parsed YAML plus the position of every value, keyed by its path of keys and indices."""

    name: str
    data: Any
    positions: dict[Location, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: Sequence[str | int]) -> str:
        """``NAME:LINE:COL`` of the deepest part of ``loc`` present in the file (1-based)."""
        path = tuple(_key(part) for part in loc)
        while path and path not in self.positions:
            path = path[:-1]
        line, col = self.positions.get(path, (1, 1))
        return f"{self.name}:{line}:{col}"

    def error(self, loc: Sequence[str | int], message: str) -> str:
        """A located message: ``NAME:LINE:COL: a.b.0: message``."""
        dotted = ".".join(str(part) for part in loc) or "(top level)"
        return f"{self.where(loc)}: {dotted}: {message}"


def load_yaml(path: str | Path) -> YamlSource:
    """Read a YAML file; a syntax error becomes a located :class:`ConfigError`."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return parse_yaml(text, str(path))


def parse_yaml(text: str, name: str = "<string>") -> YamlSource:
    """Parse YAML text (``name`` is used in messages)."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else f"{name}:1:1"
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError([f"{where}: YAML syntax error: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{name}:1:1: YAML error: {exc}"]) from None
    source = YamlSource(name, data)
    if node is not None:
        _record(node, (), source.positions)
    return source


def validate_source(model: type[ModelT], source: YamlSource) -> ModelT:
    """``model`` validated from the file's data; every error located, all at once."""
    data = {} if source.data is None else source.data
    if not isinstance(data, dict):
        raise ConfigError([source.error((), f"expected a mapping of settings, got "
                                             f"{type(data).__name__}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        messages = [source.error(_clean_loc(err["loc"]), err["msg"]) for err in exc.errors()]
        raise ConfigError(messages) from None


def _clean_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """Drop pydantic's union/function tags (``function-after[...]``, ``int``) from a location."""
    return tuple(p for p in loc if isinstance(p, int) or ("[" not in p and p not in _TAGS))


_TAGS = {"int", "float", "str", "bool", "list", "dict", "tuple"}


def _key(part: str | int) -> str | int:
    return part if isinstance(part, int) else str(part)


def _record(node: yaml.Node, loc: Location, out: dict[Location, tuple[int, int]]) -> None:
    out.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            out[(*loc, key)] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            _record(value_node, (*loc, key), out)
            if key.lstrip("-").isdigit():  # int keys (e.g. laser lines) as safe_load reads them
                _record(value_node, (*loc, int(key)), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record(item, (*loc, i), out)
