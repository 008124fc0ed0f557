"""Check an investment plan in the twin: today's operational factories and the same with the
plan's new partitions, over the same year of demand, in one HTML report.

The new partitions are built as catalogue sites (validated by the catalogue's own rules) from
what the plan adds: a new site per taken candidate's site, an existing site's new capacity as
a site of its own in the same country (``<site>-plan``), so that today's partitions stay as
they are. Their power and the grid's carbon come from the cost model; their GPUs' speed from
the plan file (the same reference GPU-hours the optimiser counted).

The demand checked is the scenario's demand in the plan's last year (grown by its rate), in
reference GPU-hours, which the twin counts as A100-hours. See twin/plan_check.py for what is
measured. Time to access per access mode adds each mode's time from submission to decision,
which the twin does not simulate: the figures passed in (services/fund/plan_decisions.py: the
programme's measured medians), else the published targets.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aifactories.catalogue.loader import Catalogue, parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.domain.sites import Site
from aifactories.fund.cost_model import CostModel, load_cost_model
from aifactories.fund.investment_model import AddedPartition
from aifactories.services.fund.invest import InvestmentRun
from aifactories.services.fund.plan_decisions import DecisionTimes, published
from aifactories.services.fund.plan_processes import default_workers, run_federations
from aifactories.twin.plan_check import PlanCheck, Progress, plan_check_of, plan_tasks
from aifactories.twin.plan_report import Investment, write_plan_report

# What a node of each model holds, for building the twin's partitions (GPU memory only matters
# to jobs that ask for it; the mixture's jobs do not). A model not listed: 8 GPUs of 80 GB.
NODE_SHAPE: Mapping[str, tuple[int, int]] = {
    "A100": (4, 64),
    "H100": (4, 64),
    "H200": (4, 141),
    "GH200": (4, 96),
    "GB200": (4, 186),
    "GB300": (4, 279),
    "B200": (8, 180),
    "B300": (8, 279),
    "MI250X": (8, 64),
    "MI300A": (4, 128),
    "MI300X": (8, 192),
    "MI355X": (8, 288),
}


@dataclass(frozen=True)
class PlanCheckResult:
    check: PlanCheck
    report: Path
    added_sites: tuple[Site, ...]
    decisions: DecisionTimes  # each access mode's time to decision, and where it came from


def added_sites(added: Sequence[AddedPartition], today: Sequence[Site]) -> tuple[Site, ...]:
    """The plan's new capacity as catalogue sites, one partition per GPU model and site."""
    existing = {s.id for s in today}
    by_site: dict[str, dict[str, object]] = {}
    for part in added:
        site_id = f"{part.site}-plan" if part.site in existing else part.site
        entry = by_site.setdefault(
            site_id,
            {
                "id": site_id,
                "name": f"{part.site} (planned)",
                "country": part.country,
                "supercomputer": "planned by aif invest",
                "status": "operational",
                "partitions": [],
            },
        )
        per_node, memory = NODE_SHAPE.get(part.gpu_model.upper(), (8, 80))
        nodes = math.ceil(part.accelerators / per_node)
        partitions = entry["partitions"]
        assert isinstance(partitions, list)
        partitions.append(
            {
                "name": f"{part.gpu_model.lower()}-{part.candidate_id}".replace("_", "-")[:40],
                "gpu_model": part.gpu_model,
                "gpu_memory_gb": memory,
                "gpus_per_node": per_node,
                "nodes": nodes,
                "billing_weight": 1.0,
            }
        )
    if not by_site:
        return ()
    return parse_catalogue({"sites": list(by_site.values())}, "the plan's new capacity").sites


def twin_speeds(run: InvestmentRun, catalogue: Catalogue) -> dict[str, float]:
    """Each GPU model's speed as the optimiser counted it: the plan file's
    ``accelerator_models`` speed, else (today's partitions) the catalogue's billing weight."""
    speeds = {p.gpu_model: p.billing_weight for p in catalogue.operational_partitions}
    speeds.update({m: e.speed for m, e in run.scenario.accelerator_models.items()})
    return speeds


def check_plan_in_twin(
    run: InvestmentRun,
    catalogue: Catalogue,
    out: Path,
    *,
    days: float = 365.0,
    seed: int = 0,
    policy: str = "easy_backfill",
    cost_model: CostModel | None = None,
    decisions: DecisionTimes | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> PlanCheckResult:
    """Run the plan's check and write ``out/plan.html``. ``decisions``: each access mode's
    time from submission to decision (default: the published targets). ``workers``: 2 runs
    the two federations in two processes at once, 1 one after the other in this process
    (less memory: one federation at a time); default 2 when this process may use 2 cores or more."""
    plan, problem = run.plan, run.problem
    if not plan.added:
        raise InvalidInput(
            "plan",
            "takes no investment, so there is nothing to compare",
            limit="a budget that buys at least one candidate",
        )
    costs = cost_model or load_cost_model(catalogue)
    decided = decisions or published("no programme books given")
    today = tuple(catalogue.operational_sites)
    # The grid of each new site's country (today's sites keep the catalogue's own figure).
    new_sites = tuple(
        _with_carbon(site, costs.carbon(site.country).value)
        for site in added_sites(plan.added, today)
    )
    models = {p.gpu_model for s in (*today, *new_sites) for p in s.partitions}
    power = {m: costs.accelerator(m).kw.value for m in models}
    last_year = problem.years[-1]
    demand = sum(problem.demand_in(d, last_year) for d in problem.demand)
    tasks = plan_tasks(
        today,
        new_sites,
        demand_a100_hours_per_year=demand,
        days=days,
        seed=seed,
        policy=policy,
        speed=twin_speeds(run, catalogue),
        gpu_power_kw=power,
        pue=costs.default_pue.value,
        decision_times=decided.times,
    )
    runs = run_federations(tasks, default_workers() if workers is None else workers, progress)
    check = plan_check_of(tasks, runs)
    investments = [
        Investment(o.candidate.id, o.capital_eur, o.accelerators, o.candidate.gpu_model)
        for o in plan.outcomes
        if o.taken
    ]
    notes = (
        f"Plan: {run.scenario.name}. Demand: the plan file's {last_year} demand, "
        f"{demand:,.0f} reference GPU-hours a year (grown {problem.growth_rate:.0%} a year from "
        f"{problem.years[0]}). The new capacity is in service for the whole checked year. "
        "Speeds as the optimiser counted them (the file's, else billing weights); power per "
        "accelerator (its node's share), the PUE and each new site's grid carbon from the "
        f"cost model. Time to access: decision times from {decided.source}."
    )
    title = "aifactories: the plan checked in the twin"
    report = write_plan_report(out, title, check, investments, notes)
    return PlanCheckResult(check, report, new_sites, decided)


def _with_carbon(site: Site, carbon_g_per_kwh: float) -> Site:
    return dataclasses.replace(site, carbon_g_per_kwh=carbon_g_per_kwh)
