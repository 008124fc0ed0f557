"""How an emulated site looks like Slurm to a job: the ``SLURM_*`` variables of a batch job,
where its standard output and error go (``--output``/``--error``) and when it gets its
``--signal``. The runner carries these out (see :mod:`~aifactories.executors.runner`); the
steps' tasks get theirs from ``srun`` (see :mod:`~aifactories.executors.srun`).

Output files: relative paths start in the job's own folder (its ``$HOME``), the folder it
starts in, staged with links to its submission folder, which it sees read-only (a job never
writes into the checkout the platform may run from). A path outside the job's own folder
fails the job, as a path Slurm cannot open does, with the reason in its output: it is the
only folder that both the job may write and the platform may read back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aifactories.domain.batch import ArrayTask, batch_options_from_dict, expand_output_pattern
from aifactories.domain.fit import task_count
from aifactories.domain.sites import Partition
from aifactories.executors._sitestate import JobRecord
from aifactories.executors.base import SubmitRequest
from aifactories.executors.runner import read_json
from aifactories.executors.srun import compress_hostlist, task_layout, tasks_per_node_text

DEFAULT_OUTPUT = "slurm-%j.out"  # Slurm's default name, in the job's folder
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"


def node_names(job: JobRecord) -> list[str]:
    return [f"{job.partition}-{grant.node:04d}" for grant in job.grants]


def slurm_job_id(job: JobRecord) -> str:
    """The id the member sees (the platform's), not the site's own; records written before
    the platform's id was kept fall back to the site's."""
    return job.job_id or job.id


def is_amd(gpu_model: str) -> bool:
    model = gpu_model.upper()
    return model.startswith("MI") or "AMD" in model or "INSTINCT" in model


def slurm_environment(job: JobRecord, site_id: str) -> dict[str, str]:
    """The variables Slurm sets in a batch job, for this job on its first node."""
    nodes = node_names(job) or [f"{job.partition}-0000"]
    hostlist = compress_hostlist(nodes)
    node_gpus = job.grants[0].gpus if job.grants else ()
    gpus = ",".join(str(gpu) for gpu in node_gpus)
    ntasks = max(1, job.ntasks)
    layout = task_layout(ntasks, len(nodes))
    job_id = slurm_job_id(job)
    env = {
        "SLURM_JOB_ID": job_id,
        "SLURM_JOBID": job_id,
        "SLURM_JOB_NAME": job.name,
        "SLURM_JOB_ACCOUNT": job.account,
        "SLURM_JOB_PARTITION": job.partition,
        "SLURM_JOB_USER": job.user,
        "SLURM_CLUSTER_NAME": site_id,
        "SLURM_JOB_NODELIST": hostlist,
        "SLURM_NODELIST": hostlist,
        "SLURM_JOB_NUM_NODES": str(len(nodes)),
        "SLURM_NNODES": str(len(nodes)),
        "SLURM_NTASKS": str(ntasks),
        "SLURM_NPROCS": str(ntasks),
        "SLURM_TASKS_PER_NODE": tasks_per_node_text(layout),
        "SLURMD_NODENAME": nodes[0],
        # the batch script is task 0 of the batch step on the first node
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "CUDA_VISIBLE_DEVICES": gpus,
    }
    if node_gpus:
        env["SLURM_GPUS_ON_NODE"] = str(len(node_gpus))
        env["SLURM_JOB_GPUS"] = gpus
        if is_amd(job.gpu_model):
            env["ROCR_VISIBLE_DEVICES"] = gpus
    optional = {
        "SLURM_NTASKS_PER_NODE": job.ntasks_per_node,
        "SLURM_CPUS_PER_TASK": job.cpus_per_task,
        "SLURM_MEM_PER_NODE": job.mem_per_node_mb,
        "SLURM_MEM_PER_GPU": job.mem_per_gpu_mb,
    }
    env.update({name: str(value) for name, value in optional.items() if value is not None})
    array = array_task(job)
    if array is not None:
        env.update(array.environment())
    return env


def array_task(job: JobRecord) -> ArrayTask | None:
    return batch_options_from_dict(job.batch).array


def job_signal(job: JobRecord) -> dict[str, Any] | None:
    """``--signal`` for the runner: which signal, how many real seconds before the time
    limit (the site's seconds pass ``time_factor`` times faster), and to whom."""
    wanted = batch_options_from_dict(job.batch).signal
    if wanted is None:
        return None
    return {
        "number": wanted.number,
        "name": wanted.name,
        "before_s": wanted.seconds_before / job.time_factor,
        "batch_only": wanted.batch_only,
    }


def stream_paths(job: JobRecord, work: Path) -> dict[str, Any]:
    """Where the runner opens the job's standard output and error (as the job's user, see
    the runner): ``output`` and ``error`` as real absolute paths inside ``root`` (the job's
    own folder), or ``refusal`` saying why a path the member chose cannot be used."""
    options = batch_options_from_dict(job.batch)
    array = options.array
    output = options.output or (DEFAULT_ARRAY_OUTPUT if array else DEFAULT_OUTPUT)
    error = options.error or output  # with --output only, standard error goes with it
    nodes = node_names(job)
    root = Path(os.path.realpath(work))
    paths: dict[str, Any] = {"root": str(root), "refusal": None}
    for stream, pattern in (("output", output), ("error", error)):
        expanded = expand_output_pattern(
            pattern,
            job_id=slurm_job_id(job),
            name=job.name,
            user=job.user,
            node=nodes[0] if nodes else "",
            array=array,
        )
        place = _inside(expanded, work, root)
        if place is None:
            paths[stream] = expanded
            paths["refusal"] = paths["refusal"] or (
                f"cannot write the job's standard {stream} to {expanded!r}: on an emulated "
                f"site a job's output files must be inside its own folder {work} (its $HOME; "
                "relative paths start there)"
            )
        else:
            paths[stream] = str(place)
    node = nodes[0] if nodes else job.partition
    paths["label"] = f"JOB {slurm_job_id(job)} ON {node}"
    return paths


def output_entries(paths: dict[str, Any]) -> dict[str, bool]:
    """The first name of each output path in the job's folder (see ``stream_paths``), and
    whether the file lies below it, in a folder: where the submission folder is staged,
    these names get no link (the runner follows none)."""
    entries: dict[str, bool] = {}
    root = Path(paths["root"])
    for stream in ("output", "error"):
        place = Path(paths[stream])
        if root in place.parents:
            parts = place.relative_to(root).parts
            entries[parts[0]] = entries.get(parts[0], False) or len(parts) > 1
    return entries


def _inside(path: str, work: Path, root: Path) -> Path | None:
    """``path`` as a real path strictly inside ``root`` (the real ``work``), or None.
    Lexical: the runner then opens it without following any link."""
    if not path or path.endswith("/") or "\0" in path:
        return None
    given = Path(os.path.normpath(path if os.path.isabs(path) else root / path))
    for folder in (root, Path(os.path.normpath(work))):
        if folder in given.parents:
            return root / given.relative_to(folder)
    return None


def record_fields(request: SubmitRequest, partition: Partition) -> dict[str, Any]:
    """What the site keeps of a submission to show the job Slurm's view of itself."""
    spec = request.spec
    mem_per_node = spec.mem_per_node_mb
    if mem_per_node == 0:  # --mem=0: all of a node's memory, where the catalogue knows it
        gb = partition.mem_per_node_gb
        mem_per_node = gb * 1024 if gb else None
    return {
        "job_id": str(request.job_id),
        "gpu_model": partition.gpu_model,
        "ntasks": task_count(spec, request.shape.nodes),
        "ntasks_per_node": spec.ntasks_per_node,
        # Slurm sets SLURM_CPUS_PER_TASK only for -c; 1 is the default here
        "cpus_per_task": spec.cpus_per_task if spec.cpus_per_task != 1 else None,
        "mem_per_node_mb": mem_per_node,
        "mem_per_gpu_mb": spec.mem_per_gpu_mb,
        "batch": spec.batch.as_dict(),
    }


def load_stream_paths(job: JobRecord, job_dir: Path) -> bool:
    """Take the paths the runner opened (``streams.json``) into the record; whether it
    changed. Standard error is reported only when it has a file of its own."""
    if job.output_path is not None or job.phase == "queued":
        return False
    try:
        streams = read_json(job_dir / "streams.json")
    except ValueError:
        return False  # being replaced: the next look sees it whole
    if not isinstance(streams, dict) or not isinstance(streams.get("output"), str):
        return False
    job.output_path = streams["output"]
    error = streams.get("error")
    job.error_path = error if isinstance(error, str) and error != job.output_path else None
    return True


def reported_stream_path(job_dir: Path, stream: str) -> str | None:
    """The path the runner opened for ``stream``; None for standard error in the output's
    file (it has no file of its own)."""
    try:
        streams = read_json(job_dir / "streams.json")
    except ValueError:
        return None
    if not isinstance(streams, dict):
        return None
    path = streams.get(stream)
    if stream == "error" and path == streams.get("output"):
        return None
    return path if isinstance(path, str) else None
