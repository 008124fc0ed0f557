"""Reading a job's output file safely, on a machine where the platform may be root.

The path of a job's output is the member's choice (``--output=../../data/aif.db``), and the
job itself runs in the folder the file lands in: it can plant a symbolic link there (to the
platform's database, ``/etc/shadow``, another project's output) or swap a folder for a link
between our check and our open. So a path is only read when

- it lies inside a folder the job could write: its own folder (``$HOME``) or the working
  folder it was allowed to start in (what :mod:`~aifactories.executors._confine` chose, as
  the job's ``request.json`` records it), and is none of the platform's files (protected
  folders, hidden files);
- no component of it is a symbolic link: we walk from ``/`` one component at a time with
  ``O_NOFOLLOW | O_DIRECTORY`` and open the last with ``O_NOFOLLOW``, so the file we read is
  the file we checked, whatever the job does meanwhile;
- it is a regular file (never a FIFO that would block us, nor a device);
- when the job ran as its own unprivileged user (a root platform), that user owns it: a
  hard link to a file of someone else keeps its owner.

One file is the platform's own: ``<job dir>/output.log``, which the runner opens itself and
hands to the job as a descriptor, in a folder no job can reach. It is read with the same walk.
Callers translate OSError.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifactories.domain.errors import PermissionDenied
from aifactories.executors.base import OutputChunk, OutputStream
from aifactories.executors.runner import read_json

PLATFORM_OUTPUT = "output.log"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the job planted must not hang the API; it is refused below.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class OutputRefused(PermissionDenied):
    """The job's output path is not one the platform reads (the message says why)."""

    code = "output_refused"


@dataclass(frozen=True, slots=True)
class JobFolders:
    """Where one job could write, as the emulated site set it up (``request.json``). Each
    folder as (path as written, real path): a reported path may use either."""

    job_dir: Path
    work: tuple[Path, Path] | None = None  # the job's own folder ($HOME)
    workdir: tuple[Path, Path] | None = None  # the working folder it started in, if not $HOME
    owner_uid: int | None = None  # its unprivileged user, when the platform switched users

    @property
    def roots(self) -> tuple[tuple[Path, Path], ...]:
        return tuple(p for p in (self.work, self.workdir) if p is not None)


def job_folders(job_dir: Path) -> JobFolders:
    """The folders of the job in ``job_dir``; none before the job was scheduled (or for a
    sleep job, which starts no process)."""
    request = read_json(job_dir / "request.json")
    if not isinstance(request, dict) or not request.get("command"):
        return JobFolders(job_dir)
    env = request.get("env") or {}
    work = _folder(env.get("HOME") if isinstance(env, dict) else None)
    workdir = _folder(_started_in(request))
    if workdir is not None and work is not None and workdir[1] == work[1]:
        workdir = None
    owner = request.get("owner")
    uid = int(owner[0]) if isinstance(owner, list) and owner else None
    return JobFolders(job_dir, work, workdir, uid)


def _started_in(request: dict[str, Any]) -> str | None:
    """The working folder: the runner's ``cwd``, except in a sandbox, where the runner starts
    bwrap in the job's directory and bwrap enters the folder (its first ``--chdir``: bwrap's
    own options come before the job's command, which may hold any word)."""
    if not request.get("sandboxed"):
        cwd = request.get("cwd")
        return cwd if isinstance(cwd, str) else None
    argv = request.get("command")
    if not isinstance(argv, list) or "--chdir" not in argv:
        return None
    at = argv.index("--chdir")
    return str(argv[at + 1]) if at + 1 < len(argv) else None


def _folder(path: object) -> tuple[Path, Path] | None:
    # The platform made these folders (the job cannot rename them: their parents are the
    # platform's); resolving them once lets the walk below refuse every link.
    if not isinstance(path, str) or not os.path.isabs(path):
        return None
    return Path(os.path.normpath(path)), Path(os.path.realpath(path))


def read_output_file(
    path: str,
    folders: JobFolders,
    offset: int,
    limit: int,
    *,
    protected: Sequence[Path] = (),
    hidden_files: Sequence[Path] = (),
) -> OutputChunk | None:
    """Up to ``limit`` bytes of ``path`` from ``offset``; None if it does not exist.
    Raises OutputRefused when the path is not one to read (see the module docstring)."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
    target, platform_file = _place(path, folders, protected, hidden_files)
    fd = _open_nofollow(target, path)
    if fd is None:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputRefused(f"the output path {path!r} is not a regular file")
        job_uid = None if platform_file else folders.owner_uid
        if job_uid is not None and info.st_uid != job_uid:
            raise OutputRefused(
                f"the output file {path!r} does not belong to the job's user; the "
                "platform reads only files the job wrote"
            )
        data = os.pread(fd, min(limit, max(0, info.st_size - offset)), offset) if limit else b""
        # the size after the read: a file that grew meanwhile is not reported short
        size = max(os.fstat(fd).st_size, info.st_size)
        return OutputChunk(data=data, offset=offset, size=size, path=str(target))
    finally:
        os.close(fd)


def _place(
    path: str, folders: JobFolders, protected: Sequence[Path], hidden_files: Sequence[Path]
) -> tuple[Path, bool]:
    """The real path to walk, and whether it is the platform's own file. Lexical: without
    links, ``..`` means what it says, and the walk refuses every link."""
    if not os.path.isabs(path):
        raise OutputRefused(f"the output path {path!r} is not absolute")
    wanted = Path(os.path.normpath(path))
    job_dir = _folder(str(folders.job_dir))
    assert job_dir is not None
    own = _under(wanted, (job_dir[0] / PLATFORM_OUTPUT, job_dir[1] / PLATFORM_OUTPUT))
    if own is not None and own == job_dir[1] / PLATFORM_OUTPUT:
        return own, True
    hidden = {Path(os.path.realpath(h)) for h in hidden_files}
    private = [Path(os.path.realpath(p)) for p in protected]
    for root in folders.roots:
        target = _under(wanted, root)
        if target is None or target == root[1]:
            continue
        in_own_folder = folders.work is not None and _inside(target, folders.work[1])
        if target in hidden or (not in_own_folder and any(_inside(target, p) for p in private)):
            break  # the platform's files, seen through the working folder
        return target, False
    raise OutputRefused(
        f"the output path {path!r} is outside the folders the job could write (its own "
        "folder and its working folder); the platform reads no other file"
    )


def _under(wanted: Path, folder: tuple[Path, Path]) -> Path | None:
    """``wanted`` as a real path inside ``folder`` (written, real), or None."""
    written, real = folder
    if _inside(wanted, real):
        return wanted
    if _inside(wanted, written):
        return real / wanted.relative_to(written)
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _open_nofollow(target: Path, shown: str) -> int | None:
    """Open ``target`` (absolute, normalised) without following a link anywhere in it."""
    parts = target.parts[1:]
    if not parts:
        raise OutputRefused(f"the output path {shown!r} is a folder")
    fd = os.open("/", _DIR_FLAGS)
    try:
        for name in parts[:-1]:
            try:
                inner = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return None
                raise _refusal(exc, shown) from exc
            os.close(fd)
            fd = inner
        try:
            return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise _refusal(exc, shown) from exc
    finally:
        os.close(fd)


def _refusal(exc: OSError, shown: str) -> Exception:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return OutputRefused(
            f"the output path {shown!r} goes through a symbolic link (or a file where a "
            "folder should be); the platform follows no link in a job's folders: write the "
            "output to a plain file"
        )
    return exc


def read_emulated_output(
    job_dir: Path,
    stream: OutputStream,
    offset: int,
    limit: int,
    known_path: str | None,
    *,
    protected: Sequence[Path] = (),
    hidden_files: Sequence[Path] = (),
) -> OutputChunk | None:
    """The emulated site's ``read_output``: the path the site reported (``known_path``, or
    the final status's), else ``output.log`` for the output, where the runner writes both
    streams when the job named no files. Callers translate OSError."""
    path = known_path or _reported_path(job_dir, stream)
    if path is None:
        if stream != "output":
            return None  # no file of its own: standard error goes with the output
        path = str(job_dir / PLATFORM_OUTPUT)
    folders = job_folders(job_dir)
    return read_output_file(
        path, folders, offset, limit, protected=protected, hidden_files=hidden_files
    )


def _reported_path(job_dir: Path, stream: OutputStream) -> str | None:
    try:
        final = read_json(job_dir / "status.json")
    except ValueError:
        return None  # torn: the next read sees it whole
    path = final.get(f"{stream}_path") if isinstance(final, dict) else None
    return path if isinstance(path, str) and path else None
