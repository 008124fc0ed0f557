"""Gavel's heterogeneity-aware policies (Narayanan et al., OSDI'20), pure: the allocation LPs
(:mod:`.allocation`: LAS aware and agnostic, finish-time fairness) and the round-based
mechanism that turns an allocation into which jobs run where next (:mod:`.rounds`). The twin
drives them round by round; nothing here keeps state or reads a clock.
"""

from aifactories.scheduling.gavel.allocation import (
    Allocation,
    AllocationError,
    advance_isolated_time,
    finish_time_fairness,
    isolated_throughputs,
    max_min_fairness,
    proportional_throughputs,
)
from aifactories.scheduling.gavel.rounds import (
    MIN_TIME_BETWEEN_RESETS_S,
    TIME_PER_ROUND_S,
    RoundPlan,
    TimeShares,
    add_jobs,
    column_order,
    drop_jobs,
    new_time_shares,
    priorities,
    record_round,
    reset_time_shares,
    select_round,
    should_reset,
)

__all__ = [
    "MIN_TIME_BETWEEN_RESETS_S",
    "TIME_PER_ROUND_S",
    "Allocation",
    "AllocationError",
    "RoundPlan",
    "TimeShares",
    "add_jobs",
    "advance_isolated_time",
    "column_order",
    "drop_jobs",
    "finish_time_fairness",
    "isolated_throughputs",
    "max_min_fairness",
    "new_time_shares",
    "priorities",
    "proportional_throughputs",
    "record_round",
    "reset_time_shares",
    "select_round",
    "should_reset",
]
