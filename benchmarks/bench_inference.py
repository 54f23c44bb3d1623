"""DFCAN inference per backend and precision; the same as ``livesr bench``.

    python benchmarks/bench_inference.py                   # CPU: 128², 256²; GPU: 256², 512², 1024²
    python benchmarks/bench_inference.py --sizes 512 --repeats 200

Writes benchmarks/results/inference_<device>.json and a PNG bar chart beside it.
"""

from __future__ import annotations

import sys

from inference.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
