"""Alibaba GPU cluster trace v2023 ("openb", Weng et al., ATC'23 Fragmentation Gradient Descent).

Pods: ``openb_pod_list_*.csv``, header ``name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,
qos,pod_phase,creation_time,deletion_time,scheduled_time``; times are seconds from the trace
start (about 149 days).

==============  ================  =========================================================
column          TraceJob field    mapping
==============  ================  =========================================================
name            job_id            as written (``openb-pod-0001``)
creation_time   submit_s          seconds, the trace's own zero
scheduled_time  recorded_wait_s   scheduled - creation; empty: never scheduled (skipped)
deletion_time   runtime_s         deletion - scheduled
num_gpu         gpus              whole GPUs; 0 is a CPU-only pod (skipped)
(pod)           nodes             1: a pod runs on one node
gpu_milli       gpus, extra       per-GPU share in thousandths (see fractional GPUs)
gpu_spec        gpu_model         verbatim, may list alternatives (``V100M16|V100M32``)
gpu_spec        gpu_models        the models the pod accepts, split on ``|``; empty: any
qos             group             LS, BE, Burstable or Guaranteed
pod_phase       extra             Running, Succeeded, Failed or Pending
cpu_milli       extra             CPU request in thousandths of a core
memory_mib      extra             memory request
==============  ================  =========================================================

Fractional GPUs: a pod with ``gpu_milli`` < 1000 shares one GPU with others (3,078 of the 8,152
default pods). The twin allocates whole GPUs, so by default (``fractional="round_up"``) such a pod
holds ``num_gpu`` whole GPUs, keeps its share in ``extra["gpu_milli"]`` and is counted in
``Trace.notes`` as ``fractional GPU rounded up``; this overstates GPU demand, which a report must
say. ``fractional="skip"`` drops those pods instead (skip reason ``fractional GPU``).

Other skip reasons: ``never scheduled`` (no scheduled_time: the pod stayed Pending) and
``no GPU`` (num_gpu 0). A pod deleted the moment it was scheduled is kept as a zero-length job
(it took its turn in the queue; ``notes``: ``zero runtime (kept)``). ``pod_phase`` is
the last phase before deletion: ``Running`` pods (most of them) were deleted while running, as
long-lived services are, and ``Failed`` ones ran until they failed; both keep deletion -
scheduled as their runtime. A pod scheduled before its creation time keeps no recorded wait
(``notes``: ``start before submit (wait dropped)``).

``openb_pod_list_multigpu50.csv`` has only the five resource columns and no times: it is a pod
mix for packing studies, not an arrival trace, and this reader rejects it (missing column).

Nodes: ``openb_node_list_*.csv`` (``sn,cpu_milli,memory_mib,gpu,model``) are read by
:func:`read_alibaba_nodes` into pools of identical GPU nodes and by :func:`alibaba_partitions`
into domain partitions. CPU-only nodes (gpu 0) are not pools.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import SiteId
from aifactories.domain.sites import Partition
from aifactories.twin.traces._common import Collector, Row, csv_rows, extras, open_text
from aifactories.twin.traces.model import Trace, TraceJob

POD_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
Fractional = Literal["round_up", "skip"]

GPU_MEMORY_GB: Mapping[str, int] = {
    "T4": 16,
    "P100": 16,
    "V100M16": 16,
    "V100M32": 32,
    "A10": 24,
}
"""GPU memory of the disclosed models (public specifications; the V100 variants say it in their
names). G1, G2 and G3 are undisclosed internal codes: their memory must be given by the caller."""

_MILLI_PER_GPU = 1000


def read_alibaba(
    path: Path | str, *, limit: int | None = None, fractional: Fractional = "round_up"
) -> Trace:
    """Read an openb pod list into a :class:`Trace` (see the module docstring)."""
    if fractional not in ("round_up", "skip"):
        raise InvalidInput("fractional", f"must be 'round_up' or 'skip', got {fractional!r}")
    path = Path(path)
    jobs = Collector(limit)
    with open_text(path) as stream:
        for row in csv_rows(path, stream, POD_COLUMNS):
            if jobs.full:
                break
            _read_pod(row, jobs, fractional)
    return jobs.trace(path.name, path)


def _read_pod(row: Row, jobs: Collector, fractional: Fractional) -> None:
    created = row.number("creation_time")
    deleted = row.number("deletion_time")
    gpus = row.integer("num_gpu")
    milli = row.integer("gpu_milli")
    if milli > _MILLI_PER_GPU:
        raise row.error("gpu_milli", f"{milli} is above {_MILLI_PER_GPU} (one whole GPU)")
    if not row.optional("scheduled_time"):
        jobs.skip("never scheduled")
        return
    scheduled = row.number("scheduled_time")
    if deleted < scheduled:
        raise row.error("deletion_time", f"{deleted:g} is before scheduled_time {scheduled:g}")
    if gpus == 0:
        jobs.skip("no GPU")
        return
    if deleted == scheduled:
        jobs.note("zero runtime (kept)")
    shared = milli < _MILLI_PER_GPU
    if shared and fractional == "skip":
        jobs.skip("fractional GPU")
        return
    if shared:
        jobs.note("fractional GPU rounded up")
    phase = row.optional("pod_phase")
    spec = row.optional("gpu_spec")
    jobs.add(
        row,
        TraceJob(
            job_id=row.text("name"),
            submit_s=created,
            runtime_s=deleted - scheduled,
            gpus=gpus,
            nodes=1,  # a pod runs on one node: Kubernetes does not split it
            gpu_model=spec,
            gpu_models=accepted_models(spec),
            group=row.optional("qos"),
            recorded_wait_s=jobs.wait(scheduled - created),
            extra=extras(
                cpu_milli=row.integer("cpu_milli"),
                memory_mib=row.integer("memory_mib"),
                gpu_milli=milli,
                pod_phase=phase,
            ),
        ),
    )


def accepted_models(gpu_spec: str | None) -> frozenset[str]:
    """The models a ``gpu_spec`` accepts: ``V100M16|V100M32`` -> both; empty -> any (empty)."""
    if gpu_spec is None:
        return frozenset()
    return frozenset(name.strip() for name in gpu_spec.split("|") if name.strip())


@dataclass(frozen=True, slots=True)
class NodePool:
    """``nodes`` GPU nodes of one model with ``gpus_per_node`` GPUs each."""

    gpu_model: str
    gpus_per_node: int
    nodes: int

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


def read_alibaba_nodes(path: Path | str) -> tuple[NodePool, ...]:
    """Pools of identical GPU nodes, sorted by model then GPUs per node; CPU nodes are left out.

    Nodes are grouped by (model, GPU count) only: their CPU and memory differ within a pool
    (e.g. P100 nodes with 8 to 64 cores) and a GPU partition does not describe them.
    """
    path = Path(path)
    counts: Counter[tuple[str, int]] = Counter()
    with open_text(path) as stream:
        for row in csv_rows(path, stream, NODE_COLUMNS):
            gpus = row.integer("gpu")
            model = row.optional("model")
            if gpus == 0:
                continue
            if model is None:
                raise row.error("model", f"is empty on a node with {gpus} GPUs")
            counts[(model, gpus)] += 1
    return tuple(NodePool(m, g, n) for (m, g), n in sorted(counts.items()))


def alibaba_partitions(
    pools: tuple[NodePool, ...],
    site_id: SiteId,
    gpu_memory_gb: Mapping[str, int] | None = None,
) -> tuple[Partition, ...]:
    """One partition per pool, named ``<model>-<n>gpu`` (``v100m32-8gpu``).

    ``gpu_memory_gb`` adds to (or overrides) :data:`GPU_MEMORY_GB`. Raises InvalidInput naming
    the models whose memory is still unknown (the undisclosed G1-G3), rather than inventing it.
    """
    memory = {**GPU_MEMORY_GB, **(gpu_memory_gb or {})}
    unknown = sorted({p.gpu_model for p in pools if p.gpu_model not in memory})
    if unknown:
        raise InvalidInput(
            "gpu_memory_gb",
            f"GPU memory unknown for {', '.join(unknown)} (the trace does not disclose it); "
            "pass gpu_memory_gb with a size for each",
        )
    return tuple(
        Partition(
            site_id=site_id,
            name=f"{pool.gpu_model.lower()}-{pool.gpus_per_node}gpu",
            gpu_model=pool.gpu_model,
            gpu_memory_gb=memory[pool.gpu_model],
            nodes=pool.nodes,
            gpus_per_node=pool.gpus_per_node,
        )
        for pool in pools
    )
