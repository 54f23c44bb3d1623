"""The official predict pipeline in NumPy/PyTorch: pre/post-processing, prediction, image I/O."""
