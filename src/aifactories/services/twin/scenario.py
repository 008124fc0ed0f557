"""A scenario resolved against its sites and its workload: the checks the schema cannot make
(sites, partitions, groups and GPU models that must exist), the projects, the twin setups,
and the resolved spec a run writes next to its results (every default filled in).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from aifactories.catalogue.loader import Catalogue, load_catalogue, parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.domain.projects import PriorityWeights
from aifactories.twin.events import CapacityChange, SiteOutage, TwinEvent
from aifactories.twin.federation import (
    DEFAULT_GPU_POWER_KW,
    DEFAULT_SPEED,
    UNLIMITED_GPU_SECONDS,
    TwinProject,
    projects_for,
)
from aifactories.twin.scenario import GroupSpec, Scenario, ScenarioSpec, validate_spec
from aifactories.twin.simulation import TwinSetup
from aifactories.twin.trace_sites import trace_machine
from aifactories.twin.traces.model import Trace

HOUR = 3600.0
# The kinds projects_for counts as industrial for the priority weight (kept in step with it).
_INDUSTRIAL = {OrganisationKind.INDUSTRY, OrganisationKind.SME, OrganisationKind.STARTUP}


def catalogue_of(scenario: Scenario, configured: Callable[[], Catalogue]) -> Catalogue:
    """The federation the scenario names; ``configured`` gives the platform's catalogue."""
    return sites_of(scenario, configured)[0]


def sites_of(scenario: Scenario, configured: Callable[[], Catalogue]) -> tuple[Catalogue, str]:
    """The federation the scenario names, and a line saying which it is (for the console):
    ``trace`` the trace's own machine (twin/trace_sites.py), ``auto`` that machine when the
    workload is a trace that describes one and the platform's catalogue otherwise."""
    sites, trace = scenario.spec.sites, scenario.spec.workload.trace
    if isinstance(sites, dict):
        return parse_catalogue(sites, f"{scenario.source}: sites"), "the scenario's own sites"
    if sites in ("trace", "auto"):
        machine = trace_machine(trace.path, trace.format) if trace is not None else None
        if machine is not None:
            return machine.catalogue, machine.description
        if sites == "trace":
            raise InvalidInput(
                "sites",
                "is 'trace', but "
                + (f"a {trace.format} trace does not describe its machine" if trace else "no trace")
                + " (SWF with MaxProcs or MaxNodes in its header, or an Alibaba pod list with "
                "its openb_node_list_gpu_node.csv beside it, Pollux and Sia workloads, do)",
                limit="'catalogue', a catalogue file, or inline sites",
            )
        return configured(), "the platform's catalogue (the workload describes no machine)"
    if sites == "catalogue":
        return configured(), "the platform's catalogue"
    if not Path(sites).is_file():
        raise InvalidInput(
            "sites",
            f"no catalogue file {sites}",
            limit="'auto', 'catalogue', 'trace', or the path of a catalogue YAML file "
            "(docs/catalogue.md)",
        )
    return load_catalogue(Path(sites)), f"the catalogue file {sites}"


def check(scenario: Scenario, catalogue: Catalogue, trace: Trace) -> None:
    """What the schema cannot know: names that must exist in the sites or the workload."""
    spec, source = scenario.spec, scenario.source
    sites = {str(s.id): s for s in catalogue.operational_sites}
    known = "one of " + (", ".join(sorted(sites)) or "none") + " (operational sites)"
    for index, outage in enumerate(spec.events.outages):
        if outage.site not in sites:
            raise InvalidInput(
                f"{source}: events.outages[{index}].site",
                f"no operational site {outage.site!r} in the scenario's sites",
                limit=known,
            )
    for index, change in enumerate(spec.events.capacity_changes):
        where = f"{source}: events.capacity_changes[{index}]"
        site = sites.get(change.site)
        if site is None:
            raise InvalidInput(f"{where}.site", f"no operational site {change.site!r}", known)
        names = [p.name for p in site.partitions]
        if change.partition not in names:
            raise InvalidInput(
                f"{where}.partition",
                f"site {change.site} has no partition {change.partition!r}",
                limit="one of " + ", ".join(names),
            )
    groups = sorted({job.group or "default" for job in trace.jobs})
    for group in spec.mapping.groups:
        if group not in groups:
            listed = ", ".join(groups[:20]) + (", ..." if len(groups) > 20 else "")
            raise InvalidInput(
                f"{source}: mapping.groups.{group}",
                "no job of the workload is in this group",
                limit=f"one of {listed}",
            )
    models = sorted(set(catalogue.gpu_models) | set(DEFAULT_SPEED) | set(DEFAULT_GPU_POWER_KW))
    rows = [("speed", spec.speed), ("gpu_power_kw", spec.gpu_power_kw)]
    rows += [(f"speed_by_class.{c}", row) for c, row in spec.speed_by_class.items()]
    for where, row in rows:
        for model in row:
            if model not in models:
                raise InvalidInput(
                    f"{source}: {where}.{model}",
                    "no site has this GPU model and it has no default",
                    limit="one of " + ", ".join(models),
                )
    classes = sorted({job.workload_class for job in trace.jobs if job.workload_class})
    for name in spec.speed_by_class:
        if name not in classes:
            raise InvalidInput(
                f"{source}: speed_by_class.{name}",
                "no job of the workload has this workload class",
                limit="one of " + (", ".join(classes) or "none (this workload has no classes)"),
            )


def projects_of(spec: ScenarioSpec, trace: Trace, catalogue: Catalogue) -> dict[str, TwinProject]:
    """The default rule (:func:`projects_for`), then the scenario's explicit groups."""
    weights = PriorityWeights(spec.mapping.weights.critical_domain, spec.mapping.weights.industrial)
    countries = sorted({s.country for s in catalogue.operational_sites})
    default_hours = spec.mapping.default_gpu_hours
    projects = projects_for(trace, countries, spec.seed, weights)
    for group, project in projects.items():
        given = spec.mapping.groups.get(group, GroupSpec())
        kind = given.kind or OrganisationKind(project.organisation_kind)
        domain = given.domain or Domain(project.domain)
        hours = given.gpu_hours or default_hours
        projects[group] = replace(
            project,
            organisation_kind=kind.value,
            domain=domain.value,
            country=given.country or project.country,
            priority_weight=weights.for_project(domain, kind in _INDUSTRIAL),
            granted_gpu_seconds=round(hours * HOUR) if hours else UNLIMITED_GPU_SECONDS,
        )
    return projects


def events_of(spec: ScenarioSpec) -> tuple[TwinEvent, ...]:
    """Outages, then capacity changes, each in file order (the order of ties at one time)."""
    outages = [SiteOutage(o.site, o.start_h * HOUR, o.end_h * HOUR) for o in spec.events.outages]
    changes = [
        CapacityChange(c.site, c.partition, c.at_h * HOUR, c.nodes)
        for c in spec.events.capacity_changes
    ]
    return (*outages, *changes)


def setup_of(spec: ScenarioSpec, catalogue: Catalogue, policy: str) -> TwinSetup:
    return TwinSetup(
        sites=catalogue.sites,
        policy=policy,
        half_life_s=spec.half_life_h * HOUR,
        time_limit_factor=spec.time_limit_factor,
        speed={**DEFAULT_SPEED, **spec.speed},
        gpu_power_kw={**DEFAULT_GPU_POWER_KW, **spec.gpu_power_kw},
        pue=spec.pue,
        speed_by_class={c: dict(row) for c, row in spec.speed_by_class.items()},
        restart_cost_s=spec.restart_cost_s,
        events=events_of(spec),
        seed=spec.seed,
        tiresias=spec.tiresias.settings(),
    )


def catalogue_data(catalogue: Catalogue) -> dict[str, Any]:
    """The catalogue in its file format (what :func:`parse_catalogue` reads back)."""
    return {
        "version": 1,
        "sites": [
            {
                "id": site.id,
                "name": site.name,
                "country": site.country,
                "supercomputer": site.supercomputer,
                "status": site.status.value,
                "carbon_g_per_kwh": site.carbon_g_per_kwh,
                "partitions": [
                    {
                        "name": p.name,
                        "gpu_model": p.gpu_model,
                        "gpu_memory_gb": p.gpu_memory_gb,
                        "gpus_per_node": p.gpus_per_node,
                        "nodes": p.nodes,
                        "billing_weight": p.billing_weight,
                    }
                    for p in site.partitions
                ],
                "sources": list(site.sources),
            }
            for site in catalogue.sites
        ],
    }


def resolved(
    scenario: Scenario, catalogue: Catalogue, trace_sha256: str | None, folder: Path
) -> ScenarioSpec:
    """The spec with every default filled in, the sites inline (a changed catalogue cannot
    change the rerun) and the trace pinned by its hash, its path relative to ``folder``
    (where the resolved file is written)."""
    spec = scenario.spec
    data = spec.model_dump(mode="json")
    data["sites"] = catalogue_data(catalogue)
    data["speed"] = {**DEFAULT_SPEED, **spec.speed}
    data["gpu_power_kw"] = {**DEFAULT_GPU_POWER_KW, **spec.gpu_power_kw}
    generator = spec.workload.generator
    if generator is not None and catalogue.operational_partitions:
        largest = max(p.total_gpus for p in catalogue.operational_partitions)
        data["workload"]["generator"] = generator.concrete(largest).model_dump(mode="json")
    trace = data["workload"]["trace"]
    if trace is not None:
        trace["path"] = os.path.relpath(trace["path"], os.path.abspath(folder))
        if trace["profiles"] is not None:
            trace["profiles"] = os.path.relpath(trace["profiles"], os.path.abspath(folder))
        trace["sha256"] = trace_sha256
    return validate_spec(data, "resolved scenario")
