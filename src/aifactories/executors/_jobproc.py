"""What the runner does to a job as a Slurm node's daemon would: open its output files as the
job's user, and signal its processes (the batch shell, the steps' tasks, or all of them).

Standard library only: imported by :mod:`~aifactories.executors.runner`, which runs as a
script (``python -S runner.py``) where the package itself cannot be imported.

The output paths were chosen by a member and the runner may be root: a file is opened with
the job user's rights (the effective uid is switched for the ``open``), walking down from the
job's own folder one component at a time with ``O_NOFOLLOW``, so a link the job planted is
never followed and a folder the job could not write is never written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
from collections.abc import Iterator, Sequence
from typing import Any

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO in place of the file must not hang the runner; it is refused below.
_FILE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
) | os.O_NONBLOCK


class Streams:
    """The job's open standard output and error (the same descriptor when one file)."""

    def __init__(self, output: int | None, error: int | None, paths: dict[str, str]) -> None:
        self.output = output
        self.error = error
        self.paths = paths

    def note(self, text: str) -> None:
        """A line of the platform's in the job's standard error (Slurm's slurmstepd lines)."""
        fd = self.error if self.error is not None else self.output
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, f"{text}\n".encode(errors="replace"))

    def close(self) -> None:
        for fd in {self.output, self.error} - {None}:
            assert fd is not None
            with contextlib.suppress(OSError):
                os.close(fd)


def open_streams(spec: dict[str, Any], owner: Sequence[int] | None) -> tuple[Streams, str | None]:
    """Open the files ``spec`` names (see ``_slurmlike.stream_paths``); the message is why
    one could not be opened (the job then fails), written into the other if that one opened."""
    refusal = spec.get("refusal")
    if refusal:
        return Streams(None, None, {}), str(refusal)
    root = str(spec["root"])
    output, error = str(spec["output"]), str(spec["error"])
    root_fd = os.open(root, _DIR_FLAGS)  # the platform made it: no link of the job's
    failures: list[str] = []
    opened: dict[str, int | None] = {}
    try:
        with _as_user(owner):
            for stream, path in (("output", output), ("error", error)):
                if path in opened:
                    continue
                try:
                    opened[path] = _open_below(root_fd, root, path)
                except OSError as exc:
                    opened[path] = None
                    failures.append(f"cannot open the job's standard {stream} {path}: {_why(exc)}")
    finally:
        os.close(root_fd)
    streams = Streams(opened[output], opened[error], {"output": output, "error": error})
    message = "; ".join(failures) or None
    if message is not None:
        streams.note(f"aifactories: error: {message}")
    return streams, message


@contextlib.contextmanager
def _as_user(owner: Sequence[int] | None) -> Iterator[None]:
    """Switch the effective ids to the job's user for the opens (the runner is
    single-threaded), so the kernel checks the job's rights, then back."""
    if owner is None or os.geteuid() != 0:
        yield
        return
    uid, gid = int(owner[0]), int(owner[1])
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def _open_below(root_fd: int, root: str, path: str) -> int:
    relative = os.path.relpath(path, root)
    parts = relative.split("/")
    if relative.startswith("..") or relative == "." or "" in parts:
        raise OSError(errno.EINVAL, "not inside the job's own folder")
    fd = os.dup(root_fd)
    try:
        for name in parts[:-1]:
            inner = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open(parts[-1], _FILE_FLAGS, 0o644, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        if not stat.S_ISREG(os.fstat(out).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.ftruncate(out, 0)  # Slurm's default --open-mode=truncate
        os.set_blocking(out, True)
    except OSError:
        os.close(out)
        raise
    return out


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link (the site follows no link in a job's folder)"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a symbolic link or a file, not a folder"
    if exc.errno == errno.ENOENT:
        return "no such folder (create it first, as Slurm wants it to exist)"
    return exc.strerror or str(exc)


# -- the job's processes --------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def session_members(session: int) -> list[tuple[int, int]]:
    """(pid, process group) of every live process of the job's session: the job's processes,
    whatever groups srun or the job made (a job could leave the session with setsid: there
    are no cgroups on an emulated site)."""
    members: list[tuple[int, int]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields and len(fields) > 3 and fields[3] == str(session) and fields[0] not in "ZX":
            members.append((int(entry), int(fields[2])))
    return members


def signal_session(session: int, signum: int, *, skip_group: int | None = None) -> int:
    """Send ``signum`` to the job's processes (those outside ``skip_group``, and never to
    bubblewrap's own, which would end the sandbox); how many."""
    sent = 0
    for pid, group in session_members(session):
        if group == skip_group or (signum != signal.SIGKILL and _comm(pid) == "bwrap"):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
            sent += 1
    return sent


def kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def batch_shell(pid: int, sandboxed: bool) -> int | None:
    """The batch script's own process: the command the runner started, or in a sandbox the
    first process below bubblewrap's own (None while the sandbox is still starting)."""
    if not sandboxed:
        return pid
    current = pid
    for _ in range(8):
        if _comm(current) not in ("bwrap", "setpriv"):
            return current
        children = _children(current)
        if not children:
            return None
        current = children[0]
    return None


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(word) for word in handle.read().split()]
    except OSError:
        return [
            int(entry)
            for entry in os.listdir("/proc")
            if entry.isdigit() and (_stat(int(entry)) or ["", ""])[1] == str(pid)
        ]


def send_job_signal(pid: int, wanted: dict[str, Any], sandboxed: bool, script: bool) -> bool:
    """``--signal``: with ``B:`` to the batch shell alone; else to the job's steps (the tasks
    srun started, in groups of their own), never the batch shell, as Slurm does; a job
    that is a command rather than a script is its own step. False: try again soon."""
    signum = int(wanted["number"])
    if wanted.get("batch_only"):
        shell = batch_shell(pid, sandboxed)
        if shell is None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(shell, signum)
        return True
    if script:
        signal_session(pid, signum, skip_group=pid)
    else:
        signal_session(pid, signum)
    return True


def exit_outcome(code: int, sandboxed: bool = False) -> tuple[str, int | None, str | None]:
    """The job's end as Slurm reports it: exit 0 completed, else failed with the code; killed
    by signal N: failed with 128 + N (a cancel or the time limit is the runner's to say)."""
    if sandboxed and code > 128 and code - 128 in signal.valid_signals():
        code = 128 - code  # bwrap's way of saying "killed by signal code - 128"
    if code == 0:
        return "completed", 0, None
    if code > 0:
        return "failed", code, f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = str(-code)
    return "failed", 128 - code, f"killed by signal {name}"
