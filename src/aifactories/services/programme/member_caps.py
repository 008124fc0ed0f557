"""The Education per-member cap, checked at submission (``services.jobs``): a capped member's
jobs in a project may not take more than their cap of GPU-hours.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sqlalchemy import BigInteger, Connection, case, cast, func, null, select

from aifactories.db.models import JobRow, MembershipRow, ProjectRow, table_of
from aifactories.domain.errors import BudgetExceeded
from aifactories.domain.jobs import JobState
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.allocation_common import hours_text


def check_member_cap(
    ctx: ServiceContext,
    conn: Connection,
    principal: Principal,
    project: ProjectRow,
    need: Callable[[], int],
) -> None:
    """Refuse a submission that would take a capped member past their cap in the project.

    One indexed query (memberships' unique key on project and user) for everyone; the sums over
    the member's jobs run only when the membership has a cap (``CASE``). What counts: every job
    of the member in the project, charged plus reserved, plus pending jobs at the least they
    can reserve (GPUs x time limit x the lowest billing weight). ``need`` is the least the new
    job can reserve. Like the budget check, this is admission advice."""
    members, jobs = table_of(MembershipRow), table_of(JobRow)
    mine = (jobs.c.project_id == members.c.project_id) & (jobs.c.user_id == members.c.user_id)
    held = (
        select(func.coalesce(func.sum(jobs.c.reserved_gpu_seconds + jobs.c.charged_gpu_seconds), 0))
        .where(mine)
        .scalar_subquery()
    )
    waiting = (
        select(func.coalesce(func.sum(cast(jobs.c.gpus, BigInteger) * jobs.c.time_limit_s), 0))
        .where(
            mine,
            jobs.c.state == JobState.PENDING.value,
            jobs.c.cancel_requested.is_(False),
        )
        .scalar_subquery()
    )
    capped = members.c.cap_gpu_seconds.is_not(None)
    found = conn.execute(
        select(
            members.c.cap_gpu_seconds,
            case((capped, held), else_=null()),
            case((capped, waiting), else_=null()),
        ).where(members.c.project_id == project.id, members.c.user_id == principal.user_id)
    ).first()
    if found is None or found[0] is None:
        return
    cap = int(found[0])
    weight = min((p.billing_weight for p in ctx.catalogue.operational_partitions), default=1.0)
    committed = int(found[1] or 0) + math.ceil(int(found[2] or 0) * weight)
    needed = need()
    if committed + needed <= cap:
        return
    left = max(0, cap - committed)
    raise BudgetExceeded(
        f"member cap: your cap in {project.code} is {hours_text(cap)} GPU-hours; your jobs "
        f"there have used or hold {hours_text(committed)} (charged, reserved and waiting), so "
        f"{hours_text(left)} are left, and this job reserves at least {hours_text(needed)}; "
        "shorten --time, use fewer GPUs, wait for your jobs to end, or ask your PI or teacher "
        "to raise your cap",
        needed_gpu_seconds=needed,
        left_gpu_seconds=left,
    )
