"""The job's own folder staged with its submission folder, so that a script written for
Slurm runs where it expects to: it starts in the folder it was submitted from, reads its
inputs there and writes beside them (``mkdir checkpoints``, a wrapper script, ``reduce_$ID``).

An emulated job must never write into the submitter's folder (it runs as its project's
user; the folder is shown to it read-only), so it starts in its own writable folder instead,
holding one symbolic link per top-level entry of the submission folder, of the same name,
pointing at the original. Reading through a link works (``python3 train.py``, ``cat
data.txt``); a new file or folder lands in the job's own folder, where ``aif logs`` reads.

Runs in the platform process when the job is scheduled, before the job exists: no link
here can be one of the job's. The names the platform linked are kept in ``staged.json`` in
the job's directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from aifactories.executors.runner import atomic_write_json

MAX_LINKS = 10_000  # a folder of a million files would stall the site's scheduling
STAGED_FILE = "staged.json"


def stage_submission(
    source: Path,
    work: Path,
    job_dir: Path,
    owner: tuple[int, int] | None,
    outputs: Mapping[str, bool],
) -> list[str]:
    """Link the entries of ``source`` (a real path the job's user may read) into ``work``;
    the notes for the job's standard error. ``outputs`` maps the first name of each of the
    job's output paths to whether the file lies in a folder of that name: the output files
    are opened with O_NOFOLLOW, so such a name gets no link (a real folder in its place,
    when the submission folder has that folder, as Slurm would find it there)."""
    linked: list[str] = []
    notes: list[str] = []
    with os.scandir(source) as entries:
        for entry in entries:
            name = entry.name
            # Dot names would become the job's HOME's own (.profile, .bash_profile, .local
            # with its site-packages), which they are not on a cluster; they stay reachable
            # at $SLURM_SUBMIT_DIR.
            if name.startswith("."):
                continue
            if name in outputs:
                if outputs[name] and _is_real_folder(source / name):
                    _own_folder(work / name, owner)
                continue
            if len(linked) >= MAX_LINKS:
                notes.append(
                    f"aifactories: only {MAX_LINKS:,} entries of the submission folder "
                    f"{source} were linked into the job's folder; reach the others "
                    "through $SLURM_SUBMIT_DIR"
                )
                break
            try:
                os.symlink(source / name, work / name)
            except FileExistsError:  # the site's own (the job's copy of its script)
                continue
            if owner is not None:
                os.lchown(work / name, *owner)
            linked.append(name)
    atomic_write_json(job_dir / STAGED_FILE, {"source": str(source), "links": linked})
    return notes


def _is_real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _own_folder(path: Path, owner: tuple[int, int] | None) -> None:
    path.mkdir(mode=0o755, exist_ok=True)
    if owner is not None:
        os.chown(path, *owner)
