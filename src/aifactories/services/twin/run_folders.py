"""Where a run's files go: each run in a folder of its own under ``--out``, so that running the
same command again never overwrites or mixes with the results of an earlier run.

``--out DIR`` is the folder of runs; a run writes into ``DIR/<YYYYmmdd-HHMMSS>-<name>/`` (a
suffix ``-2``, ``-3`` ... when two runs start in the same second) and ``DIR/latest`` points at
the newest one. ``--run-dir DIR`` names the run's folder itself, which must be new or empty."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from aifactories.domain.errors import InvalidInput

LATEST = "latest"
_SLUG = re.compile(r"[^a-z0-9.]+")
_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".swf", ".csv", ".json", ".yaml", ".yml", ".txt")


def run_name(scenario_name: str | None, trace_source: Path | None, sweep: bool = False) -> str:
    """A short name for the run's folder: the scenario's name, else the trace file's name
    without its suffixes, else ``generator``; ``-sweep`` added for a sweep."""
    if scenario_name:
        base = scenario_name
    elif trace_source is not None:
        base = trace_source.name
        while base.lower().endswith(_SUFFIXES):
            base = base[: base.rindex(".")]
    else:
        base = "generator"
    slug = _SLUG.sub("-", base.lower()).strip("-.")[:40].rstrip("-.") or "run"
    return f"{slug}-sweep" if sweep else slug


def new_run_folder(root: Path, name: str, now: datetime | None = None) -> Path:
    """A new, empty folder ``root/<stamp>-<name>`` (created here, so two runs started at once
    never share one) and ``root/latest`` pointed at it."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    attempt = 1
    while True:
        folder = root / (f"{stamp}-{name}" if attempt == 1 else f"{stamp}-{name}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            attempt += 1
            continue
        _point_latest(root, folder.name)
        return folder


def exact_run_folder(folder: Path) -> Path:
    """``--run-dir``: the run's folder as given, created if missing; refused when it already
    holds files (an earlier run's results would be overwritten or mixed with these)."""
    if folder.exists() and not folder.is_dir():
        raise InvalidInput("--run-dir", f"{folder} is a file", limit="a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise InvalidInput(
            "--run-dir",
            f"{folder} already holds files (an earlier run's?), which this run would overwrite",
            limit="a new or empty folder, or --out DIR to get a new folder inside DIR",
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _point_latest(root: Path, target: str) -> None:
    """``root/latest`` -> ``target``, replaced in one step. A convenience only: where symbolic
    links cannot be made (some file systems, Windows without the right), there is none."""
    link = root / LATEST
    if link.exists() and not link.is_symlink():
        return  # a folder or file the user called "latest": never touch it
    temporary = root / f".{LATEST}.{os.getpid()}"
    try:
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target, target_is_directory=True)
        os.replace(temporary, link)
    except OSError:
        temporary.unlink(missing_ok=True)
