"""Mapping a trace onto the federation: trace groups become projects, GPU models get speeds
and power draws. Every default here is stated and overridable (see docs/twin.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.domain.projects import PriorityWeights
from aifactories.twin.traces.model import Trace

# Relative speed of a GPU model on a reference (A100 = 1.0) training step, a single documented
# default for every workload class until a speed matrix is given: vendor-reported dense
# BF16 training ratios rounded down (H100/GH200 ~2x an A100, H200 a little more, MI250X a
# little less than an A100 per package in published PyTorch training throughput).
DEFAULT_SPEED: Mapping[str, float] = {
    "A100": 1.0,
    "H100": 2.0,
    "GH200": 2.1,
    "H200": 2.3,
    "MI250X": 0.9,
    # The Alibaba GPU trace's models (docs/twin.md, "The trace's own machine"): A100 ~2x a V100
    # in NVIDIA's mixed-precision training figures; a P100 about half a V100 (Gavel's measured
    # throughputs); T4 and A10 from their dense FP16 tensor peaks (65 and 125 TFLOPS against
    # 312), rounded down. G1-G3 are undisclosed: the reference speed, not a guess.
    "V100M16": 0.5,
    "V100M32": 0.5,
    "P100": 0.25,
    "T4": 0.2,
    "A10": 0.4,
    "G1": 1.0,
    "G2": 1.0,
    "G3": 1.0,
}
# Board power in kW at full training load (vendor TDPs): energy = GPU-hours x power x PUE.
DEFAULT_GPU_POWER_KW: Mapping[str, float] = {
    "A100": 0.4,
    "H100": 0.7,
    "GH200": 0.9,
    "H200": 0.7,
    "MI250X": 0.56,
    "V100M16": 0.3,
    "V100M32": 0.3,
    "P100": 0.25,
    "T4": 0.07,
    "A10": 0.15,
}
DEFAULT_PUE = 1.2
UNLIMITED_GPU_SECONDS = 10**15  # a budget no trace exhausts: the default, stated


@dataclass(frozen=True, slots=True)
class TwinProject:
    project_id: int
    name: str
    organisation_kind: str
    domain: str
    country: str
    priority_weight: float
    granted_gpu_seconds: int = UNLIMITED_GPU_SECONDS


def _pick(options: Sequence[str], key: str, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return options[int.from_bytes(digest[:8], "big") % len(options)]


def projects_for(
    trace: Trace,
    countries: Sequence[str],
    seed: int,
    weights: PriorityWeights | None = None,
) -> dict[str, TwinProject]:
    """One project per trace group (virtual cluster, account, ...; jobs without a group share
    one). Organisation kind and domain come from the job's ``extra`` when the trace carries
    them (the generator does), else from a seeded hash of the group; the home country from a
    seeded hash over ``countries``. Deterministic for a given trace and seed."""
    weights = weights or PriorityWeights()
    kinds = [k.value for k in OrganisationKind]
    domains = [d.value for d in Domain]
    projects: dict[str, TwinProject] = {}
    for job in trace.jobs:
        group = job.group or "default"
        if group in projects:
            continue
        kind = job.get("organisation_kind") or _pick(kinds, f"kind:{group}", seed)
        domain = job.get("domain") or _pick(domains, f"domain:{group}", seed)
        industrial = kind in (
            OrganisationKind.INDUSTRY.value,
            OrganisationKind.SME.value,
            OrganisationKind.STARTUP.value,
        )
        projects[group] = TwinProject(
            project_id=len(projects) + 1,
            name=group,
            organisation_kind=kind,
            domain=domain,
            country=_pick(list(countries), f"country:{group}", seed),
            priority_weight=weights.for_project(Domain(domain), industrial),
        )
    return projects
