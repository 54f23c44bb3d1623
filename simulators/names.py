"""Names the simulator accepts, kept free of heavy imports.

The CLI builds its choices from these.
"""

from __future__ import annotations

from typing import Literal

Structure = Literal["ccp", "er", "microtubules", "factin"]
STRUCTURES: tuple[Structure, ...] = ("ccp", "er", "microtubules", "factin")

Mode = Literal["tirf-sim", "gi-sim", "nl-sim", "wf"]
MODES: tuple[Mode, ...] = ("tirf-sim", "gi-sim", "nl-sim", "wf")

# emission peak (nm) seen for each excitation laser line (nm)
EMISSION_NM: dict[int, float] = {405: 450.0, 488: 525.0, 560: 610.0}
