"""After a cut-off: the allocation optimiser proposes awards for the accepted proposals
(GPU-hours per proposal, site, partition and month), next to the committee's greedy rule;
a programme operator reads both and applies one. Applying creates the projects, members and
allocations of every awarded proposal in one transaction, and rejects the rest with the
optimiser's reason."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow, OrganisationRow
from aifactories.db.programme_models import AwardLineRow, AwardRunRow, CallRow, ProposalRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound
from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.programme.award_compare import compare
from aifactories.programme.award_model import (
    AwardPlan,
    BudgetLine,
    PartitionCapacity,
    ProgrammeWeights,
    ProposalDemand,
)
from aifactories.programme.eligibility import matching_partitions
from aifactories.programme.greedy import greedy_awards
from aifactories.programme.modes import rules_from_json
from aifactories.programme.optimiser import optimise_awards
from aifactories.programme.periods import add_months, hours_in_month, month_start, month_starts
from aifactories.programme.states import ProposalStatus, check_transition
from aifactories.services.core import idempotency
from aifactories.services.core.auth import forget_cached_principals, require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user
from aifactories.services.programme.awarding import AwardedAllocation, award_proposal
from aifactories.services.programme.calls import POOL, budget_left_gpu_seconds, call_by_ref

HORIZON_MONTHS = 12
# Share of a partition's GPU-hours the programme may award: the rest is maintenance, the
# sites' own users and the queue's unavoidable idle time.
AWARDABLE_SHARE = 0.8


def _accepted(session: Session, call: CallRow, cutoff_at: float | None) -> list[ProposalRow]:
    query = select(ProposalRow).where(
        ProposalRow.call_id == call.id, ProposalRow.status == ProposalStatus.ACCEPTED.value
    )
    if cutoff_at is not None:
        query = query.where(ProposalRow.cutoff_at == cutoff_at)
    rows = list(session.scalars(query))
    # the panel's rank, else the score, else first come
    rows.sort(key=lambda r: (r.rank or 10**9, -(r.score or 0.0), r.submitted_at or 0.0))
    return rows


def _held_by_allocations(
    ctx: ServiceContext, session: Session, starts: list[float]
) -> dict[str, list[float]]:
    """GPU-hours per partition per month that open allocations still hold: what is left of
    each, spread evenly over its remaining months, over its site's partitions (or, for a pool
    allocation, those of its sites, every partition if it names none) in proportion to their
    GPUs."""
    partitions = [p for s in ctx.catalogue.operational_sites for p in s.partitions]
    total_gpus = sum(p.total_gpus for p in partitions) or 1
    held = {str(p.id): [0.0] * len(starts) for p in partitions}
    horizon_end = add_months(starts[0], len(starts))
    rows = session.scalars(
        select(AllocationRow).where(
            AllocationRow.status == "open", AllocationRow.ends_at > starts[0]
        )
    )
    for alloc in rows:
        left_h = max(0, alloc.granted_gpu_seconds - alloc.used_gpu_seconds) / SECONDS_PER_HOUR
        months = [
            i
            for i, start in enumerate(starts)
            if start < alloc.ends_at and add_months(start, 1) > max(alloc.starts_at, starts[0])
        ]
        if not months or left_h <= 0 or alloc.starts_at >= horizon_end:
            continue
        if alloc.site_id is not None:
            targets = [p for p in partitions if p.site_id == alloc.site_id]
        else:
            only = alloc.pool_sites
            targets = [p for p in partitions if only is None or p.site_id in only]
        gpus = sum(p.total_gpus for p in targets) or total_gpus
        for part in targets:
            for m in months:
                held[str(part.id)][m] += left_h / len(months) * part.total_gpus / gpus
    return held


def _capacities(
    ctx: ServiceContext, session: Session, call: CallRow, starts: list[float]
) -> tuple[list[PartitionCapacity], list[BudgetLine]]:
    """Each operational partition's free GPU-hours per month, and the call's budget lines
    over them: a site's own line bounds that site, the pool bounds the sites that have no
    line of their own, over the whole horizon (the optimiser decides the months)."""
    held = _held_by_allocations(ctx, session, starts)
    free: dict[str, list[float]] = {}
    sites: dict[str, str] = {}
    countries: dict[str, str] = {}
    for site in ctx.catalogue.operational_sites:
        for part in site.partitions:
            pid = str(part.id)
            sites[pid], countries[pid] = site.id, site.country
            free[pid] = [
                max(0.0, part.total_gpus * hours_in_month(s) * AWARDABLE_SHARE - held[pid][m])
                for m, s in enumerate(starts)
            ]
    left_h = {
        k: max(0, v) / SECONDS_PER_HOUR for k, v in budget_left_gpu_seconds(session, call).items()
    }
    by_line: dict[str, list[str]] = defaultdict(list)
    for pid, site_id in sites.items():
        line = site_id if site_id in left_h else (POOL if POOL in left_h else None)
        if line is None:
            free[pid] = [0.0] * len(starts)  # the call funds nothing there
        else:
            by_line[line].append(pid)
    partitions = [
        PartitionCapacity(pid, sites[pid], countries[pid], tuple(free[pid])) for pid in sorted(free)
    ]
    lines = [BudgetLine(name, tuple(sorted(pids)), left_h[name]) for name, pids in by_line.items()]
    return partitions, sorted(lines, key=lambda line: line.name)


def _demands(
    ctx: ServiceContext,
    session: Session,
    rows: list[ProposalRow],
    starts: list[float],
    min_fraction: float,
) -> list[ProposalDemand]:
    demands = []
    for rank, row in enumerate(rows, start=1):
        org = session.get(OrganisationRow, row.organisation_id)
        assert org is not None
        first = 0
        if row.starts_at is not None and row.starts_at > starts[0]:
            wanted = month_start(row.starts_at)
            first = next((i for i, s in enumerate(starts) if s >= wanted), len(starts) - 1)
        last = min(len(starts) - 1, first + row.period_months - 1)
        eligible = tuple(
            str(part.id)
            for _, part in matching_partitions(
                ctx.catalogue,
                gpu_model=row.gpu_model,
                min_gpu_memory_gb=row.min_gpu_memory_gb,
                largest_job_gpus=row.largest_job_gpus,
                residency=tuple(row.residency),
            )
        )
        demands.append(
            ProposalDemand(
                proposal_id=row.id,
                rank=rank,
                score=row.score or 0.0,
                requested_gpu_hours=row.requested_gpu_hours,
                min_award_fraction=min_fraction,
                eligible_partitions=eligible,
                preferred_sites=tuple(row.preferred_sites),
                first_month=first,
                last_month=last,
                industrial=row.industrial,
                critical_domain=row.critical_domain,
                organisation_kind=org.kind,
                country=org.country,
            )
        )
    return demands


def _weights(overrides: dict[str, float] | None) -> ProgrammeWeights:
    try:
        return ProgrammeWeights(**(overrides or {}))
    except TypeError as exc:
        known = ", ".join(ProgrammeWeights.__dataclass_fields__)
        raise InvalidInput("weights", f"{exc}; the weights are {known}") from None


def _plan_json(plan: AwardPlan, *, lines: bool = False) -> dict[str, Any]:
    """A plan for the run's record; ``lines`` adds its GPU-hours per proposal, partition and
    month index (kept for both plans, so that the report can draw them side by side)."""
    data: dict[str, Any] = {
        "objective_value": plan.objective_value,
        "solver": plan.solver,
        "solve_seconds": plan.solve_seconds,
        "status": plan.status,
        "mip_gap": plan.mip_gap,
        "awarded_gpu_hours": plan.awarded_gpu_hours,
        "outcomes": [asdict(o) for o in plan.outcomes],
    }
    if lines:
        data["lines"] = [asdict(line) for line in plan.lines]
    return data


def run_awards(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    *,
    cutoff_at: float | None = None,
    method: str = "optimiser",
    weights: dict[str, float] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Propose awards for the call's accepted proposals; nothing is granted until applied.
    A retry with the same idempotency ``key`` gets the first run, not a second one."""
    once = idempotency.once(principal, key, "awards.run", call_ref, cutoff_at, method, weights)
    return idempotency.replaying(
        ctx,
        once,
        lambda: _run_awards(ctx, principal, call_ref, cutoff_at, method, weights, once),
        lambda run_id: get_run(ctx, principal, run_id),
    )


def _run_awards(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    cutoff_at: float | None,
    method: str,
    weights: dict[str, float] | None,
    once: idempotency.Once | None,
) -> dict[str, Any]:
    require_programme_operator(principal, "run the allocation optimiser")
    if method not in ("optimiser", "greedy"):
        raise InvalidInput("method", "use optimiser or greedy")
    chosen_weights = _weights(weights)
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        call = call_by_ref(session, call_ref)
        rows = _accepted(session, call, cutoff_at)
        if not rows:
            raise Conflict(
                f"call {call.code} has no accepted proposal waiting for an award"
                + (" at that cut-off" if cutoff_at is not None else "")
                + "; decide the reviewed proposals first ('aif reviews decide')"
            )
        rules = rules_from_json(call.rules)
        starts = month_starts(max(now, cutoff_at or now), HORIZON_MONTHS)
        partitions, lines = _capacities(ctx, session, call, starts)
        demands = _demands(ctx, session, rows, starts, rules.min_award_fraction)
        optimal = optimise_awards(
            demands, partitions, chosen_weights, months=HORIZON_MONTHS, budget_lines=lines
        )
        greedy = greedy_awards(
            demands, partitions, months=HORIZON_MONTHS, weights=chosen_weights, budget_lines=lines
        )
        comparison = compare(
            optimal,
            greedy,
            demands,
            partitions,
            chosen_weights,
            months=HORIZON_MONTHS,
            budget_lines=lines,
        )
        plan = optimal if method == "optimiser" else greedy
        run = AwardRunRow(
            call_id=call.id,
            cutoff_at=cutoff_at,
            method=method,
            status="proposed",
            objective=optimal.objective_text,
            summary={
                "weights": asdict(chosen_weights),
                "plan": _plan_json(plan),
                "optimiser": _plan_json(optimal, lines=True),
                "greedy": _plan_json(greedy, lines=True),
                "comparison": [list(map(str, r)) for r in comparison.table_rows()],
                "shares_by_country": {
                    "optimiser": comparison.a.share_by_country,
                    "greedy": comparison.b.share_by_country,
                },
                "month_starts": starts,
                "proposals": [r.id for r in rows],
            },
            created_by=int(principal.user_id),
            created_at=now,
        )
        session.add(run)
        session.flush()
        idempotency.record(session, once, run.id, now)
        for line in plan.lines:
            session.add(
                AwardLineRow(
                    run_id=run.id,
                    proposal_id=line.proposal_id,
                    site_id=line.site_id,
                    partition_id=line.partition_id,
                    month_starts_at=starts[line.month],
                    gpu_seconds=round(line.gpu_hours * SECONDS_PER_HOUR),
                )
            )
        record(
            session,
            at=now,
            actor=principal,
            action="awards.propose",
            subject=f"call:{call.id}",
            reason=f"{method}: {plan.awarded_gpu_hours:,.0f} GPU-hours to "
            f"{sum(1 for o in plan.outcomes if o.awarded > 0)} of {len(rows)} proposals",
            details={"run_id": run.id, "objective": optimal.objective_text},
        )
        session.flush()
        return run_view(session, run)


def run_view(session: Session, run: AwardRunRow) -> dict[str, Any]:
    lines = session.scalars(select(AwardLineRow).where(AwardLineRow.run_id == run.id)).all()
    per_proposal: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        per_proposal[line.proposal_id].append(
            {
                "site_id": line.site_id,
                "partition_id": line.partition_id,
                "month_starts_at": line.month_starts_at,
                "gpu_hours": line.gpu_seconds / SECONDS_PER_HOUR,
            }
        )
    call = session.get(CallRow, run.call_id)
    assert call is not None
    return {
        "id": run.id,
        "call": call.code,
        "cutoff_at": run.cutoff_at,
        "method": run.method,
        "status": run.status,
        "objective": run.objective,
        "weights": run.summary["weights"],
        "plan": run.summary["plan"],
        "comparison": run.summary["comparison"],
        "lines": {str(k): v for k, v in per_proposal.items()},
        # both plans in full and the horizon, for the report's side-by-side figures
        "optimiser": run.summary.get("optimiser"),
        "greedy": run.summary.get("greedy"),
        "month_starts": run.summary.get("month_starts", []),
        "shares_by_country": run.summary.get("shares_by_country", {}),
        "proposals": run.summary.get("proposals", []),
        "created_at": run.created_at,
        "applied_at": run.applied_at,
    }


def get_run(ctx: ServiceContext, principal: Principal, run_id: int) -> dict[str, Any]:
    require_programme_operator(principal, "read award runs")
    with ctx.reads() as session:
        run = session.get(AwardRunRow, run_id)
        if run is None:
            raise NotFound(f"award run {run_id} does not exist")
        return run_view(session, run)


def list_runs(ctx: ServiceContext, principal: Principal, call_ref: str) -> list[dict[str, Any]]:
    require_programme_operator(principal, "read award runs")
    with ctx.reads() as session:
        call = call_by_ref(session, call_ref)
        runs = session.scalars(
            select(AwardRunRow).where(AwardRunRow.call_id == call.id).order_by(AwardRunRow.id)
        ).all()
        # the list is for choosing a run: each without its lines and full plans (a round of
        # thousands of proposals holds megabytes of them); GET /award-runs/{id} has it all
        heavy = ("lines", "optimiser", "greedy")
        return [{k: v for k, v in run_view(session, r).items() if k not in heavy} for r in runs]


def apply_run(
    ctx: ServiceContext, principal: Principal, run_id: int, reason: str
) -> dict[str, Any]:
    """Grant a proposed run: every awarded proposal becomes a project with one allocation per
    site over its months; the others are rejected with the optimiser's reason. One
    transaction: all of it happens, or none."""
    require_programme_operator(principal, "apply awards")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        run = session.get(AwardRunRow, run_id, with_for_update=True)
        if run is None:
            raise NotFound(f"award run {run_id} does not exist")
        if run.status != "proposed":
            raise Conflict(
                f"award run {run_id} is {run.status}; only a proposed run can be applied"
            )
        call = session.get(CallRow, run.call_id, with_for_update=True)
        assert call is not None
        lines = session.scalars(select(AwardLineRow).where(AwardLineRow.run_id == run.id)).all()
        by_proposal: dict[int, list[AwardLineRow]] = defaultdict(list)
        for line in lines:
            by_proposal[line.proposal_id].append(line)
        outcomes = {o["proposal_id"]: o for o in run.summary["plan"]["outcomes"]}
        awarded = rejected = 0
        for proposal_id in run.summary["proposals"]:
            row = session.get(ProposalRow, proposal_id, with_for_update=True)
            if row is None or row.status != ProposalStatus.ACCEPTED.value:
                continue  # withdrawn since the run: its share stays unused
            mine = by_proposal.get(proposal_id, [])
            outcome = outcomes.get(proposal_id, {})
            if mine:
                allocations = _allocations(mine, row.period_months)
                total = sum(a.gpu_seconds for a in allocations) / SECONDS_PER_HOUR
                note = outcome.get("explanation") or "awarded in full"
                award_proposal(
                    session,
                    ctx,
                    row,
                    call,
                    allocations,
                    actor=principal,
                    reason=f"{run.method} run {run.id}: {total:,.0f} of "
                    f"{row.requested_gpu_hours:,.0f} GPU-hours; {note}. {reason}",
                )
                awarded += 1
            else:
                check_transition(ProposalStatus(row.status), ProposalStatus.REJECTED, row.id)
                why = outcome.get("explanation") or "no capacity left for it"
                row.status = ProposalStatus.REJECTED.value
                row.decision_reason = f"not funded ({outcome.get('reason') or 'capacity'}): {why}"
                row.decided_at = now
                row.updated_at = now
                record(
                    session,
                    at=now,
                    actor=principal,
                    action="proposal.reject",
                    subject=f"proposal:{row.id}",
                    reason=row.decision_reason,
                    details={"run_id": run.id},
                )
                notify_user(
                    session,
                    at=now,
                    user_id=row.pi_user_id,
                    event="proposal.rejected",
                    subject=f"[aifactories] proposal {row.id} was not funded",
                    body=f"Your proposal '{row.title}' was accepted by the panel but could not "
                    f"be funded in this round.\nReason: {row.decision_reason}\n",
                    payload={"proposal_id": row.id, "status": "rejected"},
                )
                rejected += 1
        run.status = "applied"
        run.applied_at = now
        record(
            session,
            at=now,
            actor=principal,
            action="awards.apply",
            subject=f"call:{call.id}",
            reason=reason,
            details={"run_id": run.id, "awarded": awarded, "rejected": rejected},
        )
        session.flush()
        view = run_view(session, run)
    forget_cached_principals()
    return view


def _allocations(lines: list[AwardLineRow], period_months: int) -> list[AwardedAllocation]:
    """One allocation per site: the site's GPU-hours over the months the award spans (at
    least the proposal's period, so a front-loaded award still has its whole period)."""
    first = min(line.month_starts_at for line in lines)
    last = max(line.month_starts_at for line in lines)
    end = max(add_months(last, 1), add_months(first, period_months))
    per_site: dict[str, int] = defaultdict(int)
    for line in lines:
        per_site[line.site_id] += line.gpu_seconds
    return [
        AwardedAllocation(site, seconds, first, end)
        for site, seconds in sorted(per_site.items())
        if seconds > 0
    ]
