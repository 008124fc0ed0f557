"""The placement policies, by name: ``get_policy("fair_share")``."""

from __future__ import annotations

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling.policies.earliest_start import EarliestStart
from aifactories.scheduling.policies.easy_backfill import EasyBackfill
from aifactories.scheduling.policies.expected_completion import ExpectedCompletion
from aifactories.scheduling.policies.fair_share import (
    FairShare,
    FairShareFactor,
    fair_share_factors,
    fair_share_priority,
)
from aifactories.scheduling.policies.fifo import Fifo
from aifactories.scheduling.policies.first_fit import FirstFit
from aifactories.scheduling.policies.random_placement import RandomPlacement
from aifactories.scheduling.policies.slurm_multifactor import MultifactorWeights, SlurmMultifactor
from aifactories.scheduling.policies.slurm_siblings import SlurmSiblings
from aifactories.scheduling.policy import Policy

# Policies keep no state, so one instance of each serves every caller.
_POLICIES: dict[str, Policy] = {
    policy.name: policy
    for policy in (
        FirstFit(),
        EarliestStart(),
        FairShare(),
        Fifo(),
        EasyBackfill(),
        SlurmMultifactor(),
        SlurmSiblings(),
        RandomPlacement(),
        ExpectedCompletion(),
    )
}
POLICY_NAMES: tuple[str, ...] = tuple(_POLICIES)


def get_policy(name: str) -> Policy:
    """The policy called ``name``; :class:`InvalidInput` names the known ones otherwise."""
    policy = _POLICIES.get(name.strip().lower().replace("-", "_"))
    if policy is None:
        # imported here: the preemptive registry imports this package's modules
        from aifactories.scheduling.preemptive_policies import is_preemptive

        if is_preemptive(name):
            raise InvalidInput(
                "policy",
                f"{name} preempts running jobs, which the broker cannot do at its sites yet; "
                f"the twin runs it: aif simulate --policy {name}",
            )
        raise InvalidInput("policy", f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
    return policy


__all__ = [
    "POLICY_NAMES",
    "EarliestStart",
    "EasyBackfill",
    "ExpectedCompletion",
    "FairShare",
    "FairShareFactor",
    "Fifo",
    "FirstFit",
    "MultifactorWeights",
    "RandomPlacement",
    "SlurmMultifactor",
    "SlurmSiblings",
    "fair_share_factors",
    "fair_share_priority",
    "get_policy",
]
