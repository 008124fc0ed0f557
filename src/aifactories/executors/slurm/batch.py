"""A submit request as a Slurm batch job: the fields both Slurm back-ends send (``sbatch``
options for the CLI, the ``job`` object for REST).

The broker's tag (``aif-<job id>``) travels twice: as the job's comment and as the prefix of
its name (``aif-<id>_<name>``), because ``sacct -c`` (jobcomp/filetxt) and some sites do not
keep comments, and a restarted broker must still find its jobs.

The user's script is sent as written, except for two things, neither of which moves a line:

- its ``#SBATCH`` (and ``#PBS``) directives become ``##SBATCH``, Slurm's own way to switch a
  directive off. The platform has already read them and sends what it honours as options;
  left on, sbatch would apply the rest itself (an ``--array`` would make every task an array
  again, a ``--dependency`` names the platform's job ids, ``--mail-type`` would mail from the
  site, ``--gpus-per-node`` would clash with our ``--gres``).
- a shell script gets ``export SLURM_JOB_NAME=<its name>`` in its first blank line before the
  first command (or a new line 2 if it has none): Slurm sets the variable to the job's name at
  the site, which carries the tag, and a script that names its checkpoints after its job
  should see the name it gave.

Output patterns: ``%x`` (the name), ``%u`` (the platform user), and for an array task ``%A``
and ``%a`` (the platform's array, which it runs as one Slurm job per task) are filled in
here; ``%j``, ``%N``, ``%n``, ``%s``, ``%t`` are left to Slurm, so ``%j`` is the id the job
sees as ``SLURM_JOB_ID``. A relative pattern is relative to the job's working folder.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field

from aifactories.domain.batch import ArrayTask, JobSignal
from aifactories.domain.jobs import ANY_GPU_MODEL
from aifactories.executors.base import SubmitRequest

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DIRECTIVE = re.compile(r"^#(SBATCH|PBS)")
_SHELLS = frozenset({"sh", "bash", "dash", "ksh", "zsh", "ash"})
_PATTERN = re.compile(r"%(%|[0-9]*[A-Za-z])")


@dataclass(frozen=True)
class BatchJob:
    """One Slurm batch job. ``gpu_type`` is the lowercase GPU model, None for any model;
    ``gpus_per_node`` is per node (a gang job takes whole nodes); ``output`` and ``error``
    are path patterns as Slurm takes them (``error`` None: with the output). The resource
    options are None (or 1 CPU per task) where the user left Slurm's default."""

    name: str
    tag: str
    account: str
    partition: str
    nodes: int
    gpus_per_node: int
    gpu_type: str | None
    exclusive: bool
    time_limit_min: int
    script: str
    workdir: str
    output: str
    error: str | None = None
    qos: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ntasks: int | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int = 1
    mem_per_node_mb: int | None = None
    mem_per_gpu_mb: int | None = None
    signal: JobSignal | None = None
    requeue: bool | None = None

    @property
    def comment(self) -> str:
        return self.tag

    @property
    def gres(self) -> str | None:
        """The per-node GPU request: ``gpu:a100:4``, or ``gpu:4`` for any model."""
        if self.gpus_per_node <= 0:
            return None
        if self.gpu_type:
            return f"gpu:{self.gpu_type}:{self.gpus_per_node}"
        return f"gpu:{self.gpus_per_node}"


def _is_shell(first_line: str) -> bool:
    words = first_line[2:].split()
    if not words:
        return False
    program = words[0].rsplit("/", 1)[-1]
    if program == "env":  # '#!/usr/bin/env bash', '#!/usr/bin/env -S bash -l'
        program = next((w for w in words[1:] if not w.startswith("-")), "")
    return program in _SHELLS


def site_script(text: str, job_name: str) -> str:
    """The script as sent to the site (see the module docstring): directives switched off,
    and SLURM_JOB_NAME set in a shell script; no line moves when it has a blank one."""
    if not text.startswith("#!"):
        text = "#!/bin/bash\n" + text  # sbatch refuses a script without '#!interpreter'
    lines = text.split("\n")
    header = True
    blank: int | None = None
    for k in range(1, len(lines)):
        line = lines[k]
        if not header:
            break
        if not line.strip():
            blank = k if blank is None else blank
        elif _DIRECTIVE.match(line):
            lines[k] = "#" + line
        elif not line.startswith("#"):
            header = False  # sbatch reads no directive after the first command
    if _is_shell(lines[0]):
        export = f"export SLURM_JOB_NAME={shlex.quote(job_name)}"
        if blank is not None:
            lines[blank] = export
        else:
            lines.insert(1, export)
    return "\n".join(lines)


def _script(request: SubmitRequest) -> str:
    spec = request.spec
    if spec.script is not None:
        return site_script(spec.script, spec.name)
    if spec.command:
        body = shlex.join(spec.command)
    elif spec.runtime_s is not None:
        body = f"sleep {int(spec.runtime_s)}"
    else:
        body = "true"
    return f"#!/bin/bash\n{body}\n"


def fill_pattern(pattern: str, *, name: str, user: str, array: ArrayTask | None) -> str:
    """Fill in what only the platform knows (see the module docstring); the rest stays for
    Slurm. What is filled in has its ``%`` doubled, so Slurm does not read it again. A
    pattern with a backslash is taken literally by Slurm: it is left alone."""
    if "\\" in pattern:
        return pattern

    def one(match: re.Match[str]) -> str:
        spec = match.group(1)
        letter = spec[-1]
        values = {"x": name, "u": user}
        if array is not None:
            values |= {"A": str(array.array_job_id), "a": str(array.task_id)}
        value = values.get(letter)
        if value is None or spec == "%":
            return match.group(0)
        width = spec[:-1]
        if width and value.isdigit():
            value = value.zfill(min(int(width), 10))
        return value.replace("%", "%%")

    return _PATTERN.sub(one, pattern)


def batch_job(request: SubmitRequest, *, output_dir: str, qos: str | None = None) -> BatchJob:
    """The batch job for ``request``; output goes to the user's ``--output`` pattern, else to
    ``output_dir/<name>-<slurm id>.out``."""
    spec = request.spec
    options = spec.batch
    name = f"{request.tag}_{_NAME_UNSAFE.sub('-', spec.name).strip('-') or 'job'}"
    model = spec.gpu_model.strip().lower()
    output_dir = output_dir.rstrip("/") or "/"

    def pattern(text: str) -> str:
        return fill_pattern(text, name=spec.name, user=request.user, array=options.array)

    environment = {
        "PATH": DEFAULT_PATH,
        "AIF_JOB_ID": str(request.job_id),
        "AIF_TAG": request.tag,
        "AIF_USER": request.user,
    }
    if options.array is not None:
        environment |= options.array.environment()
    return BatchJob(
        name=name,
        tag=request.tag,
        account=request.account,
        partition=request.partition.name,
        nodes=request.shape.nodes,
        gpus_per_node=request.shape.gpus_per_node,
        gpu_type=None if model in ("", ANY_GPU_MODEL) else model,
        exclusive=request.shape.exclusive or spec.whole_nodes,
        time_limit_min=max(1, math.ceil(spec.time_limit_s / 60)),
        script=_script(request),
        workdir=spec.workdir or output_dir,
        output=pattern(options.output) if options.output else f"{output_dir}/{name}-%j.out",
        error=pattern(options.error) if options.error else None,
        qos=qos,
        environment=environment,
        ntasks=spec.ntasks,
        ntasks_per_node=spec.ntasks_per_node,
        cpus_per_task=spec.cpus_per_task,
        mem_per_node_mb=spec.mem_per_node_mb,
        mem_per_gpu_mb=spec.mem_per_gpu_mb,
        signal=options.signal,
        requeue=options.requeue,
    )


def sbatch_args(job: BatchJob) -> list[str]:
    """``sbatch`` options for ``job`` (the script goes on standard input)."""
    args = [
        "--parsable",
        f"--job-name={job.name}",
        f"--comment={job.comment}",
        f"--account={job.account}",
        f"--partition={job.partition}",
        f"--nodes={job.nodes}",
    ]
    if job.gres:
        args.append(f"--gres={job.gres}")
    if job.exclusive:
        args.append("--exclusive")
    if job.ntasks is not None:
        args.append(f"--ntasks={job.ntasks}")
    if job.ntasks_per_node is not None:
        args.append(f"--ntasks-per-node={job.ntasks_per_node}")
    if job.cpus_per_task != 1:
        args.append(f"--cpus-per-task={job.cpus_per_task}")
    if job.mem_per_node_mb is not None:
        args.append(f"--mem={job.mem_per_node_mb}")  # megabytes, sbatch's default unit
    if job.mem_per_gpu_mb is not None:
        args.append(f"--mem-per-gpu={job.mem_per_gpu_mb}")
    args += [
        f"--time={job.time_limit_min}",
        f"--chdir={job.workdir}",
        f"--output={job.output}",
    ]
    if job.error is not None:
        args.append(f"--error={job.error}")
    if job.signal is not None:
        args.append(f"--signal={job.signal.as_option()}")
    if job.requeue is not None:
        args.append("--requeue" if job.requeue else "--no-requeue")
    if job.qos:
        args.append(f"--qos={job.qos}")
    return args
