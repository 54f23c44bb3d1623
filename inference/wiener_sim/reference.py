"""napari-sim-processor's reconstruction classes, the reference Wiener-SIM we compare with.

Its package ``__init__`` imports napari (its widget); only its ``processors`` subpackage is
loaded here, straight from the installed files, so no napari or Qt is needed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["load_conv_sim_processor"]

_NAME = "napari_sim_processor_processors"


def load_conv_sim_processor() -> ModuleType:
    """Import the ``convSimProcessor`` module (ImportError if napari-sim-processor is missing)."""
    if _NAME not in sys.modules:
        spec = importlib.util.find_spec("napari_sim_processor")  # finds, does not run it
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("napari-sim-processor is not installed (the dev extra)")
        folder = f"{next(iter(spec.submodule_search_locations))}/processors"
        package_spec = importlib.util.spec_from_file_location(
            _NAME, f"{folder}/__init__.py", submodule_search_locations=[folder])
        assert package_spec is not None and package_spec.loader is not None
        package = importlib.util.module_from_spec(package_spec)
        sys.modules[_NAME] = package
        package_spec.loader.exec_module(package)
    return importlib.import_module(f"{_NAME}.convSimProcessor")
