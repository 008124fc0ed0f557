"""The proposals a person applied with, as their PI or named in the team: the portal's "My
proposals".

``proposals.list_proposals`` answers for every role, so for an applicant it walks every
submitted proposal of the programme and asks ``may_see`` of each (seconds with 5,000 of
them). This asks the database for the caller's own first: those they lead, and those whose
team list names them; ``may_see`` still has the last word on each.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Text, and_, cast, or_, select

from aifactories.db.programme_models import ProposalRow
from aifactories.programme.states import ProposalStatus
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.proposals import candidates_of, may_see, proposal_view

PAGE = 25
"""Proposals per page: each is read as ``get_proposal`` reads it (a few look-ups and the
sites that can host it), about 3 ms apiece."""


def my_proposals(
    ctx: ServiceContext, principal: Principal, *, limit: int = PAGE, before: int | None = None
) -> list[dict[str, Any]]:
    """The caller's proposals (as PI or team member), newest first, as ``get_proposal``
    shows them to the caller; ``before``: only ids below this one (the next page)."""
    # the team is a JSON list of user names, written by json.dumps: the name as JSON text
    # finds the candidates in SQLite and PostgreSQL alike; the exact test follows in Python
    named = cast(ProposalRow.members, Text).contains(
        json.dumps(principal.username), autoescape=True
    )
    query = (
        select(ProposalRow)
        .where(
            or_(
                ProposalRow.pi_user_id == principal.user_id,
                and_(ProposalRow.status != ProposalStatus.DRAFT.value, named),
            )
        )
        .order_by(ProposalRow.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(ProposalRow.id < before)
    out: list[dict[str, Any]] = []
    with ctx.reads() as session:
        for row in session.scalars(query):
            if row.pi_user_id != principal.user_id and principal.username not in row.members:
                continue
            if may_see(session, principal, row, candidates_of(ctx, session, row)):
                out.append(proposal_view(session, ctx, principal, row))
    return out
