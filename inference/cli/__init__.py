"""Inference subcommands of ``livesr``: train, evaluate, predict, reconstruct, compile, bench."""
