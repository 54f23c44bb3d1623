"""YAML settings files whose errors say ``FILE:LINE:COL: field: message``.

The data is read with ``yaml.safe_load``; a second pass over the composed node tree records where
each key's value starts, so that a pydantic ``ValidationError`` (or any later check that knows a
field's path) can point into the file. Every error of a file is reported at once.

A check inside a pydantic validator points at its field by raising :class:`FieldError`
(``raise FieldError("photons", "the lower end must be > 0")``); any other ``ValueError`` of a
validator is located at the section the validator belongs to, with its own message (without
pydantic's ``Value error,`` prefix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "ConfigError",
    "FieldError",
    "Location",
    "YamlSource",
    "load_model",
    "load_yaml",
    "parse_yaml",
    "read_text",
    "validate_source",
]

Location = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """One or more located errors in a settings, protocol or config file.

    Parameters
    ----------
    messages
        One ``FILE:LINE:COL: field: message`` line per error; ``str()`` joins them by newlines.
    """

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


class FieldError(ValueError):
    """A validator's error about one field, located at that field.

    Raise it from a pydantic validator instead of a plain ``ValueError``; :func:`validate_source`
    then reports ``message`` at the field, relative to the validated model.

    Parameters
    ----------
    field
        The field's path below the validator's model: ``"photons"``, ``"model.in_channels"``
        or a tuple of keys and indices.
    message
        What is wrong, without the field's name.
    """

    def __init__(self, field: str | Sequence[str | int], message: str) -> None:
        self.loc: Location = tuple(field.split(".")) if isinstance(field, str) else tuple(field)
        self.message = message
        super().__init__(f"{_dotted(self.loc)}: {message}")


@dataclass
class YamlSource:
    """Parsed YAML plus the position of every value, keyed by its path of keys and indices.

    A source built from data rather than text (no positions) names only itself in messages.
    """

    name: str
    data: Any
    positions: dict[Location, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: Sequence[str | int]) -> str:
        """Return ``NAME:LINE:COL`` of the deepest part of ``loc`` present in the file (1-based)."""
        if not self.positions:
            return self.name
        path = tuple(_key(part) for part in loc)
        while path and path not in self.positions:
            path = path[:-1]
        line, col = self.positions.get(path, (1, 1))
        return f"{self.name}:{line}:{col}"

    def error(self, loc: Sequence[str | int], message: str) -> str:
        """Return the located message ``NAME:LINE:COL: a.b.0: message``."""
        return f"{self.where(loc)}: {_dotted(loc)}: {message}"


def load_yaml(path: str | Path) -> YamlSource:
    """Read a YAML file; a syntax error or non-UTF-8 text becomes a located :class:`ConfigError`.

    An unreadable file raises ``OSError`` as ``open`` does.
    """
    return parse_yaml(read_text(path), str(path))


def read_text(path: str | Path) -> str:
    """Read a settings file as UTF-8; other bytes become a located :class:`ConfigError`.

    An unreadable file raises ``OSError`` as ``open`` does.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}:1:1: (top level): not a UTF-8 text file ({exc.reason})"]) \
            from None


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
    if node is None:
        source.positions[()] = (1, 1)  # an empty file is still a located one
    else:
        _record(node, (), source.positions)
    return source


def validate_source(model: type[ModelT], source: YamlSource) -> ModelT:
    """Return ``model`` validated from the source's data; every error located, all at once."""
    data = {} if source.data is None else source.data
    if not isinstance(data, dict):
        raise ConfigError([source.error((), f"expected a mapping of settings, got "
                                             f"{type(data).__name__}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_located(source, data, err) for err in exc.errors()]) from None


def load_model(path: str | Path, model: type[ModelT],
               overrides: Mapping[str, Any] | None = None) -> tuple[ModelT, YamlSource]:
    """Read a YAML file into a pydantic ``model``: the one way a settings file becomes a model.

    Parameters
    ----------
    path
        The YAML file (read with ``yaml.safe_load``).
    model
        The pydantic model class of the file's top level.
    overrides
        Top-level fields that replace the file's (e.g. from the command line); their errors
        point at the file's field when it has one.

    Returns
    -------
    tuple
        The validated model and the :class:`YamlSource`, which locates later checks
        (``source.error(("data", "root"), "no such folder")``).

    Raises
    ------
    ConfigError
        Every syntax or validation error, each as ``FILE:LINE:COL: field: message``.
    OSError
        The file cannot be read.
    """
    source = load_yaml(path)
    if overrides:
        if source.data is None:
            source.data = {}
        if isinstance(source.data, dict):
            source.data.update(overrides)
    return validate_source(model, source), source


def _located(source: YamlSource, data: Any, err: Any) -> str:
    """One pydantic error as a located message."""
    loc = _clean_loc(err["loc"], data)
    message = str(err["msg"])
    ctx = err.get("ctx") or {}
    error = ctx.get("error")
    if isinstance(error, FieldError):
        loc, message = (*loc, *error.loc), error.message
    elif err["type"] == "value_error" and isinstance(error, ValueError):
        message = str(error)  # without pydantic's "Value error, "
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found") and "discriminator" in ctx:
        loc = (*loc, str(ctx["discriminator"]).strip("'\""))
    return source.error(loc, message)


def _clean_loc(loc: Sequence[str | int], data: Any) -> Location:
    """``loc`` without pydantic's tags, walked along the data.

    Dropped: function and type tags (``function-after[...]``, ``int``) and the tags of
    discriminated unions (``data.scene_bank.photons`` → ``data.photons``), recognised as a
    value of the mapping they would index. Keys and indices present in the data are kept,
    as is a missing field's name.
    """
    out: list[str | int] = []
    node = data
    for part in loc:
        if _indexes(node, part):
            node = node[part]
        elif _is_tag(node, part):
            continue
        else:
            node = None
        out.append(part)
    return tuple(out)


def _indexes(node: Any, part: str | int) -> bool:
    """Whether ``part`` is a key or index present in ``node``."""
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _is_tag(node: Any, part: str | int) -> bool:
    """Whether ``part`` is pydantic's tag (a function, a type, a discriminator's value)."""
    if not isinstance(part, str):
        return False
    if "[" in part or part in _TAGS:
        return True
    return isinstance(node, dict) and part in {v for v in node.values() if isinstance(v, str)}


_TAGS = {"int", "float", "str", "bool", "list", "dict", "tuple"}


def _dotted(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


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
