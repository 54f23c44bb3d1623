"""Read and write the images ``livesr predict`` handles: .npy, .tif/.tiff, .mrc (read only)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = ["READ_SUFFIXES", "WRITE_SUFFIXES", "read_image", "write_image"]

READ_SUFFIXES = (".npy", ".tif", ".tiff", ".mrc")
WRITE_SUFFIXES = (".npy", ".tif", ".tiff")


def read_image(path: str | Path) -> np.ndarray:
    """Load an image or a stack as a NumPy array.

    Singleton axes that carry no data are dropped: leading ones beyond 3 axes, and a trailing
    channel axis of 1 (TensorFlow's NHWC layout, as in DL-SR's own ``.npy`` files).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise ValueError(
            f"{path}: unknown image format {suffix!r} (read: {', '.join(READ_SUFFIXES)})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    elif suffix == ".mrc":
        array = _read_mrc(path)
    else:
        import tifffile

        array = tifffile.imread(path)
    array = np.asarray(array)
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim > 2 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def _read_mrc(path: Path) -> np.ndarray:
    import mrcfile

    with warnings.catch_warnings():
        # old MRC files (no "MAP " stamp, e.g. the DL-SR / rDL-SIM data) read fine permissively
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.open(path, permissive=True) as mrc:
            if mrc.data is None:
                raise ValueError(f"{path}: not a readable MRC file")
            return np.array(mrc.data)


def write_image(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as .npy or .tif (creating the parent folder)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise ValueError(f"{path}: cannot write {suffix!r} (write: {', '.join(WRITE_SUFFIXES)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, array, allow_pickle=False)
    else:
        import tifffile

        tifffile.imwrite(path, array)
    return path
