"""Jobs: what a user asks for (:class:`JobSpec`) and the state machine a job moves through.

::

    pending ──> placed ──> submitted ──> running ──> completed | failed | timeout
       │           │            │           │
       │           └─> pending  └─> pending └─> pending      (requeue: the site lost it)
       └──────────── cancelled / failed from any state that is not final

A job is *placed* when the broker has chosen a site and partition and reserved its budget,
*submitted* once the site accepted it, *running* once the site started it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from aifactories.domain.batch import BatchOptions
from aifactories.domain.errors import InvalidInput, InvalidTransition
from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId, UserId

ANY_GPU_MODEL = "any"


class JobState(StrEnum):
    PENDING = "pending"
    PLACED = "placed"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def holds_reservation(self) -> bool:
        """Placed, submitted and running jobs hold budget and capacity at a site."""
        return self in (JobState.PLACED, JobState.SUBMITTED, JobState.RUNNING)


FINAL_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT}
)

_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.PLACED, JobState.CANCELLED, JobState.FAILED}),
    JobState.PLACED: frozenset(
        {
            JobState.SUBMITTED,
            JobState.RUNNING,
            JobState.PENDING,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.COMPLETED,
            JobState.TIMEOUT,
        }
    ),
    JobState.SUBMITTED: frozenset(
        {
            JobState.RUNNING,
            JobState.PENDING,
            JobState.COMPLETED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.TIMEOUT,
        }
    ),
    JobState.RUNNING: frozenset(
        {
            JobState.PENDING,
            JobState.COMPLETED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.TIMEOUT,
        }
    ),
}


def job_ref(job_id: int, array_job_id: int | None, array_task_id: int | None) -> str:
    """A job as Slurm names it: ``123``, or ``ARRAYID_TASK`` for a task of a job array."""
    if array_job_id is not None and array_task_id is not None:
        return f"{array_job_id}_{array_task_id}"
    return str(job_id)


def check_transition(job_id: int, current: JobState, target: JobState) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed."""
    if target not in _ALLOWED.get(current, frozenset()):
        raise InvalidTransition(f"job {job_id} is {current.value} and cannot become {target.value}")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job asks for. ``nodes`` None lets the broker pick the fewest nodes that fit."""

    gpus: int
    time_limit_s: int
    gpu_model: str = ANY_GPU_MODEL
    min_gpu_memory_gb: int = 0
    nodes: int | None = None
    name: str = "job"
    command: tuple[str, ...] = ()
    script: str | None = None
    workdir: str | None = None
    countries: frozenset[str] = field(default_factory=frozenset)
    runtime_s: int | None = None  # emulation hint: how long the job really runs
    # What kind of work it is (a model, a trace's job type): picks the row of the speed
    # table a policy reads (scheduling/speeds.py); None: the default row.
    workload_class: str | None = None
    # Slurm's resource options, honoured by placement (domain/fit.py)
    partitions: frozenset[str] = frozenset()  # partition ids asked for; empty: any
    ntasks: int | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int = 1
    mem_per_node_mb: int | None = None  # --mem; 0: all of each node's memory
    mem_per_gpu_mb: int | None = None
    exclusive: bool = False  # --exclusive: whole nodes
    batch: BatchOptions = field(default_factory=BatchOptions)
    # Alternatives: the job runs on any of these models (a trace's ``V100M16|V100M32``);
    # empty: ``gpu_model`` alone decides. Given with ``gpu_model`` left at "any".
    gpu_models: frozenset[str] = frozenset()
    # Everything that decides where the job fits (domain/fit.py) but the time limit: jobs
    # with equal keys share their placement options within a scheduling cycle. Computed
    # once here, since a cycle reads it for every queued job.
    fit_key: tuple[object, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "fit_key",
            (
                self.gpu_model,
                self.gpu_models,
                self.min_gpu_memory_gb,
                self.countries,
                self.gpus,
                self.nodes,
                self.partitions,
                self.exclusive,
                self.ntasks,
                self.ntasks_per_node,
                self.cpus_per_task,
                self.mem_per_node_mb,
                self.mem_per_gpu_mb,
            ),
        )
        if not self.gpu_models:
            return
        if self.gpu_model != ANY_GPU_MODEL:
            raise InvalidInput(
                "gpu_models",
                f"given with gpu_model {self.gpu_model!r}",
                limit="either one gpu_model or a set of alternatives in gpu_models",
            )
        if any(not m or m.lower() == ANY_GPU_MODEL for m in self.gpu_models):
            raise InvalidInput(
                "gpu_models",
                f"{sorted(self.gpu_models)} has an empty name or 'any'",
                limit="GPU model names; leave gpu_models empty to accept any model",
            )

    @property
    def whole_nodes(self) -> bool:
        """--exclusive, or --mem=0 (all of a node's memory leaves no room for another job)."""
        return self.exclusive or self.mem_per_node_mb == 0

    @property
    def model_label(self) -> str:
        """The models accepted, for messages: ``any``, ``H100``, ``V100M16|V100M32``."""
        return "|".join(sorted(self.gpu_models)) if self.gpu_models else self.gpu_model

    def wants_model(self, gpu_model: str) -> bool:
        """Case-insensitive, as Slurm's GRES types and the catalogue's names are."""
        wanted = gpu_model.lower()
        if self.gpu_models:
            return any(m.lower() == wanted for m in self.gpu_models)
        return self.gpu_model == ANY_GPU_MODEL or self.gpu_model.lower() == wanted


@dataclass(frozen=True, slots=True)
class Shape:
    """How a job lays out on one partition: ``nodes`` nodes, ``gpus_per_node`` GPUs each.

    A multi-node job takes whole nodes (``exclusive``), so it holds and is charged for every
    GPU of those nodes, as Slurm does with exclusive node allocation; so does a job that asks
    for ``--exclusive`` or ``--mem=0``.
    """

    nodes: int
    gpus_per_node: int
    exclusive: bool

    @property
    def allocated_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


def shape_on(spec: JobSpec, partition_gpus_per_node: int, partition_nodes: int) -> Shape | None:
    """The job's layout on a partition of that node size, or None if it cannot fit at all."""
    if spec.nodes is None:
        if spec.gpus <= partition_gpus_per_node and not spec.whole_nodes:
            return Shape(1, spec.gpus, exclusive=False)
        nodes = math.ceil(spec.gpus / partition_gpus_per_node)
        if nodes > partition_nodes:
            return None
        return Shape(nodes, partition_gpus_per_node, exclusive=True)
    if spec.nodes > partition_nodes or spec.gpus % spec.nodes:
        return None
    per_node = spec.gpus // spec.nodes
    if per_node > partition_gpus_per_node:
        return None
    if spec.nodes == 1 and not spec.whole_nodes:
        return Shape(1, per_node, exclusive=False)
    return Shape(spec.nodes, partition_gpus_per_node, exclusive=True)


@dataclass(frozen=True, slots=True)
class PendingJob:
    """A job waiting for placement, as the scheduler sees it."""

    id: JobId
    project_id: ProjectId
    user_id: UserId
    spec: JobSpec
    submitted_at: float
    requeues: int = 0


@dataclass(frozen=True, slots=True)
class ActiveJob:
    """A job that holds capacity at a site (placed, submitted or running)."""

    id: JobId
    project_id: ProjectId
    site_id: SiteId
    partition_id: PartitionId
    shape: Shape
    state: JobState
    started_at: float | None
    time_limit_s: int

    def expected_end(self, now: float) -> float:
        start = self.started_at if self.started_at is not None else now
        return max(now, start + self.time_limit_s)
