"""Whether a job could ever run on a partition, and how its tasks lay out there.

One place for every rule a partition imposes -- the partitions the job named, GPU model and
memory, the gang shape, CPU cores and memory per node, the partition's longest time limit --
so that admission, the broker's placement, failover and the twin agree, and so that a job
refused at submission is told which rule it broke.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aifactories.domain.jobs import JobSpec, Shape, shape_on
from aifactories.domain.sites import Partition


@dataclass(frozen=True, slots=True)
class Misfit:
    """Why a partition can never run a job; ``rule`` names the option at fault."""

    rule: str  # "partition", "gpu_model", "min_gpu_memory_gb", "gpus", "cpus", "mem", "time"
    why: str


def tasks_per_node(spec: JobSpec, nodes: int) -> int:
    """Tasks on each node: --ntasks-per-node, else --ntasks spread over the nodes, else one."""
    if spec.ntasks_per_node is not None:
        return spec.ntasks_per_node
    if spec.ntasks is not None:
        return math.ceil(spec.ntasks / nodes)
    return 1


def task_count(spec: JobSpec, nodes: int) -> int:
    """SLURM_NTASKS: --ntasks, else tasks per node times nodes (one per node by default)."""
    if spec.ntasks is not None:
        return spec.ntasks
    return tasks_per_node(spec, nodes) * nodes


def fit(spec: JobSpec, partition: Partition) -> Shape | Misfit:
    """The job's shape on ``partition``, or the first rule that keeps it out for ever."""
    if spec.partitions and partition.id not in spec.partitions:
        return Misfit("partition", f"{partition.id} is not among the partitions asked for")
    if not spec.wants_model(partition.gpu_model):
        return Misfit("gpu_model", f"{partition.id} has {partition.gpu_model} GPUs")
    if partition.gpu_memory_gb < spec.min_gpu_memory_gb:
        return Misfit(
            "min_gpu_memory_gb", f"{partition.id} has {partition.gpu_memory_gb} GB per GPU"
        )
    shape = shape_on(spec, partition.gpus_per_node, partition.nodes)
    if shape is None:
        return Misfit(
            "gpus",
            f"{partition.id} has {partition.nodes} nodes of {partition.gpus_per_node} GPUs",
        )
    per_node_tasks = tasks_per_node(spec, shape.nodes)
    if (
        spec.ntasks is not None
        and spec.ntasks_per_node is not None
        and spec.ntasks > spec.ntasks_per_node * shape.nodes
    ):
        return Misfit(
            "ntasks",
            f"{spec.ntasks} tasks do not fit {spec.ntasks_per_node} per node "
            f"on {shape.nodes} node(s)",
        )
    if partition.cpus_per_node is not None:
        cores = per_node_tasks * spec.cpus_per_task
        if cores > partition.cpus_per_node:
            return Misfit(
                "cpus",
                f"{per_node_tasks} task(s) x {spec.cpus_per_task} cores = {cores} cores per "
                f"node; {partition.id} has {partition.cpus_per_node}",
            )
    if partition.mem_per_node_gb is not None:
        node_mb = partition.mem_per_node_gb * 1024
        wanted_mb = spec.mem_per_node_mb or 0
        if spec.mem_per_gpu_mb is not None:
            wanted_mb = max(wanted_mb, spec.mem_per_gpu_mb * shape.gpus_per_node)
        if wanted_mb > node_mb:
            return Misfit(
                "mem",
                f"{wanted_mb} MB per node; {partition.id} has {partition.mem_per_node_gb} GB",
            )
    if partition.max_time_limit_s is not None and spec.time_limit_s > partition.max_time_limit_s:
        return Misfit(
            "time",
            f"{spec.time_limit_s} s is longer than {partition.id}'s limit of "
            f"{partition.max_time_limit_s} s",
        )
    return shape


def shape_fitting(spec: JobSpec, partition: Partition) -> Shape | None:
    """:func:`fit` for callers that need only the shape."""
    result = fit(spec, partition)
    return result if isinstance(result, Shape) else None
