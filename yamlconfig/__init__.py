"""The one place where YAML settings are read and located.

Every settings file (protocols, microscope roles and settings, training and evaluation
configs) is read here with ``yaml.safe_load`` and validated by its pydantic model through
:func:`load_model` (or :func:`parse_yaml` and :func:`validate_source` for text); every error
of a file is reported at once, each as ``FILE:LINE:COL: field: message``, in a
:class:`ConfigError` (a ``ValueError``).
"""

from yamlconfig.located import (
    ConfigError,
    FieldError,
    Location,
    YamlSource,
    load_model,
    load_yaml,
    parse_yaml,
    read_text,
    validate_source,
)

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
