"""Wait reasons: one sentence telling a job's owner precisely why it is still pending.

Built after the cycle's decisions, from the final working state, and cached per requirement
key where they do not depend on the project, so that 10,000 waits cost little.
"""

from __future__ import annotations

from collections.abc import Sequence

from aifactories.domain.fit import Misfit, fit, shape_fitting
from aifactories.domain.ids import ProjectId
from aifactories.domain.jobs import ANY_GPU_MODEL, JobSpec
from aifactories.domain.units import format_duration, gpu_hours
from aifactories.scheduling.snapshot import PartitionState
from aifactories.scheduling.working import Budgets, Option, Slot


def format_in(seconds: float) -> str:
    """A delay from now as ``+1h05m``, ``+2d03h`` or ``+12m``, for wait reasons."""
    minutes = max(0, round(seconds / 60))
    if minutes == 0:
        return "+<1m"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"+{days}d{hours:02d}h"
    if hours:
        return f"+{hours}h{mins:02d}m"
    return f"+{mins}m"


def format_gpu_hours(gpu_seconds: int) -> str:
    hours = gpu_hours(gpu_seconds)
    return f"{hours:,.1f} GPU-h" if abs(hours) >= 0.1 else f"{hours:.2f} GPU-h"


def hardware_label(spec: JobSpec) -> str:
    """``model H100 with >= 80 GB`` / ``any model``: the hardware part of a reason."""
    models = spec.model_label
    if models == ANY_GPU_MODEL:
        label = "any model"
    else:
        label = f"models {models}" if spec.gpu_models else f"model {models}"
    if spec.min_gpu_memory_gb:
        label += f" with >= {spec.min_gpu_memory_gb} GB"
    return label


def _countries(spec: JobSpec) -> str:
    return ", ".join(sorted(c.upper() for c in spec.countries))


def _gang(spec: JobSpec) -> str:
    gpus = f"{spec.gpus} GPU" + ("s" if spec.gpus != 1 else "")
    return gpus if spec.nodes is None else f"{gpus} on {spec.nodes} node(s)"


def never_reason(spec: JobSpec, partitions: Sequence[PartitionState]) -> str:
    """Why no available partition can ever take ``spec``: the first filter that empties."""
    if spec.gpus < 1:
        return "a job must ask for at least 1 GPU"
    if spec.nodes is not None and (spec.nodes < 1 or spec.gpus % spec.nodes):
        return f"{_gang(spec)}: the GPUs must divide evenly over at least one node"
    models = [s for s in partitions if spec.wants_model(s.partition.gpu_model)]
    if not models:
        known = ", ".join(sorted({s.partition.gpu_model for s in partitions})) or "none"
        what = "any of the GPU models" if len(spec.gpu_models) > 1 else "GPU model"
        return f"no partition has {what} {spec.model_label} (models in the federation: {known})"
    hardware = [s for s in models if s.partition.gpu_memory_gb >= spec.min_gpu_memory_gb]
    if not hardware:
        most = max(s.partition.gpu_memory_gb for s in models)
        return f"no partition of {hardware_label(spec)} GPU memory (largest: {most} GB)"
    label = hardware_label(spec)
    wanted = {c.upper() for c in spec.countries}
    resident = [s for s in hardware if not wanted or s.country.upper() in wanted]
    if not resident:
        return f"residency: no partition of {label} in {_countries(spec)}"
    shaped = [s for s in resident if shape_fitting(spec, s.partition) is not None]
    if not shaped:
        misfits = [m for s in resident if isinstance(m := fit(spec, s.partition), Misfit)]
        if misfits and all(m.rule not in ("gpus", "gpu_model") for m in misfits):
            return "; ".join(m.why for m in misfits[:3])
        big = max(resident, key=lambda s: s.partition.total_gpus)
        return (
            f"no partition can ever fit {_gang(spec)} of {label} "
            f"(largest: {big.partition.total_gpus} GPUs in {big.partition.nodes} nodes "
            f"at {big.id})"
        )
    down = ", ".join(s.id for s in shaped)
    if wanted:
        return f"residency: no available partition in {_countries(spec)} ({down} unavailable)"
    return f"no available partition of {label} can take {_gang(spec)} ({down} unavailable)"


def capacity_text(spec: JobSpec, options: Sequence[Option]) -> str:
    """Why no option has room now, with the closest one, e.g. largest free block and where."""
    label = hardware_label(spec)
    if spec.countries:
        label += f" in {_countries(spec)}"
    singles = [o for o in options if not o.exclusive]
    gangs = [o for o in options if o.exclusive]
    parts: list[str] = []
    if singles:
        best = max(singles, key=lambda o: (o.slot.max_block, -o.slot.order)).slot
        near = f"{best.max_block} at {best.partition.id}" if best.max_block else "none"
        parts.append(f"largest free block: {near}")
    if gangs:
        top = max(gangs, key=lambda o: (o.slot.hist[o.slot.gpn], -o.slot.order))
        whole = top.slot.hist[top.slot.gpn]
        parts.append(
            f"most whole free nodes: {whole} at {top.slot.partition.id}, needs {top.nodes}"
        )
    if singles and not gangs:
        what = f"{spec.gpus} free GPU{'s' if spec.gpus != 1 else ''} on one node"
    elif gangs and not singles:
        what = f"{gangs[0].nodes} whole free nodes for {spec.gpus} GPUs"
    else:
        what = f"room for {spec.gpus} GPUs"
    return f"no partition has {what} of {label} now ({'; '.join(parts)})"


def budget_text(project: ProjectId, slot: Slot, need: int, budgets: Budgets) -> str:
    """Why the project's allocations cannot pay ``need`` GPU-seconds at ``slot``."""
    where = slot.partition.id
    usable = budgets.orders(project).get(slot.site_id, ())
    if not usable:
        return f"budget: project {project} has no open allocation usable at {slot.site_id} now"
    richest = max(usable, key=lambda a: budgets.left[a])  # first in preference on ties
    return (
        f"budget: needs {format_gpu_hours(need)} at {where}, allocation {richest} has "
        f"{format_gpu_hours(budgets.left[richest])} left"
    )


def held_text(partition: str, head_job: int, start_in: float, time_limit_s: int) -> str:
    return (
        f"{partition} is held for job {head_job}, expected to start around "
        f"{format_in(start_in)}; this job's time limit ({format_duration(time_limit_s)}) "
        "would end after that, and the GPUs it needs are reserved then"
    )
