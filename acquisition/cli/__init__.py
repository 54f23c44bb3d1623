"""The ``livesr`` command line (:mod:`acquisition.cli.main`) and the subcommands of this package."""

from acquisition.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
