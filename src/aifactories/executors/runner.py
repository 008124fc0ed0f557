"""The runner: one detached process per job of the emulated site (stdlib only).

The emulated executor launches ``python runner.py --many RUNS_LOG JOB_DIR...`` (or
``runner.py JOB_DIR RUNS_LOG`` for one job) in a new session and waits for it; that launcher
claims each job, forks its real runner and exits, so the platform process never keeps
children (nor zombies) and the job survives the platform's death.

Files in ``JOB_DIR`` (the protocol between executor and runner)::

    request.json  what to run; written by the executor before the launch, read-only here
    claim         created atomically (hard link) by the first launcher: a job runs at most once
    runner.json   {"pid", "start"}: the process supervising the job (written by the launcher)
    cancel        the executor's request to stop, for a runner that has not started the job yet
    child.json    {"pid"}: the command's process group
    streams.json  {"output", "error"}: the job's own files, once the runner opened them
    output.log    the runner's notes when the job's own files could not be opened
    end.json      the outcome, written atomically, last

The job's standard output and error go to the files its batch options name (Slurm's
``slurm-<job id>.out`` by default), in its own folder, opened with the job user's rights
(see :mod:`~aifactories.executors._jobproc`); the runner's own notes go to its standard
error, as slurmstepd's do.

The runner reads time in one place, :func:`_now` (monotonic seconds): it is its own process,
outside the platform's injected clock, and only measures durations.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

try:  # imported by the platform, as part of the package ...
    from aifactories.executors import _jobproc
except ImportError:  # ... or run as a script (python -S runner.py): its folder is on sys.path
    import _jobproc  # type: ignore[import-not-found,no-redef]

Streams = _jobproc.Streams

EXIT_LAUNCHED = 0
EXIT_ALREADY_CLAIMED = 3
EXIT_BAD_REQUEST = 4

_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_WAIT_SIGNALS = _STOP_SIGNALS | {signal.SIGCHLD}


def _now() -> float:
    return time.monotonic()


# -- helpers shared with the executor ------------------------------------------------------


def atomic_write_json(path: Path, data: object) -> None:
    """Write ``data`` as JSON so that readers see the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        # dumps, not dump: json.dump encodes in pure Python, dumps in C (a busy emulated
        # site's books are rewritten at every call)
        handle.write(json.dumps(data, separators=(",", ":")))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None if the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (guards against pid reuse),
    or None if there is no such live process. Zombies count as dead."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        return _kill0(pid)
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _kill0(pid: int) -> int | None:
    # Fallback without /proc: existence only, no start time.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0


def process_alive(pid: int, start: int | None) -> bool:
    current = process_start(pid)
    return current is not None and (start is None or start == 0 or current == start)


# -- launcher ------------------------------------------------------------------------------


def _claim(job_dir: Path) -> bool:
    """Create ``claim`` exactly once across every launcher that will ever run for the job."""
    tmp = job_dir / f".claim.{os.getpid()}.tmp"
    me = os.getpid()
    tmp.write_text(json.dumps({"launcher": me, "start": process_start(me)}), encoding="utf-8")
    try:
        os.link(tmp, job_dir / "claim")
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def launch(job_dir: Path, runs_log: Path) -> int:
    return _launch_one(job_dir, runs_log)


def launch_many(runs_log: Path, job_dirs: list[Path]) -> int:
    """One launcher for a chunk of jobs (a job array's tasks arrive so): one interpreter
    start for all of them, a fork per job. Each job is claimed, forked and recorded as
    :func:`launch` does for one; a job another launcher claimed is left to it."""
    worst = EXIT_LAUNCHED
    for job_dir in job_dirs:
        worst = max(worst, _launch_one(job_dir, runs_log))
    return worst


def _launch_one(job_dir: Path, runs_log: Path) -> int:
    if not _claim(job_dir):
        return EXIT_ALREADY_CLAIMED
    request = read_json(job_dir / "request.json")
    if not isinstance(request, dict):
        _write_end(job_dir, "failed", None, "runner: request.json is missing or invalid", 0.0)
        return EXIT_BAD_REQUEST
    # Block the signals before forking so the runner never dies of a SIGTERM it cannot yet
    # handle; it waits for them with sigtimedwait instead of handlers (no races).
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WAIT_SIGNALS)
    pid = os.fork()
    if pid:
        atomic_write_json(job_dir / "runner.json", {"pid": pid, "start": process_start(pid)})
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # the launcher goes on
        return EXIT_LAUNCHED
    os.chdir(job_dir)  # never hold the launcher's (the site's) folder
    os.setsid()  # own process group: cancel signals it without touching anyone else
    try:
        supervise(job_dir, runs_log, request)
    except BaseException as exc:  # report any runner fault as the job's end, never hang
        with contextlib.suppress(BaseException):
            _write_end(job_dir, "failed", None, f"runner error: {exc!r}", 0.0)
    finally:
        os._exit(0)


# -- runner --------------------------------------------------------------------------------


def supervise(job_dir: Path, runs_log: Path, request: dict[str, Any]) -> None:
    started = _now()
    if (job_dir / "cancel").exists():
        _write_end(job_dir, "cancelled", None, "cancelled before start", 0.0)
        return
    # The runs log proves "exactly one run": one line per start, appended in one write.
    line = f"{request['job_id']}\t{request['tag']}\t{os.getpid()}\n".encode()
    fd = os.open(runs_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)

    limit_s = float(request["limit_s"])
    deadline = started + limit_s
    command: list[str] = list(request["command"])
    grace_s = float(request["kill_grace_s"])
    with open(request["output"], "ab") as log:
        if not command:
            sleep_s = request.get("sleep_s")
            sleep_until = None
            if sleep_s is not None and float(sleep_s) <= limit_s:
                sleep_until = started + float(sleep_s)
            outcome, code, reason = _wait(None, request, sleep_until, deadline, grace_s)
            _write_end(job_dir, outcome, code, reason, _now() - started)
            return
        streams, failure = _open_streams(job_dir, request, log)
        if streams is None:
            _write_end(job_dir, "failed", None, failure, _now() - started)
            return
        try:
            _run(job_dir, command, request, streams, started, deadline, grace_s)
        finally:
            streams.close()


def _run(
    job_dir: Path,
    command: list[str],
    request: dict[str, Any],
    streams: Streams,
    started: float,
    deadline: float,
    grace_s: float,
) -> None:
    for note in request.get("notes") or ():
        streams.note(note)
    started_proc = _start(command, request, streams)
    if isinstance(started_proc, tuple):
        status, why = started_proc
        streams.note(f"aifactories runner: {why}")
        _write_end(job_dir, "failed", status, why, _now() - started)
        return
    proc = started_proc
    atomic_write_json(job_dir / "child.json", {"pid": proc.pid, "start": process_start(proc.pid)})
    outcome, code, reason = _wait(proc, request, None, deadline, grace_s)
    label = (request.get("streams") or {}).get("label") or f"JOB {request['job_id']}"
    if outcome == "timeout":
        streams.note(f"aifactories: error: *** {label} CANCELLED DUE TO TIME LIMIT ***")
    elif outcome == "cancelled":
        streams.note(f"aifactories: error: *** {label} CANCELLED ***")
    _write_end(job_dir, outcome, code, reason, _now() - started)


def _open_streams(
    job_dir: Path, request: dict[str, Any], log: BinaryIO
) -> tuple[Streams | None, str | None]:
    """The job's own output files, or None and why (the job fails); the reason is also in
    ``log``, the platform's own file, and in whichever of the job's files did open."""
    spec = request.get("streams")
    if spec is None:  # a request from before output files: everything into the log
        fd = os.dup(log.fileno())
        return Streams(fd, fd, {}), None
    try:
        streams, failure = _jobproc.open_streams(spec, spec.get("owner"))
    except OSError as exc:  # the job's own folder is gone
        streams, failure = Streams(None, None, {}), f"cannot open the job's files: {exc}"
    opened = {
        stream: path
        for stream, path in streams.paths.items()
        if (streams.output if stream == "output" else streams.error) is not None
    }
    if opened:
        atomic_write_json(job_dir / "streams.json", opened)
    if failure is None:
        return streams, None
    for note in request.get("notes") or ():
        log.write(f"{note}\n".encode())
    log.write(f"aifactories: error: {failure}\n".encode())
    log.flush()
    streams.close()
    return None, failure


def _start(
    command: list[str], request: dict[str, Any], streams: Streams
) -> subprocess.Popen[bytes] | tuple[int, str]:
    """Start the job's command exactly as the request says (its environment only, never the
    runner's), or (exit status, why) if it cannot start."""
    exec_error = request.get("exec_error")
    if exec_error:
        return 127, f"cannot start {request.get('program')!r}: {exec_error}"
    owner = request.get("owner")
    cwd = str(request["cwd"])
    env = {str(k): str(v) for k, v in request["env"].items()}
    try:
        if owner is None:
            return subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=streams.output,
                stderr=streams.error,
                start_new_session=True,
                preexec_fn=_unblock_signals,
            )
        # User mode: drop to the job's user before anything else, then enter the folder as
        # that user, so the kernel decides what the job may reach.
        uid, gid = int(owner[0]), int(owner[1])
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=streams.output,
            stderr=streams.error,
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=[],
            umask=0o077,
            preexec_fn=lambda: _enter_as_job(cwd, env.get("HOME", "/")),
        )
    except OSError as exc:
        status = 127 if isinstance(exc, FileNotFoundError) else 126
        return status, f"cannot start {command[0]!r}: {exc.strerror or exc}"
    except subprocess.SubprocessError as exc:  # the switch to the job's user failed
        return 126, f"cannot start {command[0]!r} as the job's user: {exc}"


def _enter_as_job(cwd: str, home: str) -> None:
    """In the child, after the switch to the job's user."""
    _unblock_signals()
    try:
        os.chdir(cwd)
    except OSError as exc:
        os.write(2, f"aifactories runner: cannot enter {cwd}: {exc.strerror}\n".encode())
        os.chdir(home)


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WAIT_SIGNALS)


def _wait(
    proc: subprocess.Popen[bytes] | None,
    request: dict[str, Any],
    sleep_until: float | None,
    deadline: float,
    grace_s: float,
) -> tuple[str, int | None, str | None]:
    sandboxed = bool(request.get("sandboxed"))
    wanted = request.get("signal") if proc is not None else None
    # --signal: that long before the time limit (never before the start)
    signal_at = None if wanted is None else deadline - float(wanted["before_s"])
    while True:
        if proc is not None:
            code = proc.poll()
            if code is not None:
                _end_strays(proc.pid)
                return _jobproc.exit_outcome(code, sandboxed)
        now = _now()
        if sleep_until is not None and now >= sleep_until:
            return "completed", 0, None
        if now >= deadline:
            _stop(proc, grace_s)
            return "timeout", None, "time limit reached"
        wake = deadline if sleep_until is None else min(deadline, sleep_until)
        if proc is not None and wanted is not None and signal_at is not None:
            if now >= signal_at:
                script = bool(request.get("script"))
                if _jobproc.send_job_signal(proc.pid, wanted, sandboxed, script):
                    signal_at = None
                else:  # the sandbox is still starting: look again soon
                    signal_at = now + 0.05
            if signal_at is not None:
                wake = min(wake, signal_at)
        info = signal.sigtimedwait(_WAIT_SIGNALS, max(0.0, wake - now))
        if info is not None and info.si_signo in _STOP_SIGNALS:
            _stop(proc, grace_s)
            return "cancelled", None, "cancelled"


def _end_strays(pgid: int) -> None:
    """Whatever the job left running (its group, and steps' tasks in groups of their own)
    ends with it, as Slurm's cgroup would end it."""
    _kill_group(pgid, signal.SIGKILL)
    _jobproc.signal_session(pgid, signal.SIGKILL)


def _stop(proc: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM the command's group, then SIGKILL after the grace period (Slurm's KillWait)."""
    if proc is None:
        return
    # The batch shell's group: srun passes the signal on to its tasks (once, not twice).
    _kill_group(proc.pid, signal.SIGTERM)
    until = _now() + grace_s
    # the grace is for every process of the job, not only the batch shell (steps' tasks are
    # not the runner's children: no SIGCHLD for them, so look every 50 ms)
    while _now() < until and (proc.poll() is None or _jobproc.session_members(proc.pid)):
        signal.sigtimedwait({signal.SIGCHLD}, min(0.05, max(0.0, until - _now())))
    _end_strays(proc.pid)
    proc.wait()


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    _jobproc.kill_group(pgid, sig)


def _write_end(
    job_dir: Path, outcome: str, code: int | None, reason: str | None, real_elapsed_s: float
) -> None:
    end = {
        "outcome": outcome,
        "exit_code": code,
        "reason": reason,
        "real_elapsed_s": real_elapsed_s,
    }
    atomic_write_json(job_dir / "end.json", end)


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[1] == "--many":
        return launch_many(Path(argv[2]), [Path(a) for a in argv[3:]])
    if len(argv) != 3:
        usage = "usage: runner.py JOB_DIR RUNS_LOG | runner.py --many RUNS_LOG JOB_DIR..."
        print(usage, file=sys.stderr)
        return 2
    return launch(Path(argv[1]), Path(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
