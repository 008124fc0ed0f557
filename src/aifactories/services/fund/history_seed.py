"""A year of the access programme, written through the services at its virtual times: what the
programme's figures are computed and tested on, and what ``aif programme seed-history`` adds
to the demo.

Two calls open on the first day (Playground: automated checks, awarded at submission; Fast
Lane: a programme operator's technical check some days later, a few rejected). Proposals
come from every organisation kind of the demo (its principal investigators) and every
domain, spread over the year; one awarded project in five asks for an extension, which the
operator approves; each awarded project submits jobs (``submit_job``), which
start after a seeded wait (the reservation as the broker makes it, ``try_reserve``) and end
after a seeded runtime (``finish_job``, the broker's settlement: the charge by month). Every
step runs on a manual clock set to its virtual time, so the audit log, the ledger and the
job rows carry the times of the history. Seeded: the same seed and start give the same
history. Needs the demo (``load_demo``) and a database without this history.
"""

from __future__ import annotations

import random
from dataclasses import replace

from sqlalchemy import select

from aifactories.db.programme_models import CallRow
from aifactories.domain.clock import ManualClock, to_datetime
from aifactories.domain.errors import Conflict
from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.services.core.context import ServiceContext
from aifactories.services.fund.history_seed_run import (
    APPLICANTS,
    DAY_S,
    HOUR_S,
    OPERATOR,
    REJECT_EVERY,
    SITES,
    SeededHistory,
    SeededProposal,
    SeedRun,
    after_award,
)
from aifactories.services.programme.calls import CallIn, open_call
from aifactories.services.programme.proposals import ProposalFields, create_draft, submit
from aifactories.services.programme.technical_checks import technical_check

__all__ = ["SeededHistory", "SeededProposal", "seed_history"]


def _calls(run: SeedRun, code: str, end: float) -> tuple[str, str]:
    operator = run.principal(OPERATOR)
    budget = {site: 400_000.0 for site in SITES} | {"pool": 2_000_000.0}
    codes = (f"{code}-playground", f"{code}-fast-lane")
    with run.ctx.reads() as session:
        if session.scalar(select(CallRow.id).where(CallRow.code.in_(codes))) is not None:
            raise Conflict(
                f"a history starting {code.removeprefix('history-')} is seeded already "
                f"(call {codes[0]}); seed another start or use a fresh database"
            )
    for call_code, mode, title in zip(
        codes, ("playground", "fast_lane"), ("Playground", "Fast Lane"), strict=True
    ):
        open_call(
            run.ctx,
            operator,
            CallIn(
                code=call_code,
                title=f"{title}, the seeded year",
                mode=mode,
                closes_at=end,
                budget_gpu_hours=budget,
            ),
        )
    return codes


def _proposal(run: SeedRun, i: int, days: int, proposals: int) -> None:
    """The i-th proposal: its applicant, domain, mode and request; submitted at its time."""
    kinds = list(APPLICANTS)
    kind = kinds[i % len(kinds)]
    domain = list(Domain)[i % len(Domain)]
    playground = i % 2 == 0
    mode = "playground" if playground else "fast_lane"
    pi = APPLICANTS[kind]
    if playground:
        hours = run.rng.randrange(1000, 2001, 100)
    else:
        hours = run.rng.randrange(2000, 20001, 500)
    site = SITES[i % len(SITES)] if i % 3 else None  # else: funded from the pool
    business = kind in (OrganisationKind.STARTUP, OrganisationKind.SME, OrganisationKind.INDUSTRY)
    fields = ProposalFields(
        title=f"Seeded {domain.value} project {i + 1}",
        abstract="A proposal of the seeded year of the programme.",
        domain=domain,
        industrial=business and i % 3 != 1,
        requested_gpu_hours=float(hours),
        largest_job_gpus=4,
        preferred_sites=[site] if site else [],
        period_months=3,
    )
    spacing = 0.85 * days * DAY_S / max(1, proposals)  # the last ones still get their jobs
    submit_at = run.history.start + DAY_S + i * spacing + run.rng.uniform(0, 12) * HOUR_S
    decide_after = 0.0 if playground else run.rng.uniform(1.0, 6.0) * DAY_S
    reject = not playground and i % REJECT_EVERY == 1

    def propose() -> None:
        call = run.calls[0] if playground else run.calls[1]
        draft = create_draft(run.ctx, run.principal(pi), call, fields)
        row = submit(run.ctx, run.principal(pi), draft.id)
        now = run.clock.now()
        seeded = SeededProposal(
            row.id, mode, kind.value, domain.value, now, now + decide_after, not reject, None
        )
        run.history.proposals.append(seeded)
        index = len(run.history.proposals) - 1
        if playground:  # awarded at submission
            after_award(run, index, pi)
            return

        def check() -> None:
            technical_check(
                run.ctx,
                run.principal(OPERATOR),
                row.id,
                "reject" if reject else "accept",
                "does not fit the hardware" if reject else "fits the partition",
                site_id=site,
            )
            if not reject:
                after_award(run, index, pi)

        run.at(now + decide_after, check)

    run.at(submit_at, propose)


def seed_history(
    ctx: ServiceContext,
    *,
    start: float | None = None,
    days: int = 365,
    proposals: int = 60,
    seed: int = 0,
) -> SeededHistory:
    """Write ``days`` of the programme from ``start`` (default: ``days`` before now) with
    ``proposals`` proposals; return what was seeded."""
    begin = start if start is not None else ctx.clock.now() - days * DAY_S
    end = begin + days * DAY_S
    clock = ManualClock(begin)
    run = SeedRun(replace(ctx, clock=clock), clock, random.Random(seed), SeededHistory(begin, end))
    run.calls = _calls(run, f"history-{to_datetime(begin):%Y%m%d}", end)
    for i in range(proposals):
        _proposal(run, i, days, proposals)
    run.run()
    return run.history
