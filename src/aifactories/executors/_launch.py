"""The emulated site's side of the runner protocol: write a job's request, launch its
runner, adopt a runner that is already there, and stop a job's processes.

Callers hold the site lock and translate OSError (see :mod:`~aifactories.executors.emulated`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from aifactories.executors import _slurmlike
from aifactories.executors import runner as runner_module
from aifactories.executors._confine import Owner, confine, make_work_folder
from aifactories.executors._sitestate import JobRecord, SiteFiles
from aifactories.executors.isolation import JobIsolation, JobUsers
from aifactories.executors.nodes import held_gpus
from aifactories.executors.runner import atomic_write_json, process_alive, read_json

RUNNER_SCRIPT = Path(runner_module.__file__)
_AWAIT_RUNNER_STEPS = 200
_AWAIT_RUNNER_STEP_S = 0.01
# The runner is the platform's own process, but it needs none of the platform's settings:
# start it without them, so not even a runner's /proc/<pid>/environ holds a secret.
_RUNNER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def write_request(
    files: SiteFiles, job: JobRecord, site_id: str, kill_grace_s: float, isolation: JobIsolation
) -> None:
    """Everything the runner needs, in the job's directory, before the runner exists: the
    job's confinement is decided here, once (a relaunch after a crash reuses it)."""
    job_dir = files.job_dir(job.id)
    node_gpus = job.grants[0].gpus if job.grants else ()
    nodes = _slurmlike.node_names(job)
    # Our own variables, and Slurm's: to the job the site looks like Slurm, srun included.
    env = {
        "AIF_JOB_ID": job.id,
        "AIF_JOB_NAME": job.name,
        "AIF_TAG": job.tag,
        "AIF_SITE": site_id,
        "AIF_PARTITION": job.partition,
        "AIF_ACCOUNT": job.account,
        "AIF_USER": job.user,
        "AIF_NNODES": str(len(job.grants)),
        "AIF_NODELIST": ",".join(nodes),
        "AIF_GPUS": str(held_gpus(job.grants)),
        "AIF_GPUS_PER_NODE": str(len(node_gpus)),
        "AIF_TIME_LIMIT_S": str(job.time_limit_s),
        "AIF_TIME_FACTOR": repr(job.time_factor),
        **_slurmlike.slurm_environment(job, site_id),
    }
    request: dict[str, object] = {
        "job_id": job.id,
        "tag": job.tag,
        "command": [],
        "output": str(job_dir / "output.log"),
        "sleep_s": None if job.runtime_s is None else job.runtime_s / job.time_factor,
        "limit_s": job.time_limit_s / job.time_factor,
        "kill_grace_s": kill_grace_s,
        "signal": _slurmlike.job_signal(job),
    }
    if job.command:  # a sleep job starts no process: nothing to confine
        request.update(_confined(files, job, env, isolation, f"{site_id}-{job.id}"))
    atomic_write_json(job_dir / "request.json", request)


def _confined(
    files: SiteFiles, job: JobRecord, env: dict[str, str], isolation: JobIsolation, label: str
) -> dict[str, object]:
    job_dir = files.job_dir(job.id)
    owner = job_owner(files, job, isolation)
    work = make_work_folder(isolation, job_dir, label, owner)
    env["SLURM_SUBMIT_DIR"] = job.workdir or str(work)  # where the member submitted from
    command = _script_in_work(job_dir, work, job.command, owner)
    streams = _slurmlike.stream_paths(job, work)
    launch = confine(
        isolation,
        job_dir=job_dir,
        work=work,
        command=command,
        job_env=env,
        wanted_workdir=job.workdir,
        owner=owner,
        user=job.user,
        tools=files.root / "bin",
        outputs=_slurmlike.output_entries(streams),  # no staged link where output goes
    )
    return {
        "command": launch.argv,
        "program": command[0],
        "cwd": launch.cwd,
        "env": launch.env,
        "owner": None if launch.owner is None else list(launch.owner),
        "notes": launch.notes,
        "exec_error": launch.exec_error,
        # bwrap reports a command killed by signal N as exit code 128 + N
        "sandboxed": isolation.mode == "sandbox",
        "script": job.command == _batch_command(job_dir),
        # opened by the runner as the job's user (in a sandbox too, where setpriv drops later)
        "streams": {
            **streams,
            "owner": None if owner is None else list(owner),
        },
    }


def job_owner(files: SiteFiles, job: JobRecord, isolation: JobIsolation) -> Owner | None:
    """The unprivileged user of the job's project, when the platform can switch users."""
    if not isolation.drop_privileges:
        return None
    users_file = isolation.users_file or files.root / "job-users.json"
    uid = JobUsers(users_file, isolation.uid_base, isolation.uid_count).uid_for(job.account)
    return uid, uid


def _script_in_work(
    job_dir: Path, work: Path, command: tuple[str, ...], owner: Owner | None
) -> tuple[str, ...]:
    """A batch script is kept in the job's directory, out of the job's reach: the job gets
    a copy in its own folder, run by the interpreter its ``#!`` line names (as sbatch's
    is: ``#!/bin/bash -l`` is bash, a login shell), else by ``/bin/sh``."""
    if command != _batch_command(job_dir):
        return command
    copy = work / "job-script.sh"
    shutil.copyfile(job_dir / "script.sh", copy)
    if owner is not None:
        os.chown(copy, *owner)
    return (*_interpreter(copy), str(copy))


def _interpreter(script: Path) -> tuple[str, ...]:
    # The kernel's rule: the path, then the rest of the line as one argument (if any).
    with open(script, "rb") as handle:
        first = handle.readline(256).decode(errors="replace").strip()
    if not first.startswith("#!"):
        return ("/bin/sh",)
    path, _, argument = first[2:].strip().partition(" ")
    if not path:
        return ("/bin/sh",)
    return (path, argument.strip()) if argument.strip() else (path,)


def _batch_command(job_dir: Path) -> tuple[str, ...]:
    """How the site runs a batch script (see EmulatedExecutor.submit)."""
    return ("/bin/sh", str(job_dir / "script.sh"))


# Jobs per launcher: one interpreter start for a chunk (a job array's tasks), a fork per
# job; a few launchers side by side keep both cores busy.
_JOBS_PER_LAUNCHER = 16


def spawn(python: str, files: SiteFiles, jobs: Sequence[JobRecord]) -> dict[str, OSError]:
    """Run the jobs' launchers and wait for them: each claims its jobs, forks their runners
    and exits, so the platform keeps no child process. Safe to repeat: only one launcher can
    ever claim a job. Returns the jobs whose launcher could not even be started."""
    failed: dict[str, OSError] = {}
    launchers: list[subprocess.Popen[bytes]] = []
    for first in range(0, len(jobs), _JOBS_PER_LAUNCHER):
        chunk = jobs[first : first + _JOBS_PER_LAUNCHER]
        # -S: the runner uses the standard library only, so skip site-packages (faster).
        args = [python, "-S", str(RUNNER_SCRIPT), "--many", str(files.runs_log)]
        args += [str(files.job_dir(job.id)) for job in chunk]
        try:
            launchers.append(
                subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # out of the platform's process group and tty
                    close_fds=True,
                    env=_RUNNER_ENV,
                    cwd=files.job_dir(chunk[0].id),  # never hold the platform's directory
                )
            )
        except OSError as exc:
            failed.update((job.id, exc) for job in chunk)
    # Started together, waited together. A blocking wait (the launcher only claims, forks
    # and exits): Popen.wait(timeout) would poll with sleeps of up to 50 ms per job.
    for launcher in launchers:
        launcher.wait()
    return failed


def adopt(files: SiteFiles, job: JobRecord) -> bool:
    """Take the runner's pid from ``runner.json`` if a launcher has written it."""
    runner = read_json(files.job_dir(job.id) / "runner.json")
    if runner is None:
        return False
    job.runner_pid = int(runner["pid"])
    job.runner_start = runner.get("start")
    job.phase = "running"
    return True


def launcher_alive(files: SiteFiles, job: JobRecord) -> bool | None:
    """None if no launcher ever claimed the job, else whether the claiming one still runs."""
    claim = read_json(files.job_dir(job.id) / "claim")
    if claim is None:
        return None
    return process_alive(int(claim["launcher"]), claim.get("start"))


def runner_alive(job: JobRecord) -> bool:
    return job.runner_pid is not None and process_alive(job.runner_pid, job.runner_start)


def stop(files: SiteFiles, job: JobRecord) -> None:
    """Stop a job's processes: the runner ends its command (SIGTERM, grace, SIGKILL)."""
    if job.phase == "queued":
        return
    with contextlib.suppress(FileExistsError):
        (files.job_dir(job.id) / "cancel").touch(exist_ok=False)  # for a runner not yet going
    if job.runner_pid is None and not adopt(files, job):
        _await_runner(files, job)
    if job.runner_pid is not None and runner_alive(job):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.runner_pid, signal.SIGTERM)  # the runner leads its own group
    else:
        kill_child(files, job)


def _await_runner(files: SiteFiles, job: JobRecord) -> None:
    """A launcher left by a platform that died may be forking the runner right now (it
    checked the cancel file already): wait a little for its pid rather than miss it."""
    for _ in range(_AWAIT_RUNNER_STEPS):
        if launcher_alive(files, job) is not True or adopt(files, job):
            return
        time.sleep(_AWAIT_RUNNER_STEP_S)
    adopt(files, job)


def kill_child(files: SiteFiles, job: JobRecord) -> None:
    """Kill a command whose runner is gone, as a failed node takes its processes along."""
    child = read_json(files.job_dir(job.id) / "child.json")
    if child is not None and process_alive(int(child["pid"]), child.get("start")):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(child["pid"]), signal.SIGKILL)
