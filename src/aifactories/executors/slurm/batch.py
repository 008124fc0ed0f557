"""A submit request as a Slurm batch job: the fields both Slurm back-ends send (``sbatch``
options for the CLI, the ``job`` object for REST).

The broker's tag (``aif-<job id>``) travels twice: as the job's comment and as the prefix of
its name (``aif-<id>_<name>``), because ``sacct -c`` (jobcomp/filetxt) and some sites do not
keep comments, and a restarted broker must still find its jobs.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field

from aifactories.domain.jobs import ANY_GPU_MODEL
from aifactories.executors.base import SubmitRequest

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BatchJob:
    """One Slurm batch job. ``gpu_type`` is the lowercase GPU model, None for any model;
    ``gpus_per_node`` is per node (a gang job takes whole nodes); ``output`` is the path
    pattern of the job's output file (``%j`` is the Slurm job id)."""

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
    qos: str | None = None
    environment: dict[str, str] = field(default_factory=dict)

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


def _script(request: SubmitRequest) -> str:
    spec = request.spec
    if spec.script is not None:
        text = spec.script
        # sbatch refuses a script whose first line is not '#!interpreter'.
        return text if text.startswith("#!") else "#!/bin/bash\n" + text
    if spec.command:
        body = shlex.join(spec.command)
    elif spec.runtime_s is not None:
        body = f"sleep {int(spec.runtime_s)}"
    else:
        body = "true"
    return f"#!/bin/bash\n{body}\n"


def batch_job(request: SubmitRequest, *, output_dir: str, qos: str | None = None) -> BatchJob:
    """The batch job for ``request``; output goes to ``output_dir/<name>-<slurm id>.out``."""
    spec = request.spec
    name = f"{request.tag}_{_NAME_UNSAFE.sub('-', spec.name).strip('-') or 'job'}"
    model = spec.gpu_model.strip().lower()
    output_dir = output_dir.rstrip("/") or "/"
    return BatchJob(
        name=name,
        tag=request.tag,
        account=request.account,
        partition=request.partition.name,
        nodes=request.shape.nodes,
        gpus_per_node=request.shape.gpus_per_node,
        gpu_type=None if model in ("", ANY_GPU_MODEL) else model,
        exclusive=request.shape.exclusive,
        time_limit_min=max(1, math.ceil(spec.time_limit_s / 60)),
        script=_script(request),
        workdir=spec.workdir or output_dir,
        output=f"{output_dir}/{name}-%j.out",
        qos=qos,
        environment={
            "PATH": DEFAULT_PATH,
            "AIF_JOB_ID": str(request.job_id),
            "AIF_TAG": request.tag,
            "AIF_USER": request.user,
        },
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
    args += [
        f"--time={job.time_limit_min}",
        f"--chdir={job.workdir}",
        f"--output={job.output}",
    ]
    if job.qos:
        args.append(f"--qos={job.qos}")
    return args
