"""Inference: DFCAN / DFGAN, weight I/O, backends, reconstruction, training and metrics."""
