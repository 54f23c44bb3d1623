"""The ``livesr`` command line: one subcommand per job, each defined beside the code it runs.

Subcommands are found through the ``livesr.commands`` entry-point group (``pyproject.toml``), so
this module imports none of them by name: ``gui`` and ``simulators`` register theirs the same
way as ``acquisition`` and ``inference``. Each entry point names a module exposing
``add_parser(subparsers)``; the module is imported only to build its parser, and heavy imports
happen inside the command itself. User errors
(``ValueError``, ``OSError``) are printed as one line and exit with status 2, without a
traceback; set ``LIVESR_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

#: the entry-point group whose entries (name = subcommand, value = module) make up ``livesr``
COMMANDS_GROUP = "livesr.commands"


def subcommand_modules() -> dict[str, str]:
    """Subcommand name → the module that defines it, from the installed entry points."""
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=COMMANDS_GROUP)}
    if not found:
        raise RuntimeError(f"no {COMMANDS_GROUP!r} entry points: install LiveSR "
                           "(pip install -e .) so that its subcommands can be found")
    return found


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="livesr",
        description="LiveSR: SIM acquisition with real-time DFCAN super-resolution.",
    )
    parser.add_argument("--version", action="version", version=f"livesr {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in subcommand_modules().values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a subcommand whose module is not part of this build
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livesr`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    format_warning = warnings.formatwarning
    if not os.environ.get("LIVESR_DEBUG"):
        warnings.formatwarning = _one_line_warning
    try:
        result = args.func(args)
    except (ValueError, OSError) as exc:
        if os.environ.get("LIVESR_DEBUG"):
            raise
        print(f"livesr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"livesr {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = format_warning
    return int(result or 0)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    """Warnings as ``livesr: warning: message`` (``LIVESR_DEBUG=1`` shows where they arose)."""
    return f"livesr: warning: {message}\n"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("livesr")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
