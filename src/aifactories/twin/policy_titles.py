"""Policies by their full names for people (the report, the console table); the files keep
the identifiers (``easy_backfill``), which the command line and scenarios take."""

from __future__ import annotations

_TITLES = {
    "first_fit": "First fit",
    "earliest_start": "Earliest start",
    "fair_share": "Fair share",
    "fifo": "FIFO (no backfill)",
    "easy_backfill": "EASY backfill",
    "slurm_multifactor": "Slurm multifactor",
    "slurm_siblings": "Slurm siblings",
    "random": "Random placement",
    "expected_completion": "Expected completion (speed-aware)",
    "tiresias_las": "Tiresias 2D-LAS (preemptive)",
    "gavel_las": "Gavel LAS (heterogeneity-aware)",
    "gavel_ftf": "Gavel finish-time fairness (heterogeneity-aware)",
    "gavel_makespan": "Gavel makespan (heterogeneity-aware)",
    "gavel_las_agnostic": "Gavel LAS (heterogeneity-agnostic)",
    "gavel_ftf_agnostic": "Gavel finish-time fairness (heterogeneity-agnostic)",
    "gavel_makespan_agnostic": "Gavel makespan (heterogeneity-agnostic)",
}


def policy_title(name: str) -> str:
    """``easy_backfill`` -> ``EASY backfill``; a curve named ``scenario: policy`` (a sweep over
    scenarios) keeps its scenario; a policy without a title here keeps its identifier."""
    label, sep, policy = name.rpartition(": ")
    return f"{label}{sep}{_TITLES.get(policy, policy)}"
