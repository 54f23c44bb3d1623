"""Finalize whatever journals a run left on disk (a crash, a kill, a power-off of the PC).

Every frame whose index line is complete is kept; a torn last line or a frame without all its
bytes is ignored; planes missing from an incomplete last time point are zero-filled and reported.
``run.json`` is updated with what was recovered.
"""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acquisition.storage.finalize import FinalizeReport, finalize_journal
from acquisition.storage.writers import find_journals

__all__ = ["recover"]


def recover(out_dir: str | Path) -> list[FinalizeReport]:
    """Turn every journal under ``out_dir`` into its OME-TIFF; the reports of what was done.

    Raises ValueError when ``out_dir`` holds no journal (nothing to recover, or already done).
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"no such folder: {out}")
    stems = find_journals(out)
    if not stems:
        done = sorted(str(p.relative_to(out)) for pattern in ("*/*.ome.tif", "*/*.ome.zarr")
                      for p in out.glob(pattern))
        already = f" (finalized already: {', '.join(done)})" if done else ""
        raise ValueError(f"{out}: no journal to recover{already}")
    reports: list[FinalizeReport] = []
    problems: list[str] = []
    for stem in stems:
        try:
            reports.append(finalize_journal(stem))
        except ValueError as exc:
            problems.append(str(exc))
    _note_in_run_json(out, reports, problems)
    if problems and not reports:
        raise ValueError("; ".join(problems))
    return reports


def _note_in_run_json(out: Path, reports: list[FinalizeReport], problems: list[str]) -> None:
    path = out / "run.json"
    data: dict[str, Any] = {}
    if path.exists():
        with suppress(ValueError, OSError):
            data = json.loads(path.read_text())
    data["recovered"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [r.describe() for r in reports],
        "frames": {r.path.name: r.frames for r in reports},
        "missing_planes": {r.path.name: [list(k) for k in r.missing] for r in reports},
        "problems": problems,
    }
    if data.get("status") == "running":
        data["status"] = "recovered"
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
