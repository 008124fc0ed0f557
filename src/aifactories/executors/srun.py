"""``srun`` for the jobs of an emulated site: starts a job step's tasks on this machine.

A batch script written for Slurm calls ``srun python train.py``; on an emulated site every
node of the job is this machine, so srun starts the step's tasks here, each with the
variables Slurm's own srun gives a task (``SLURM_PROCID``, ``SLURM_LOCALID``,
``SLURM_NODEID``, ``SLURM_STEP_ID``, ...), waits for all of them and exits with the highest
exit code (a task killed by signal N counts as 128 + N), as Slurm's srun does. SIGTERM and
SIGINT are passed on to the tasks.

The job runs it as ``srun`` from a folder first on its PATH (a small ``sh`` wrapper made by
:mod:`~aifactories.executors._confine` calls this file with the system's ``python3 -S``).
So it uses the standard library only, and runs on any Python 3.8 or later: inside a sandbox
the system's Python is the only one there is. The platform imports :func:`task_layout` and
:func:`compress_hostlist` from here, so the batch environment and the steps agree.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import selectors
import signal
import subprocess
import sys
from collections.abc import Sequence

# Options srun takes a value for / takes none, that an emulated site accepts and ignores:
# binding, MPI and GPU placement mean nothing when every task runs on one machine.
_IGNORED_WITH_VALUE = (
    "--gpus-per-task", "--gpu-bind", "--cpu-bind", "--cpu_bind", "--mpi", "--export",
    "--gres", "--gpus", "-G", "--gpus-per-node", "--cpus-per-gpu", "--mem", "--mem-per-cpu",
    "--mem-per-gpu", "--distribution", "-m", "--hint", "--threads-per-core", "-J",
    "--job-name", "--time", "-t", "--partition", "-p", "--account", "-A", "--ntasks-per-gpu",
    "--gpus-per-socket", "--mem-bind", "--network", "--wait", "-W", "--propagate",
    "--chdir", "-D",
)  # fmt: skip
_IGNORED_FLAGS = (
    "--unbuffered", "-u", "--exclusive", "--overlap", "--overcommit", "-O", "--quiet", "-Q",
    "--verbose", "-v", "--kill-on-bad-exit", "-K", "--no-kill", "-k", "--whole", "--exact",
)  # fmt: skip
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_MAX_TASKS = 4096


class Usage(Exception):
    """A command line srun cannot run; the message says what is wrong."""


def task_layout(ntasks: int, nodes: int) -> list[int]:
    """Tasks on each node, as Slurm's default (block) distribution lays them out: as even
    as possible, the first nodes taking one more (5 tasks on 2 nodes: 3 and 2)."""
    nodes = max(1, min(nodes, ntasks)) if ntasks > 0 else max(1, nodes)
    base, extra = divmod(ntasks, nodes)
    return [base + (1 if k < extra else 0) for k in range(nodes)]


def tasks_per_node_text(layout: Sequence[int]) -> str:
    """Slurm's SLURM_TASKS_PER_NODE notation: ``3,2``; ``2(x4)`` for repeats."""
    parts: list[str] = []
    k = 0
    while k < len(layout):
        run = 1
        while k + run < len(layout) and layout[k + run] == layout[k]:
            run += 1
        parts.append(str(layout[k]) if run == 1 else f"{layout[k]}(x{run})")
        k += run
    return ",".join(parts)


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def compress_hostlist(names: Sequence[str]) -> str:
    """Slurm's compressed host list: ``booster-[0001-0003,0007]``; ``gpu-0001`` for one."""
    groups: list[tuple[str, int, list[int]]] = []  # (prefix, digits, numbers), in order
    plain: list[str] = []
    for name in names:
        match = _NUMBERED.match(name)
        if match is None:
            plain.append(name)
            continue
        prefix, digits = match.group(1), match.group(2)
        for group in groups:
            if group[0] == prefix and group[1] == len(digits):
                group[2].append(int(digits))
                break
        else:
            groups.append((prefix, len(digits), [int(digits)]))
    out: list[str] = []
    for prefix, width, numbers in groups:
        ordered = sorted(set(numbers))
        runs: list[list[int]] = []
        for number in ordered:
            if runs and number == runs[-1][1] + 1:
                runs[-1][1] = number
            else:
                runs.append([number, number])
        ranges = [
            str(a).zfill(width) if a == b else f"{str(a).zfill(width)}-{str(b).zfill(width)}"
            for a, b in runs
        ]
        if len(ordered) == 1:
            out.append(prefix + ranges[0])
        else:
            out.append(prefix + "[" + ",".join(ranges) + "]")
    return ",".join(out + plain)


# -- the command line -----------------------------------------------------------------------


class Step:
    """What one srun call asks for."""

    def __init__(self) -> None:
        self.ntasks: int | None = None
        self.nodes: int | None = None
        self.ntasks_per_node: int | None = None
        self.cpus_per_task: int | None = None
        self.label = False
        self.command: list[str] = []


def _positive(option: str, text: str) -> int:
    if "-" in text:  # Slurm's MIN-MAX node count: an emulated site takes the minimum
        text = text.split("-", 1)[0]
    if not text.isdigit() or int(text) < 1:
        raise Usage(f"srun: {option} needs a positive whole number, not {text!r}")
    return int(text)


_VALUED = {
    "-n": "ntasks", "--ntasks": "ntasks", "-N": "nodes", "--nodes": "nodes",
    "--ntasks-per-node": "ntasks_per_node", "-c": "cpus_per_task",
    "--cpus-per-task": "cpus_per_task",
}  # fmt: skip


def parse(argv: Sequence[str]) -> Step:
    """srun's options up to the command (the first word that is not an option)."""
    step = Step()
    args = list(argv)
    k = 0
    while k < len(args):
        arg = args[k]
        if arg == "--":
            k += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, equals, value = arg.partition("=")
        if not equals and len(arg) > 2 and arg[1] != "-" and arg[:2] in _VALUED:
            name, equals, value = arg[:2], "=", arg[2:]  # -n4
        if name in ("-l", "--label"):
            step.label = True
        elif name in _VALUED or name in _IGNORED_WITH_VALUE:
            if not equals:
                if k + 1 >= len(args):
                    raise Usage(f"srun: option {name} needs a value")
                k += 1
                value = args[k]
            if name in _VALUED:
                setattr(step, _VALUED[name], _positive(name, value))
        elif name in _IGNORED_FLAGS:
            pass
        else:
            raise Usage(
                f"srun: option {arg!r} is not supported on an emulated site (supported: -n, -N, "
                "--ntasks-per-node, -c, -l; binding and GPU options are accepted and ignored)"
            )
        k += 1
    step.command = args[k:]
    if not step.command:
        raise Usage("srun: no command to run (usage: srun [-n N] [-N N] [-l] COMMAND ...)")
    return step


def _env_int(env: dict[str, str], *names: str) -> int | None:
    for name in names:
        text = env.get(name, "").split("(")[0].split(",")[0]
        if text.isdigit():
            return int(text)
    return None


def layout_of(step: Step, env: dict[str, str]) -> tuple[int, int]:
    """(tasks, nodes) of the step, within the job's allocation."""
    job_nodes = _env_int(env, "SLURM_JOB_NUM_NODES", "SLURM_NNODES") or 1
    nodes = step.nodes or None
    if step.ntasks is not None:
        ntasks = step.ntasks
    elif step.ntasks_per_node is not None:
        ntasks = step.ntasks_per_node * (nodes or job_nodes)
    elif nodes is not None:
        ntasks = nodes
    else:
        ntasks = _env_int(env, "SLURM_NTASKS") or job_nodes
    if nodes is None:
        nodes = min(job_nodes, ntasks)
    if nodes > job_nodes:
        raise Usage(
            f"srun: the step asks for {nodes} nodes but the job has {job_nodes} "
            "(SLURM_JOB_NUM_NODES)"
        )
    if ntasks > _MAX_TASKS:
        raise Usage(f"srun: {ntasks} tasks is more than this emulated site starts ({_MAX_TASKS})")
    return ntasks, nodes


def _next_step_id(env: dict[str, str]) -> int:
    """Steps of a job are numbered from 0, as Slurm numbers them; the count is kept in the
    job's own folder (the only place every srun of the job can write)."""
    home = env.get("HOME")
    if not home:
        return 0
    try:
        fd = os.open(os.path.join(home, ".aif-srun-steps"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        step_id = int(text) if text.isdigit() else 0
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(step_id + 1).encode())
        return step_id
    finally:
        os.close(fd)


def task_environments(step: Step, env: dict[str, str]) -> list[dict[str, str]]:
    ntasks, nodes = layout_of(step, env)
    layout = task_layout(ntasks, nodes)
    names = [n for n in env.get("AIF_NODELIST", "").split(",") if n][:nodes]
    names += [f"node{k:04d}" for k in range(len(names), nodes)]
    step_id = str(_next_step_id(env))
    common = dict(env)
    common.update(
        {
            "SLURM_STEP_ID": step_id,
            "SLURM_STEPID": step_id,
            "SLURM_STEP_NUM_TASKS": str(ntasks),
            "SLURM_STEP_NUM_NODES": str(nodes),
            "SLURM_STEP_NODELIST": compress_hostlist(names),
            "SLURM_STEP_TASKS_PER_NODE": tasks_per_node_text(layout),
            "SLURM_NTASKS": str(ntasks),
            "SLURM_NPROCS": str(ntasks),
            "SLURM_NNODES": str(nodes),
            "SLURM_TASKS_PER_NODE": tasks_per_node_text(layout),
        }
    )
    if step.cpus_per_task is not None:
        common["SLURM_CPUS_PER_TASK"] = str(step.cpus_per_task)
    envs: list[dict[str, str]] = []
    for node, count in enumerate(layout):
        for local in range(count):
            task = dict(common)
            task.update(
                {
                    "SLURM_PROCID": str(len(envs)),
                    "SLURM_LOCALID": str(local),
                    "SLURM_NODEID": str(node),
                    "SLURMD_NODENAME": names[node],
                }
            )
            envs.append(task)
    return envs


# -- running the tasks ----------------------------------------------------------------------


def _join_group(pgid: int) -> None:
    # All tasks of the step in one process group of their own: a signal sent to the batch
    # shell's group (a cancel) reaches srun, which passes it on once, not twice.
    os.setpgid(0, pgid)


def start_tasks(
    command: list[str], envs: list[dict[str, str]], label: bool
) -> list[subprocess.Popen[bytes]]:
    tasks: list[subprocess.Popen[bytes]] = []
    pipe = subprocess.PIPE if label else None
    for env in envs:
        pgid = tasks[0].pid if tasks else 0
        join = functools.partial(_join_group, pgid)
        tasks.append(subprocess.Popen(command, env=env, stdout=pipe, stderr=pipe, preexec_fn=join))
    return tasks


def _forward(tasks: list[subprocess.Popen[bytes]], signum: int) -> None:
    for task in tasks:
        if task.returncode is None:
            with contextlib.suppress(OSError):
                os.kill(task.pid, signum)


def _relay_labelled(tasks: list[subprocess.Popen[bytes]]) -> None:
    """``-l``: every line a task writes, prefixed with its task number, as Slurm prints it."""
    width = len(str(len(tasks) - 1))
    selector = selectors.DefaultSelector()
    pending: dict[int, bytes] = {}
    for number, task in enumerate(tasks):
        for stream, target in ((task.stdout, sys.stdout.buffer), (task.stderr, sys.stderr.buffer)):
            if stream is not None:
                selector.register(stream, selectors.EVENT_READ, (number, target))
    while selector.get_map():
        for key, _ in selector.select():
            number, target = key.data
            data = os.read(key.fd, 65536)
            buffered = pending.pop(key.fd, b"") + data
            if data:
                head, newline, rest = buffered.rpartition(b"\n")
                complete = head + newline
                if rest:
                    pending[key.fd] = rest
            else:  # the task closed it: its last line, even without a newline
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                complete = buffered + (b"\n" if buffered and not buffered.endswith(b"\n") else b"")
            if complete:
                prefix = f"{number:>{width}}: ".encode()
                lines = complete[:-1].split(b"\n")
                target.write(b"".join(prefix + line + b"\n" for line in lines))
                target.flush()


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run(argv: Sequence[str], env: dict[str, str]) -> int:
    try:
        step = parse(argv)
        envs = task_environments(step, env)
    except Usage as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    tasks: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: object) -> None:
        _forward(tasks, signum)

    for signum in _STOP_SIGNALS:
        signal.signal(signum, forward)
    try:
        tasks.extend(start_tasks(step.command, envs, step.label))
    except OSError as exc:
        _forward(tasks, signal.SIGKILL)
        sys.stderr.write(f"srun: error: cannot start {step.command[0]!r}: {exc.strerror or exc}\n")
        return 2 if isinstance(exc, FileNotFoundError) else 1
    if step.label:
        _relay_labelled(tasks)
    worst = 0
    for number, task in enumerate(tasks):
        code = exit_code(task.wait())
        if code:
            node = envs[number]["SLURMD_NODENAME"]
            if task.returncode < 0:
                what = f"Killed by signal {-task.returncode}"
            else:
                what = f"Exited with exit code {code}"
            sys.stderr.write(f"srun: error: {node}: task {number}: {what}\n")
        worst = max(worst, code)
    return worst


def main() -> int:
    return run(sys.argv[1:], dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
