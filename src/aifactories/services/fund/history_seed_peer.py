"""The Large Scale part of the seeded history (history_seed.py): a call with a cut-off every
30 days and peer review, through the services at each cut-off: reviewers assigned an hour
after it, their scores one to five days later, the call's rule deciding after six days, and
the optimiser's awards applied after seven; awarded projects then run their jobs
(history_seed_run.after_award). One proposal in four is scored poorly and rejected."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from aifactories.db.models import UserRow
from aifactories.db.programme_models import ProposalRow, ReviewRow
from aifactories.domain.errors import Conflict
from aifactories.services.fund.history_seed_run import (
    DAY_S,
    HOUR_S,
    OPERATOR,
    SeedRun,
    after_award,
)
from aifactories.services.programme.award_runs import apply_run, run_awards
from aifactories.services.programme.calls import CallIn, CallRulesIn, open_call
from aifactories.services.programme.review_assignments import assign_reviewers
from aifactories.services.programme.review_decisions import decide
from aifactories.services.programme.reviews import submit_review

MODE = "large_scale"
CUTOFF_EVERY_S = 30 * DAY_S
LIFE_S = 45 * DAY_S  # a cut-off's decisions, awards and first jobs fit in this before the end
GOOD = {"excellence": 9.0, "impact": 8.0, "feasibility": 7.0}
POOR = {"excellence": 4.0, "impact": 5.0, "feasibility": 5.0}
POOR_EVERY = 4
DECIDE_AFTER_S = 6 * DAY_S
APPLY_AFTER_S = 7 * DAY_S


def cutoffs(start: float, end: float) -> list[float]:
    """Every 30 days from the start, the last one early enough for its projects to run."""
    found = []
    when = start + CUTOFF_EVERY_S
    while when <= end - LIFE_S:
        found.append(when)
        when += CUTOFF_EVERY_S
    return found


def open_peer_call(run: SeedRun, code: str, end: float) -> str | None:
    """The Large Scale call and its rounds; None when the history is too short for one."""
    times = cutoffs(run.history.start, end)
    if not times:
        return None
    call_code = f"{code}-large-scale"
    open_call(
        run.ctx,
        run.principal(OPERATOR),
        CallIn(
            code=call_code,
            title="Large Scale, the seeded year",
            mode=MODE,
            closes_at=end,
            cutoffs=times,
            budget_gpu_hours={"pool": 4_000_000.0},
            rules=CallRulesIn(min_average_score=6.0, reviewers_per_proposal=2),
        ),
    )
    for cutoff in times:
        run.at(cutoff + HOUR_S, lambda cutoff=cutoff: _review(run, call_code, cutoff))  # type: ignore[misc]
    return call_code


def last_submission(run: SeedRun) -> float:
    """A Large Scale proposal submitted later than this would meet no cut-off."""
    times = cutoffs(run.history.start, run.history.end)
    return times[-1] - HOUR_S if times else run.history.start


def poor(index: int) -> bool:
    """Whether the reviewers score the proposal at ``index`` poorly: one Large Scale proposal
    in four (they come every fourth proposal)."""
    return (index // 4) % POOR_EVERY == 1


def _review(run: SeedRun, call: str, cutoff: float) -> None:
    operator = run.principal(OPERATOR)
    assign_reviewers(run.ctx, operator, call, cutoff_at=cutoff)
    with run.ctx.reads() as session:
        reviews = session.execute(
            select(ReviewRow.id, ReviewRow.proposal_id, UserRow.username)
            .join(UserRow, UserRow.id == ReviewRow.reviewer_id)
            .join(ProposalRow, ProposalRow.id == ReviewRow.proposal_id)
            .where(ProposalRow.cutoff_at == cutoff, ReviewRow.status == "assigned")
            .order_by(ReviewRow.id)
        ).all()
    for review_id, proposal_id, reviewer in reviews:
        index, _ = run.peer[proposal_id]
        scores = POOR if poor(index) else GOOD

        def score(
            review_id: int = review_id, reviewer: str = reviewer, scores: dict[str, float] = scores
        ) -> None:
            submit_review(run.ctx, run.principal(reviewer), review_id, scores, "Seeded review.")

        run.at(run.clock.now() + run.rng.uniform(1.0, 5.0) * DAY_S, score)
    run.at(cutoff + DECIDE_AFTER_S, lambda: _decide(run, call, cutoff))
    run.at(cutoff + APPLY_AFTER_S, lambda: _award(run, call, cutoff))


def _outcomes(run: SeedRun, cutoff: float) -> dict[int, str]:
    with run.ctx.reads() as session:
        return dict(
            session.execute(
                select(ProposalRow.id, ProposalRow.status).where(ProposalRow.cutoff_at == cutoff)
            ).all()
        )


def _record(run: SeedRun, cutoff: float, status: str, awarded: bool) -> list[tuple[int, str]]:
    """Mark the round's proposals now in ``status`` as decided now; their (index, PI)."""
    decided = []
    for proposal_id, now_status in _outcomes(run, cutoff).items():
        if now_status != status or proposal_id not in run.peer:
            continue
        index, pi = run.peer.pop(proposal_id)
        seeded = run.history.proposals[index]
        run.history.proposals[index] = replace(seeded, decided_at=run.clock.now(), awarded=awarded)
        decided.append((index, pi))
    return decided


def _decide(run: SeedRun, call: str, cutoff: float) -> None:
    decide(run.ctx, run.principal(OPERATOR), call, rule=True, cutoff_at=cutoff)
    _record(run, cutoff, "rejected", awarded=False)


def _award(run: SeedRun, call: str, cutoff: float) -> None:
    if "accepted" not in _outcomes(run, cutoff).values():
        return
    operator = run.principal(OPERATOR)
    try:
        proposed = run_awards(run.ctx, operator, call, cutoff_at=cutoff)
    except Conflict:
        return  # nothing to award at this cut-off
    apply_run(run.ctx, operator, int(proposed["id"]), "the seeded panel's round")
    for index, pi in _record(run, cutoff, "awarded", awarded=True):
        after_award(run, index, pi)
    _record(run, cutoff, "rejected", awarded=False)  # what the optimiser could not fund
