"""The committee's rule, the baseline the optimiser is compared with: walk down the panel's
ranking and give each proposal what it asks while capacity lasts.

For each proposal in rank order (ties: higher score, then lower id): first its even monthly
share (request / months of its period) in every month of its period inside the horizon; then,
if months were short, more in its other months, month by month, up to ``spread_factor``
times the even share (the optimiser's rule, so the two are compared on the same terms).
Within a month its preferred sites' partitions are used first, then the partitions with the
most free hours over its period (fewer partitions per project). If what fits reaches its
minimum fraction the proposal gets it; otherwise nothing, and the capacity stays for the next.
A call's budget line caps what its partitions give in all: a proposal's hours on a line are
scaled down to what the line has left.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from aifactories.programme.award_model import (
    EPS_HOURS,
    AwardPlan,
    BudgetLine,
    FloatArray,
    PartitionCapacity,
    ProgrammeWeights,
    ProposalDemand,
    RoundArrays,
)


def _fill(free: FloatArray, want: FloatArray) -> FloatArray:
    """Take ``want[m]`` from ``free[:, m]`` down the rows in order: [partitions, months]."""
    before = np.cumsum(free, axis=0) - free
    return np.clip(want[None, :] - before, 0.0, free)


def greedy_awards(
    demands: tuple[ProposalDemand, ...] | list[ProposalDemand],
    partitions: tuple[PartitionCapacity, ...] | list[PartitionCapacity],
    *,
    months: int,
    weights: ProgrammeWeights | None = None,
    spread_factor: float | None = None,
    budget_lines: tuple[BudgetLine, ...] | list[BudgetLine] = (),
) -> AwardPlan:
    """The committee's plan. ``weights`` only score it (the rule itself ignores the
    priorities), so that its objective reads next to the optimiser's; the spread cap is
    ``spread_factor``, else the weights', else the default, as for the optimiser."""
    started = time.perf_counter()
    w = weights or ProgrammeWeights()
    if spread_factor is not None:
        w = dataclasses.replace(w, spread_factor=spread_factor)
    r = RoundArrays.build(
        demands, partitions, months=months, spread_factor=w.spread_factor, budget_lines=budget_lines
    )
    free = r.capacity.copy()
    line_left = r.line_budget.copy()
    x = np.zeros((len(r.demands), len(r.partitions), months))
    order = sorted(
        range(len(r.demands)),
        key=lambda i: (r.demands[i].rank, -r.demands[i].score, r.demands[i].proposal_id),
    )
    for i in order:
        cols = np.flatnonzero(r.eligible[i])
        span = np.flatnonzero(r.in_period[i])
        if cols.size == 0 or span.size == 0:
            continue
        # Preferred first, then the most free hours over the proposal's months.
        key = np.lexsort((-free[np.ix_(cols, span)].sum(axis=1), ~r.preferred[i, cols]))
        cols = cols[key]
        room = free[np.ix_(cols, span)]
        request, cap = float(r.request[i]), float(r.month_cap[i])
        even = request / (r.demands[i].last_month - r.demands[i].first_month + 1)
        first = _fill(room, np.minimum(even, room.sum(axis=0)))
        given = first.sum(axis=0)
        # Top up month by month, up to the monthly cap, with what the first pass left.
        missing = request - float(given.sum())
        extra_room = np.minimum(cap - given, (room - first).sum(axis=0)).clip(min=0.0)
        extra_want = np.clip(missing - (np.cumsum(extra_room) - extra_room), 0.0, extra_room)
        award = first + _fill(room - first, extra_want)
        lines = r.line_of[cols]
        for g in np.unique(lines[lines >= 0]).tolist():
            on_line = lines == g
            wanted = float(award[on_line].sum())
            if wanted > line_left[g]:
                award[on_line] *= line_left[g] / wanted
        total = float(award.sum())
        if total + EPS_HOURS < request * float(r.min_fraction[i]) or total <= EPS_HOURS:
            continue
        x[i][np.ix_(cols, span)] = award
        free[np.ix_(cols, span)] -= award
        if line_left.size:
            line_left -= np.bincount(
                lines[lines >= 0], weights=award[lines >= 0].sum(axis=1), minlength=line_left.size
            )
            spent = np.flatnonzero(line_left <= EPS_HOURS)
            free[np.isin(r.line_of, spent)] = 0.0  # a spent line offers nothing more
    x = r.clean(x)
    value, balance = r.evaluate(w, x)
    return AwardPlan(
        lines=r.lines(x),
        outcomes=r.explain(
            x, displaced_by="better-ranked proposals", over_balance=r.held_by_balance(w, balance)
        ),
        objective_value=value,
        objective_text="Committee rule: in rank order, each proposal's request while capacity "
        "lasts, partial down to its minimum fraction, else nothing. Scored with: "
        + w.describe()
        + r.describe_lines(),
        solver="greedy by rank",
        solve_seconds=time.perf_counter() - started,
        status="done",
        mip_gap=None,
    )
