"""What the programme shows to anyone, signed in or not: the open calls, their modes,
limits and deadlines. Public by the programme's own rules (the calls are published), so no
principal is asked for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from aifactories.db.programme_models import CallRow
from aifactories.programme.states import CallStatus
from aifactories.services.core.context import ServiceContext
from aifactories.services.programme.calls import next_cutoff, rules_of

# How people name them (the values are the programme's codes)
_REVIEW = {
    "none": "automated checks, accepted at submission",
    "technical": "a site's technical check",
    "peer": "peer review, awarded after each cut-off",
}
_KINDS = {
    "sme": "SMEs",
    "startup": "start-ups",
    "industry": "industry",
    "academia": "universities and research",
    "public": "public bodies",
}


@dataclass(frozen=True)
class PublicCall:
    code: str
    title: str
    mode: str  # the access mode's title: "Playground", "Fast Lane", ...
    review: str  # how proposals are assessed
    min_gpu_hours: float
    max_gpu_hours: float
    durations_months: tuple[int, ...]
    max_sites: int
    organisation_kinds: tuple[str, ...]
    opens_at: float
    closes_at: float
    next_cutoff: float
    budget_gpu_hours: float  # in all, over sites and the pool


def open_calls(ctx: ServiceContext) -> list[PublicCall]:
    """The calls open now, the soonest deadline first."""
    now = ctx.clock.now()
    with ctx.reads() as session:
        rows = list(session.scalars(select(CallRow).where(CallRow.status == CallStatus.OPEN.value)))
    calls = []
    for row in rows:
        rules = rules_of(row)
        calls.append(
            PublicCall(
                code=row.code,
                title=row.title,
                mode=rules.title,
                review=_REVIEW.get(rules.review.value, rules.review.value.replace("_", " ")),
                min_gpu_hours=rules.min_gpu_hours,
                max_gpu_hours=rules.max_gpu_hours,
                durations_months=rules.durations_months,
                max_sites=rules.max_sites,
                organisation_kinds=tuple(
                    _KINDS.get(k.value, k.value.replace("_", " ")) for k in rules.organisation_kinds
                ),
                opens_at=row.opens_at,
                closes_at=row.closes_at,
                next_cutoff=next_cutoff(row, now),
                budget_gpu_hours=float(sum(row.budget_gpu_hours.values())),
            )
        )
    return sorted(calls, key=lambda c: (c.next_cutoff, c.code))
