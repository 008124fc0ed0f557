"""Scheduling: ``run_cycle(snapshot, pending, policy, now) -> CycleResult``, pure.

Policies are pure functions of an immutable :class:`~aifactories.scheduling.snapshot.Snapshot`:
no database, no network, no clock reads. The broker and the twin call the same ``run_cycle``.
"""

from aifactories.scheduling.cycle import run_cycle
from aifactories.scheduling.policies import (
    POLICY_NAMES,
    FairShareFactor,
    fair_share_factors,
    fair_share_priority,
    get_policy,
)
from aifactories.scheduling.policy import Candidate, CycleContext, Policy
from aifactories.scheduling.snapshot import (
    CycleResult,
    PartitionState,
    Placement,
    ProjectShare,
    Snapshot,
    Wait,
)
from aifactories.scheduling.usage import decayed_usage

__all__ = [
    "POLICY_NAMES",
    "Candidate",
    "CycleContext",
    "CycleResult",
    "FairShareFactor",
    "PartitionState",
    "Placement",
    "Policy",
    "ProjectShare",
    "Snapshot",
    "Wait",
    "decayed_usage",
    "fair_share_factors",
    "fair_share_priority",
    "get_policy",
    "run_cycle",
]
