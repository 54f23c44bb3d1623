"""Acquisition: protocols, the acquisition engine, writers, streaming, and the ``livesr`` CLI."""
