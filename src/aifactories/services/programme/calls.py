"""Calls: a programme operator opens a call in an access mode, with its rules, budget and
cut-offs; anyone signed in can read the open calls."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow
from aifactories.db.programme_models import CallRow, ProposalRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound
from aifactories.domain.organisations import OrganisationKind
from aifactories.programme.modes import (
    AccessMode,
    CallRules,
    ReviewKind,
    call_rules,
    parse_mode,
    rules_from_json,
)
from aifactories.programme.periods import regular_cutoffs
from aifactories.programme.states import CallStatus
from aifactories.services.core import idempotency
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import MAX_GPU_HOURS, Code, GpuHours, Instant, Title
from aifactories.services.notifications.audit import record

POOL = "pool"


def parse_time(value: str | float | int, field: str) -> float:
    """An ISO date or date-time (UTC unless it says otherwise), or epoch seconds."""
    if isinstance(value, int | float):
        return float(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            field, f"{value!r} is not an ISO date; write e.g. 2027-01-15 or 2027-01-15T12:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class CriterionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Code
    weight: Annotated[StrictFloat, Field(gt=0, le=1000, allow_inf_nan=False)]


class CallRulesIn(BaseModel):
    """The rules a call may narrow (programme.modes.call_rules checks them against its mode;
    docs/access-programme.md). Typed here, so that no NaN, infinity or stray type is stored."""

    model_config = ConfigDict(extra="forbid")

    min_gpu_hours: Annotated[
        StrictFloat | None, Field(ge=0, le=MAX_GPU_HOURS, allow_inf_nan=False)
    ] = None
    max_gpu_hours: Annotated[
        StrictFloat | None, Field(gt=0, le=MAX_GPU_HOURS, allow_inf_nan=False)
    ] = None
    durations_months: Annotated[
        list[Annotated[StrictInt, Field(ge=1, le=120)]] | None, Field(max_length=24)
    ] = None
    organisation_kinds: Annotated[list[OrganisationKind] | None, Field(max_length=10)] = None
    country_list: Code | None = None
    criteria: Annotated[list[CriterionIn] | None, Field(max_length=20)] = None
    reviewers_per_proposal: Annotated[StrictInt | None, Field(ge=1, le=10)] = None
    same_country_conflict: StrictBool | None = None
    min_average_score: Annotated[StrictFloat | None, Field(ge=0, le=10, allow_inf_nan=False)] = None
    min_award_fraction: Annotated[StrictFloat | None, Field(gt=0, le=1, allow_inf_nan=False)] = None
    max_members: Annotated[StrictInt | None, Field(ge=1, le=100_000)] = None
    cutoffs_per_month: Annotated[StrictInt | None, Field(ge=0, le=4)] = None
    member_cap_gpu_hours: Annotated[
        StrictFloat | None, Field(gt=0, le=MAX_GPU_HOURS, allow_inf_nan=False)
    ] = None


class CallIn(BaseModel):
    """A call as an operator opens it. ``rules`` narrows the mode's published rules."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[Code, Field(min_length=2, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    title: Title
    mode: Code
    opens_at: Annotated[Instant | None, Field(description="default: now")] = None
    closes_at: Instant
    cutoffs: Annotated[list[Instant], Field(max_length=500)] = []
    budget_gpu_hours: Annotated[
        dict[Code, GpuHours],
        Field(min_length=1, max_length=200, description="site id or 'pool' -> GPU-hours"),
    ]
    rules: CallRulesIn = CallRulesIn()
    course_ends_at: Instant | None = None


def _resolve(ctx: ServiceContext, body: CallIn) -> tuple[CallRules, float, float, list[float]]:
    mode = parse_mode(body.mode)
    rules = call_rules(mode, body.rules.model_dump(exclude_none=True))
    now = ctx.clock.now()
    opens = parse_time(body.opens_at, "opens_at") if body.opens_at is not None else now
    closes = parse_time(body.closes_at, "closes_at")
    if closes <= opens:
        raise InvalidInput("closes_at", "the call must close after it opens")
    cutoffs = sorted(parse_time(c, f"cutoffs[{i}]") for i, c in enumerate(body.cutoffs))
    if rules.review is ReviewKind.PEER and not cutoffs:
        # peer review needs cut-offs: the mode's regular ones (Large Scale: twice a month),
        # and the closing date last
        cutoffs = regular_cutoffs(opens, closes, rules.cutoffs_per_month)
    for i, cut in enumerate(cutoffs):
        if not opens < cut <= closes:
            raise InvalidInput(f"cutoffs[{i}]", "each cut-off must fall after opening, by closing")
    for key in body.budget_gpu_hours:
        if key != POOL and ctx.catalogue.site(key) is None:
            raise InvalidInput(
                f"budget_gpu_hours.{key}",
                f"unknown site {key!r}; use a site id from 'aif sites' or {POOL!r} for any site",
            )
    if mode is AccessMode.EDUCATION and body.course_ends_at is None:
        raise InvalidInput("course_ends_at", "an Education call needs the course's end date")
    return rules, opens, closes, cutoffs


def open_call(
    ctx: ServiceContext, principal: Principal, body: CallIn, key: str | None = None
) -> CallRow:
    """Open a call; a retry with the same idempotency ``key`` gets the call opened first."""
    once = idempotency.once(principal, key, "calls.open", body)
    return idempotency.replaying(
        ctx,
        once,
        lambda: _open_call(ctx, principal, body, once),
        lambda call_id: idempotency.stored(ctx, CallRow, call_id),
    )


def _open_call(
    ctx: ServiceContext, principal: Principal, body: CallIn, once: idempotency.Once | None
) -> CallRow:
    require_programme_operator(principal, "open a call")
    rules, opens, closes, cutoffs = _resolve(ctx, body)
    with ctx.sessions() as session, session.begin():
        if session.scalar(select(CallRow.id).where(CallRow.code == body.code)) is not None:
            raise Conflict(f"a call with code {body.code!r} exists already; choose another code")
        row = CallRow(
            code=body.code,
            title=body.title,
            mode=rules.mode.value,
            status=CallStatus.OPEN.value,
            rules=rules.to_json(),
            budget_gpu_hours=dict(body.budget_gpu_hours),
            opens_at=opens,
            closes_at=closes,
            cutoffs=cutoffs,
            course_ends_at=parse_time(body.course_ends_at, "course_ends_at")
            if body.course_ends_at is not None
            else None,
            created_by=int(principal.user_id),
            created_at=ctx.clock.now(),
        )
        session.add(row)
        session.flush()
        idempotency.record(session, once, row.id, row.created_at)
        record(
            session,
            at=ctx.clock.now(),
            actor=principal,
            action="call.open",
            subject=f"call:{row.id}",
            reason=body.title,
            details={"code": row.code, "mode": row.mode, "budget": row.budget_gpu_hours},
        )
        session.expunge(row)
        return row


def close_call(ctx: ServiceContext, principal: Principal, ref: str, reason: str) -> CallRow:
    require_programme_operator(principal, "close a call")
    with ctx.sessions() as session, session.begin():
        row = call_by_ref(session, ref)
        if row.status == CallStatus.CLOSED.value:
            raise Conflict(f"call {row.code} is closed already")
        row.status = CallStatus.CLOSED.value
        record(
            session,
            at=ctx.clock.now(),
            actor=principal,
            action="call.close",
            subject=f"call:{row.id}",
            reason=reason,
        )
        session.flush()
        session.expunge(row)
        return row


def call_by_ref(session: Session, ref: str | int) -> CallRow:
    if isinstance(ref, int) or ref.isdigit():
        row = session.get(CallRow, int(ref))
    else:
        row = session.scalar(select(CallRow).where(CallRow.code == ref))
    if row is None:
        raise NotFound(f"call {ref!r} does not exist; 'aif calls list' shows the calls")
    return row


def rules_of(row: CallRow) -> CallRules:
    """A call's stored rules (resolved at opening) as the pure value."""
    return rules_from_json(row.rules)


def accepts_submissions(row: CallRow, now: float) -> str | None:
    """Why the call takes no submission now, or None if it does."""
    if row.status != CallStatus.OPEN.value:
        return f"call {row.code} is closed"
    if now < row.opens_at:
        return f"call {row.code} opens at {iso(row.opens_at)}"
    if now >= row.closes_at:
        return f"call {row.code} closed at {iso(row.closes_at)}"
    return None


def next_cutoff(row: CallRow, now: float) -> float:
    future = [c for c in row.cutoffs if c >= now]
    return min(future) if future else row.closes_at


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def budget_left_gpu_seconds(session: Session, row: CallRow) -> dict[str, int]:
    """What is left of each budget line. Awards at a site draw from that site's line first and
    from the pool for the rest; awards to the pool (any site) draw from the pool."""
    granted = dict(
        session.execute(
            select(AllocationRow.site_id, func.sum(AllocationRow.granted_gpu_seconds))
            .join(ProposalRow, ProposalRow.project_id == AllocationRow.project_id)
            .where(ProposalRow.call_id == row.id)
            .group_by(AllocationRow.site_id)
        ).all()
    )
    # a NaN or infinite line (stored before the input checks) counts as nothing left
    budget = {
        key: int(hours * 3600) if math.isfinite(hours) else 0
        for key, hours in row.budget_gpu_hours.items()
    }
    left = dict(budget)
    from_pool = int(granted.pop(None, 0) or 0)
    for site, used in granted.items():
        assert site is not None
        own = min(int(used), max(0, budget.get(site, 0)))
        if site in left:
            left[site] -= own
        from_pool += int(used) - own
    if POOL in left:
        left[POOL] -= from_pool
    return left


def list_calls(
    ctx: ServiceContext, _principal: Principal, *, include_closed: bool
) -> list[CallRow]:
    with ctx.reads() as session:
        query = select(CallRow).order_by(CallRow.id)
        if not include_closed:
            query = query.where(CallRow.status == CallStatus.OPEN.value)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def get_call(
    ctx: ServiceContext, _principal: Principal, ref: str
) -> tuple[CallRow, dict[str, int]]:
    with ctx.reads() as session:
        row = call_by_ref(session, ref)
        left = budget_left_gpu_seconds(session, row)
        session.expunge(row)
        return row, left
