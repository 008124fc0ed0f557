"""A Slurm job's standard output and error: where Slurm writes them, and reading them back.

Where: slurmctld keeps the *pattern* (the job record's ``standard_output`` and
``standard_error``: made absolute by ``squeue --json``, as given in REST v0.0.38, empty for
an error that goes with the output); slurmstepd fills it in when the job starts. 22.05's
``sacct`` has no such field and ``scontrol show job`` leaves ``%N`` unexpanded, so
:func:`stdio_paths` fills the pattern in from the record itself, as slurmstepd does, while
the controller still knows the job; the broker keeps the paths on the job.

Reading: the path is the member's choice, and the job runs in the folder its file lands in,
so a path is read only if it is absolute, no component of it is a symbolic link, it is a
regular file, it lies outside the kernel's pseudo file systems, and the job's Slurm user owns
it (a hard link to someone else's file keeps its owner). Where the site's file system is
mounted here, the file is opened through the same no-link walk as the emulated site's
(:mod:`aifactories.executors._output`); over ``ssh`` the same checks run in the remote shell,
which is only a best effort: between ``test`` and ``tail`` the job could swap a folder for a
link, and only a local ``O_NOFOLLOW`` walk closes that window.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aifactories.domain.batch import ArrayTask, expand_output_pattern
from aifactories.domain.errors import SiteUnavailable
from aifactories.executors._output import OutputRefused, _open_nofollow
from aifactories.executors.base import OutputChunk, OutputStream

# Files there are not files a job wrote: /proc/<pid>/environ of one of our own processes
# would pass every other check when the job runs as the platform's user.
_PSEUDO = ("/proc", "/sys", "/dev", "/run")
_NO_ARRAY = 4294967294  # Slurm's NO_VAL for array_task_id


def _expand(pattern: str, record: Mapping[str, Any]) -> str | None:
    if "\\" in pattern:
        return pattern.replace("\\", "")  # Slurm takes such a name literally
    node = str(record.get("batch_host") or "")
    if ("%N" in pattern or "%n" in pattern) and not node:
        return None  # only known once the job has a node
    task = record.get("array_task_id")
    array = None
    if isinstance(task, int) and task != _NO_ARRAY and record.get("array_job_id"):
        array = ArrayTask(int(record["array_job_id"]), task, 1, task, task)
    path = expand_output_pattern(
        pattern,
        job_id=str(record["job_id"]),
        name=str(record.get("name") or ""),
        user=str(record.get("user_name") or ""),
        node=node.split(".", 1)[0],
        array=array,
    )
    cwd = str(record.get("current_working_directory") or "/")
    return posixpath.normpath(posixpath.join(cwd, path))


def stdio_paths(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(output, error) paths of a job record; error None when it goes with the output."""
    output = str(record.get("standard_output") or "")
    error = str(record.get("standard_error") or "")
    if not output:
        return None, None
    out_path = _expand(output, record)
    err_path = _expand(error, record) if error and error != output else None
    return out_path, (err_path if err_path != out_path else None)


def path_of(record: Mapping[str, Any], stream: OutputStream) -> str | None:
    output, error = stdio_paths(record)
    return output if stream == "output" else error


def _checked(path: str) -> str:
    if not posixpath.isabs(path):
        raise OutputRefused(f"the output path {path!r} is not absolute")
    normal = posixpath.normpath(path)
    if any(normal == top or normal.startswith(top + "/") for top in _PSEUDO):
        raise OutputRefused(f"the output path {path!r} is not a file a job writes")
    return normal


def _owner_refused(path: str) -> OutputRefused:
    return OutputRefused(
        f"the output file {path!r} does not belong to the job's Slurm user; the platform "
        "reads only files the job could have written"
    )


def read_local(path: str, owner_uid: int, offset: int, limit: int) -> OutputChunk | None:
    """Up to ``limit`` bytes of ``path`` from ``offset`` on this host's view of the site's
    file system; None if it does not exist. Raises OutputRefused (see the module doc)."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
    target = _checked(path)
    fd = _open_nofollow(Path(target), path)
    if fd is None:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputRefused(f"the output path {path!r} is not a regular file")
        if info.st_uid != owner_uid:
            raise _owner_refused(path)
        data = os.pread(fd, min(limit, max(0, info.st_size - offset)), offset) if limit else b""
        size = max(os.fstat(fd).st_size, info.st_size)
        return OutputChunk(data=data, offset=offset, size=size, path=target)
    finally:
        os.close(fd)


# One remote shell: the checks, then a header line, then the bytes. $1 is the path, $2 the
# owner's uid ("" for the ssh user's own), $3 the first byte (1-based), $4 the count.
_REMOTE = r"""
p=$1; want=${2:-$(id -u)}
if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo absent; exit 0; fi
if [ "$(readlink -f -- "$p")" != "$p" ]; then echo link; exit 0; fi
if [ ! -f "$p" ]; then echo special; exit 0; fi
if [ "$(stat -c %u -- "$p")" != "$want" ]; then echo owner; exit 0; fi
printf 'ok %s\n' "$(stat -c %s -- "$p")"
tail -c "+$3" -- "$p" | head -c "$4"
"""


def read_over_ssh(
    host: str, path: str, owner_uid: int | None, offset: int, limit: int, timeout_s: float
) -> OutputChunk | None:
    """:func:`read_local` on the site's login node through ``ssh -o BatchMode=yes``, as the
    CLI back-end runs its commands; ``owner_uid`` None means the ssh user (who submitted)."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
    target = _checked(path)
    args = [target, "" if owner_uid is None else str(owner_uid), str(offset + 1), str(limit)]
    remote = shlex.join(["sh", "-c", _REMOTE, "aif-read-output", *args])
    try:
        done = subprocess.run(
            ["ssh", "-o", "BatchMode=yes", host, remote],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SiteUnavailable(f"ssh {host} did not answer within {timeout_s:g} s") from exc
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        raise SiteUnavailable(f"reading {path} through ssh {host} failed: {said}")
    head, _, data = done.stdout.partition(b"\n")
    word, _, size_text = head.decode(errors="replace").partition(" ")
    if word == "absent":
        return None
    if word == "link":
        raise OutputRefused(
            f"the output path {path!r} goes through a symbolic link; the platform follows "
            "no link in a job's folders: write the output to a plain file"
        )
    if word == "special":
        raise OutputRefused(f"the output path {path!r} is not a regular file")
    if word == "owner":
        raise _owner_refused(path)
    if word != "ok" or not size_text.isdigit():
        raise SiteUnavailable(f"reading {path} through ssh {host}: unexpected answer {head!r}")
    size = max(int(size_text), offset + len(data))
    return OutputChunk(data=data[:limit], offset=offset, size=size, path=target)
