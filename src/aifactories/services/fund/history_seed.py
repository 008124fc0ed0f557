"""A year of the access programme, written through the services at its virtual times: what the
programme's figures are computed and tested on, and what ``aif programme seed-history`` adds
to the demo.

Three calls open on the first day: Playground (automated checks, awarded at submission),
Fast Lane (a programme operator's technical check one to six days later, one in seven
rejected) and Large Scale (peer review at a cut-off every 30 days, the optimiser's awards
applied a week after it: history_seed_peer.py). Proposals come from every organisation kind
of the demo (its principal investigators) and every domain, spread over the year; one awarded
project in five asks for an extension, which the operator approves; each awarded project
submits jobs (``submit_job``), which start after a seeded wait (the reservation as the broker
makes it, ``try_reserve``) and end after a seeded runtime (``finish_job``, the broker's
settlement: the charge by month): history_seed_run.py. Every step runs on a manual clock set
to its virtual time, so the audit log, the ledger and the job rows carry the times of the
history; nothing is written after its end (a job running then keeps its reservation). Seeded:
the same seed and start give the same history. Needs the demo (``load_demo``) and a
database without this history.
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
from aifactories.services.fund.history_seed_peer import MODE, last_submission, open_peer_call
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


def _calls(run: SeedRun, code: str, end: float) -> dict[str, str]:
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
    return {"playground": codes[0], "fast_lane": codes[1]}


def _mode(run: SeedRun, i: int, submit_at: float) -> str:
    """Playground for half the proposals, then Fast Lane and Large Scale in turn (Fast Lane
    when no Large Scale cut-off is left)."""
    if i % 2 == 0:
        return "playground"
    if i % 4 == 3 and MODE in run.calls and submit_at < last_submission(run):
        return MODE
    return "fast_lane"


def _fields(run: SeedRun, i: int, mode: str, site: str | None) -> ProposalFields:
    kind = list(APPLICANTS)[i % len(APPLICANTS)]
    domain = list(Domain)[i % len(Domain)]
    hours, months = {
        "playground": (run.rng.randrange(1000, 2001, 100), 3),
        "fast_lane": (run.rng.randrange(2000, 20001, 500), 3),
        MODE: (run.rng.randrange(60_000, 200_001, 10_000), 3),
    }[mode]
    business = kind in (OrganisationKind.STARTUP, OrganisationKind.SME, OrganisationKind.INDUSTRY)
    return ProposalFields(
        title=f"Seeded {domain.value} project {i + 1}",
        abstract="A proposal of the seeded year of the programme.",
        domain=domain,
        industrial=business and i % 3 != 1,
        requested_gpu_hours=float(hours),
        largest_job_gpus=4,
        preferred_sites=[site] if site and mode != MODE else [],
        period_months=months,
    )


def _proposal(run: SeedRun, i: int, submit_at: float) -> None:
    """The i-th proposal: its applicant, domain, mode and request; submitted at ``submit_at``
    and decided as its mode decides."""
    kind = list(APPLICANTS)[i % len(APPLICANTS)]
    pi = APPLICANTS[kind]
    mode = _mode(run, i, submit_at)
    site = SITES[i % len(SITES)] if i % 3 else None  # else: funded from the pool
    fields = _fields(run, i, mode, site)
    decide_after = run.rng.uniform(1.0, 6.0) * DAY_S if mode == "fast_lane" else 0.0
    reject = mode == "fast_lane" and i % REJECT_EVERY == 1

    def propose() -> None:
        draft = create_draft(run.ctx, run.principal(pi), run.calls[mode], fields)
        row = submit(run.ctx, run.principal(pi), draft.id)
        now = run.clock.now()
        domain = fields.domain.value if fields.domain else ""
        decided = now + decide_after if mode != MODE else None
        seeded = SeededProposal(
            row.id, mode, kind.value, domain, now, decided, mode != MODE and not reject, None
        )
        run.history.proposals.append(seeded)
        index = len(run.history.proposals) - 1
        if mode == "playground":  # awarded at submission
            after_award(run, index, pi)
        elif mode == MODE:  # decided at its cut-off (history_seed_peer.py)
            run.peer[row.id] = (index, pi)
        else:
            run.at(now + decide_after, lambda: _check(run, row.id, index, pi, reject, site))

    run.at(submit_at, propose)


def _check(
    run: SeedRun, proposal_id: int, index: int, pi: str, reject: bool, site: str | None
) -> None:
    """A Fast Lane proposal's technical check by the programme operator."""
    technical_check(
        run.ctx,
        run.principal(OPERATOR),
        proposal_id,
        "reject" if reject else "accept",
        "does not fit the hardware" if reject else "fits the partition",
        site_id=site,
    )
    if not reject:
        after_award(run, index, pi)


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
    code = f"history-{to_datetime(begin):%Y%m%d}"
    run.calls = _calls(run, code, end)
    peer = open_peer_call(run, code, end)
    if peer is not None:
        run.calls[MODE] = peer
    # submissions from the second day to 40 days before the end: their projects run in it
    spread = max(0.0, end - begin - 41 * DAY_S)
    for i in range(proposals):
        at = begin + DAY_S + spread * i / max(1, proposals) + run.rng.uniform(0, 12) * HOUR_S
        _proposal(run, i, at)
    run.run(until=end)
    return run.history
