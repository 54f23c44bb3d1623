"""Finish the metadata of a run that did not end on its own (a crash, a kill, a power-off).

The images were written in place as the sets arrived (:mod:`~acquisition.storage.streams`), so
they are already readable; what a killed run leaves unfinished is metadata. For each image, its
``STEM.jsonl`` says which frames reached the disk (a line is written after its pixels); the
time axis is cut to the last time point whose raw sets are all complete, and an OME-TIFF's
OME-XML gains each plane's DeltaT and exposure. Pixel data is not rewritten. ``run.json`` is
updated with what was recovered.
"""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acquisition.storage.streams import (
    StreamReport,
    image_path,
    read_metadata_log,
    rewrite_metadata,
)

__all__ = ["find_logs", "recover"]

STREAMS = ("raw", "wf", "sr")


def find_logs(out: Path) -> list[Path]:
    """Every image metadata log (``*.jsonl``) under ``out/raw``, ``out/wf`` and ``out/sr``."""
    logs = []
    for stream in STREAMS:
        folder = out / stream
        if folder.is_dir():
            logs += sorted(folder.glob("*.jsonl"))
    return logs


def recover(out_dir: str | Path) -> list[StreamReport]:
    """Finish the metadata of every image under ``out_dir``; the reports of what was done.

    Raises ValueError when ``out_dir`` holds no image of a run, or a run that finished.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"no such folder: {out}")
    run = _run_json(out)
    logs = find_logs(out)
    if list(out.glob("*/*.bin")):
        raise ValueError(f"{out}: holds frame journals (.bin) of an older LiveSR; recover them "
                         "with the version that wrote them")
    if not logs:
        raise ValueError(f"{out}: no LiveSR images to recover")
    if run.get("status") in ("finished", "recovered", "failed"):
        raise ValueError(f"{out}: the run {run['status']} already: its files are complete")
    contents = {}
    problems: list[str] = []
    for log in logs:
        try:
            contents[log] = read_metadata_log(log)
        except ValueError as exc:
            problems.append(str(exc))
    raw = [c for log, c in contents.items() if c.layout.stream == "raw"]
    # every stream is cut where the raw data of every position is complete
    n_t = min((c.complete_time_points() for c in raw), default=0)
    if raw and n_t == 0:
        n_t = max(c.last_time_point() for c in raw)  # not one complete set: keep what there is
    reports: list[StreamReport] = []
    for log, content in contents.items():
        layout = content.layout
        path = image_path(log.with_suffix(""), layout.fmt)
        if not path.exists():
            problems.append(f"{log.name}: its image {path.name} is missing")
            continue
        keep_t = n_t if raw else content.last_time_point()
        delta_t, exposure = content.plane_times()
        shape = rewrite_metadata(path, layout, keep_t, delta_t, exposure)
        keep = int(_prod(shape[:-2]))
        written = int((delta_t[:keep] == delta_t[:keep]).sum())  # not NaN
        reports.append(StreamReport(path, shape, layout.axes, written, keep - written,
                                    content.torn_lines))
    _note_in_run_json(out, run, reports, problems)
    if problems and not reports:
        raise ValueError("; ".join(problems))
    return reports


def _prod(values: tuple[int, ...]) -> int:
    result = 1
    for v in values:
        result *= int(v)
    return result


def _run_json(out: Path) -> dict[str, Any]:
    path = out / "run.json"
    if path.exists():
        with suppress(ValueError, OSError):
            data = json.loads(path.read_text())
            return data if isinstance(data, dict) else {}
    return {}


def _note_in_run_json(out: Path, data: dict[str, Any], reports: list[StreamReport],
                      problems: list[str]) -> None:
    data["recovered"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [r.describe() for r in reports],
        "frames": {r.path.name: r.frames for r in reports},
        "planes_not_acquired": {r.path.name: r.missing for r in reports},
        "problems": problems,
    }
    if data.get("status") in (None, "running"):
        data["status"] = "recovered"
    path = out / "run.json"
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
