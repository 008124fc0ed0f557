"""Editing an open call: its title, closing date, cut-offs, budget and a course's end. What
applicants have already relied on stays: a cut-off that has passed, or that a submitted
proposal waits for, cannot go; the closing date cannot move into the past (closing is its
own action, with a reason); a budget line cannot drop below what was awarded from it.

The mode and the rules are not editable: proposals were checked against them at submission,
and changing them afterwards would judge the same round by two sets of rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.programme_models import CallRow, ProposalRow
from aifactories.domain.errors import Conflict, InvalidInput
from aifactories.programme.modes import AccessMode, ReviewKind
from aifactories.programme.states import CallStatus, ProposalStatus
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import Code, GpuHours, Instant, Reason, Title
from aifactories.services.notifications.audit import record
from aifactories.services.programme.calls import (
    POOL,
    budget_left_gpu_seconds,
    call_by_ref,
    iso,
    parse_time,
    rules_of,
)


class CallEdit(BaseModel):
    """The new values; a field left out keeps its value. ``cutoffs`` and ``budget_gpu_hours``
    replace the whole list and the whole budget."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    closes_at: Instant | None = None
    cutoffs: Annotated[list[Instant] | None, Field(max_length=500)] = None
    budget_gpu_hours: Annotated[
        dict[Code, GpuHours] | None, Field(min_length=1, max_length=200)
    ] = None
    course_ends_at: Instant | None = None
    reason: Reason


def _waiting_cutoffs(session: Session, call: CallRow) -> set[float]:
    """The cut-offs (or the closing date) that submitted, undecided proposals wait for."""
    open_states = (ProposalStatus.TECHNICAL_CHECK.value, ProposalStatus.UNDER_REVIEW.value)
    found = session.scalars(
        select(ProposalRow.cutoff_at).where(
            ProposalRow.call_id == call.id,
            ProposalRow.status.in_(open_states),
            ProposalRow.cutoff_at.is_not(None),
        )
    )
    return {float(c) for c in found if c is not None}


def _snapped(value: float, known: list[float]) -> float:
    """A time typed back as shown (to the second) is the stored one it stands for, so that
    keeping a cut-off by leaving it in the form keeps it exactly."""
    return next((k for k in known if abs(k - value) < 1), value)


def edit_call(ctx: ServiceContext, principal: Principal, ref: str, body: CallEdit) -> CallRow:
    require_programme_operator(principal, "edit a call")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = call_by_ref(session, ref)
        session.refresh(row, with_for_update=True)
        if row.status != CallStatus.OPEN.value:
            raise Conflict(f"call {row.code} is closed; a closed call cannot be edited")
        rules = rules_of(row)
        before = {"closes_at": row.closes_at, "cutoffs": list(row.cutoffs)}
        changed: dict[str, Any] = {}
        closes = row.closes_at
        if body.closes_at is not None:
            closes = _snapped(parse_time(body.closes_at, "closes_at"), [row.closes_at])
            if closes <= max(now, row.opens_at):
                raise InvalidInput(
                    "closes_at", "the new closing date must be ahead and after the opening"
                )
        cutoffs = list(row.cutoffs)
        if body.cutoffs is not None:
            known = [*row.cutoffs, row.closes_at]
            cutoffs = sorted(
                _snapped(parse_time(c, f"cutoffs[{i}]"), known) for i, c in enumerate(body.cutoffs)
            )
            for past in (c for c in row.cutoffs if c <= now):
                if past not in cutoffs:
                    raise InvalidInput("cutoffs", f"the cut-off of {iso(past)} has passed: keep it")
        if rules.review is ReviewKind.PEER and not cutoffs:
            raise InvalidInput("cutoffs", "a peer-reviewed call needs at least one cut-off")
        for i, cut in enumerate(cutoffs):
            if not row.opens_at < cut <= closes:
                raise InvalidInput(
                    f"cutoffs[{i}]", "each cut-off must fall after opening, by closing"
                )
        for waited in _waiting_cutoffs(session, row) - {*cutoffs, closes}:
            raise InvalidInput(
                "cutoffs",
                f"submitted proposals wait for the cut-off of {iso(waited)}: keep it (or the "
                "closing date it fell on)",
            )
        if closes != row.closes_at:
            row.closes_at, changed["closes_at"] = closes, closes
        if cutoffs != list(row.cutoffs):
            row.cutoffs, changed["cutoffs"] = cutoffs, cutoffs
        if body.title is not None and body.title != row.title:
            row.title, changed["title"] = body.title, body.title
        if body.course_ends_at is not None:
            if rules.mode is not AccessMode.EDUCATION:
                raise InvalidInput("course_ends_at", "only an Education call has a course's end")
            ends = parse_time(body.course_ends_at, "course_ends_at")
            if ends != row.course_ends_at:
                row.course_ends_at, changed["course_ends_at"] = ends, ends
        if body.budget_gpu_hours is not None and body.budget_gpu_hours != row.budget_gpu_hours:
            for key in body.budget_gpu_hours:
                if key != POOL and ctx.catalogue.site(key) is None:
                    raise InvalidInput(
                        f"budget_gpu_hours.{key}",
                        f"unknown site {key!r}; use a site id or {POOL!r}",
                    )
            old_budget = dict(row.budget_gpu_hours)
            row.budget_gpu_hours = dict(body.budget_gpu_hours)
            for key, left in budget_left_gpu_seconds(session, row).items():
                if left < 0:
                    raise InvalidInput(
                        f"budget_gpu_hours.{key}",
                        f"{-left / 3600:,.0f} GPU-hours more than this line were awarded already",
                    )
            changed["budget_gpu_hours"] = {"from": old_budget, "to": row.budget_gpu_hours}
        if not changed:
            raise InvalidInput("call", "nothing changed: give at least one new value")
        record(
            session,
            at=now,
            actor=principal,
            action="call.edit",
            subject=f"call:{row.id}",
            reason=body.reason,
            details={"code": row.code, "changed": changed, "before": before},
        )
        session.flush()
        session.expunge(row)
        return row
