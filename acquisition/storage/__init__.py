"""Run storage: crash-safe frame journals, their OME-TIFF/OME-Zarr finalizing, the napari reader."""
