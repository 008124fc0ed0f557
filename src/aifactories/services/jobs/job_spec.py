"""A job request, checked into a :class:`JobSpec`: the request's own fields, then the sbatch
options it carries (script directives, then the command line's), then the catalogue's rules.

Each rule that refuses a job says which option broke it and what would be accepted; options
the platform accepts but does not act on come back as warnings, so nothing a user wrote is
dropped silently.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from aifactories.domain.batch import ArraySpec, BatchOptions, Dependencies
from aifactories.domain.errors import InvalidInput
from aifactories.domain.fit import Misfit, fit
from aifactories.domain.jobs import ANY_GPU_MODEL, JobSpec
from aifactories.domain.sites import Partition
from aifactories.domain.units import TIME_FORMATS, parse_time_limit
from aifactories.services.core.context import ServiceContext
from aifactories.services.core.input_types import (
    Argument,
    Code,
    Name,
    Ref,
    Runtime,
    Script,
    TimeLimit,
    Workdir,
)
from aifactories.services.jobs.job_script import Directives, parse_directives

MAX_NAME = 200


class JobRequest(BaseModel):
    """A job submission. A ``script`` may carry #SBATCH directives; ``options`` are the same
    sbatch options given on the command line (they win over the script's); the explicit
    fields win over both. Every field is bounded here (docs/api-and-cli.md, "Input rules");
    the rules that need the catalogue or the settings follow in :func:`build_spec`."""

    model_config = ConfigDict(extra="forbid")

    project: Annotated[Ref | None, Field(description="project code or id")] = None
    default_project: Annotated[
        Ref | None,
        Field(description="the project when neither project nor --account says one"),
    ] = None
    options: Annotated[
        list[Argument],
        Field(max_length=500, description="sbatch options as words: ['--nodes=2', '-t', '10']"),
    ] = []
    gpus: Annotated[StrictInt | None, Field(ge=1, le=1_000_000)] = None
    nodes: Annotated[StrictInt | None, Field(ge=1, le=100_000)] = None
    gpu_model: Annotated[
        Code | None, Field(description="a GPU model of the catalogue or 'any'")
    ] = None
    min_gpu_memory_gb: Annotated[StrictInt | None, Field(ge=0, le=1_000_000)] = None
    time_limit: Annotated[
        TimeLimit | None,
        Field(description=f"seconds, or Slurm's {TIME_FORMATS}"),
    ] = None
    name: Name | None = None
    command: Annotated[list[Argument], Field(max_length=1000)] = []
    script: Script | None = None
    workdir: Workdir | None = None
    countries: Annotated[
        list[Code], Field(max_length=50, description="ISO 3166-1 alpha-2 codes: DE, FI")
    ] = []
    runtime: Annotated[
        Runtime | None,
        Field(description="emulated sites only: how long the job really runs"),
    ] = None


@dataclass(frozen=True)
class CheckedRequest:
    """A request that passed every check: the spec of one job (of each array task), and what
    the submission must still resolve against the database."""

    spec: JobSpec
    account: str | None  # --account from the options
    array: ArraySpec | None
    dependency: Dependencies | None
    warnings: tuple[str, ...]


def _seconds(value: str | int | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return parse_time_limit(value, field=field)


def candidates(ctx: ServiceContext, spec: JobSpec) -> list[Partition]:
    """Partitions that could ever run the job: every partition rule and residency."""
    out: list[Partition] = []
    for site in ctx.catalogue.operational_sites:
        if spec.countries and site.country not in spec.countries:
            continue
        out.extend(p for p in site.partitions if not isinstance(fit(spec, p), Misfit))
    return out


def _explain_no_candidate(ctx: ServiceContext, spec: JobSpec) -> InvalidInput:
    """The first rule, in the order a user reads a job, that leaves no partition."""
    partitions = [p for p in ctx.catalogue.operational_partitions if p.id in spec.partitions] or [
        p for p in ctx.catalogue.operational_partitions if not spec.partitions
    ]
    models = [p for p in partitions if spec.wants_model(p.gpu_model)]
    if not models:
        return InvalidInput(
            "gpu_model",
            f"no{' requested' if spec.partitions else ''} partition has GPU model "
            f"{spec.gpu_model!r}",
            limit="one of: any, " + ", ".join(sorted({p.gpu_model for p in partitions})),
        )
    memory = [p for p in models if p.gpu_memory_gb >= spec.min_gpu_memory_gb]
    if not memory:
        most = max(p.gpu_memory_gb for p in models)
        return InvalidInput(
            "min_gpu_memory_gb",
            f"no {spec.gpu_model} partition has {spec.min_gpu_memory_gb} GB per GPU",
            limit=f"at most {most} GB",
        )
    country_of = {site.id: site.country for site in ctx.catalogue.sites}
    countries = {country_of[p.site_id] for p in memory}
    resident = [p for p in memory if not spec.countries or country_of[p.site_id] in spec.countries]
    if not resident:
        return InvalidInput(
            "countries",
            f"no matching partition in {', '.join(sorted(spec.countries))}",
            limit="matching partitions are in " + ", ".join(sorted(countries)),
        )
    misfits = [m for p in resident if isinstance(m := fit(spec, p), Misfit)]
    shaped = [m for m in misfits if m.rule != "gpus"]
    if len(shaped) < len(misfits) and not shaped:
        if spec.nodes is not None:
            return InvalidInput(
                "nodes",
                f"{spec.gpus} GPUs on {spec.nodes} node(s) fits no partition",
                limit="GPUs must divide evenly over the nodes, at most "
                f"{max(p.gpus_per_node for p in resident)} per node",
            )
        return InvalidInput(
            "gpus",
            f"{spec.gpus} GPUs is more than any matching partition has",
            limit=f"at most {max(p.total_gpus for p in resident)} GPUs",
        )
    # Tasks, CPUs, memory per node or the partition's time limit keep the rest out.
    rules = [m.rule for m in shaped] or ["gpus"]
    rule = max(dict.fromkeys(rules), key=rules.count)
    examples = "; ".join(dict.fromkeys(m.why for m in misfits if m.rule == rule))
    field = {"cpus": "cpus_per_task", "mem": "mem", "time": "time_limit"}.get(rule, rule)
    return InvalidInput(field, f"no partition can run this job: {_clip(examples)}")


def _clip(text: str, length: int = 600) -> str:
    return text if len(text) <= length else text[: length - 3] + "..."


def _partitions(ctx: ServiceContext, names: list[str]) -> frozenset[str]:
    """``--partition`` names (catalogue names, ids or a site's own aliases) as partition ids."""
    partitions = ctx.catalogue.operational_partitions
    chosen: set[str] = set()
    for name in names:
        matching = [p.id for p in partitions if p.answers_to(name)]
        if not matching:
            known = sorted(
                {p.name for p in partitions} | {a for p in partitions for a in p.aliases}
            )
            raise InvalidInput(
                "partition",
                f"no site has a partition {name!r}",
                limit="known partitions: " + ", ".join(known),
            )
        chosen.update(matching)
    return frozenset(chosen)


def _gpu_model(ctx: ServiceContext, model: str) -> str:
    if model.lower() == ANY_GPU_MODEL:
        return ANY_GPU_MODEL
    known = {m.lower(): m for m in ctx.catalogue.gpu_models}
    if model.lower() not in known:
        raise InvalidInput(
            "gpu_model",
            f"unknown GPU model {model!r}",
            limit="one of: any, " + ", ".join(ctx.catalogue.gpu_models),
        )
    return known[model.lower()]


def _gpus_and_nodes(req: JobRequest, d: Directives) -> tuple[int, int | None]:
    gpus = req.gpus if req.gpus is not None else d.gpus
    nodes = req.nodes if req.nodes is not None else d.nodes
    if gpus is None and d.gpus_per_node is not None:
        gpus = d.gpus_per_node * (nodes or 1)
    if gpus is None:
        raise InvalidInput(
            "gpus",
            "say how many GPUs the job needs (--gpus N or --gpus-per-node N)",
            limit="at least 1",
        )
    if nodes is not None and not 1 <= nodes <= gpus:
        raise InvalidInput("nodes", f"{nodes} nodes for {gpus} GPUs", limit=f"1 to {gpus}")
    if d.gpus_per_node is not None and nodes is not None and gpus != d.gpus_per_node * nodes:
        raise InvalidInput(
            "gpus",
            f"{gpus} GPUs in all but {d.gpus_per_node} per node on {nodes} nodes",
            limit=f"{d.gpus_per_node * nodes} GPUs, or leave --gpus out",
        )
    return gpus, nodes


def _time_limit(ctx: ServiceContext, req: JobRequest, d: Directives) -> int:
    time_limit = _seconds(req.time_limit, "time_limit")
    if time_limit is None:
        time_limit = d.time_limit_s
    if time_limit is None:
        raise InvalidInput("time_limit", "say how long the job may run (--time HH:MM:SS)")
    limit = ctx.settings.max_time_limit_s
    if not 0 < time_limit <= limit:
        raise InvalidInput(
            "time_limit",
            f"{time_limit} s is not an allowed time limit",
            limit=f"between 1 s and {limit} s ({limit / 3600:g} hours)",
        )
    return time_limit


def _workdir(req: JobRequest, d: Directives) -> str | None:
    """--chdir, relative to the submission's folder as sbatch takes it."""
    if d.chdir is None:
        return req.workdir
    if posixpath.isabs(d.chdir) or req.workdir is None:
        return d.chdir
    return posixpath.normpath(posixpath.join(req.workdir, d.chdir))


def _countries(req: JobRequest, d: Directives) -> list[str]:
    countries = [c.upper() for c in (req.countries or d.countries)]
    for country in countries:
        if len(country) != 2 or not country.isalpha():
            raise InvalidInput(
                "countries",
                f"{country!r} is not a two-letter country code",
                limit="ISO 3166-1 alpha-2, for example DE, FI",
            )
    return countries


def build_spec(ctx: ServiceContext, req: JobRequest) -> CheckedRequest:
    """Validate a request into the spec of its job (or of each task of its array)."""
    d = parse_directives(req.script, req.options)
    gpus, nodes = _gpus_and_nodes(req, d)
    time_limit = _time_limit(ctx, req, d)
    model = _gpu_model(ctx, req.gpu_model or d.gpu_model or ANY_GPU_MODEL)
    memory = req.min_gpu_memory_gb
    if memory is None:
        memory = d.min_gpu_memory_gb or 0
    name = req.name or d.name or (req.command[0] if req.command else "job")
    if len(name) > MAX_NAME:
        raise InvalidInput("name", f"{len(name)} characters", limit=f"at most {MAX_NAME}")
    runtime = _seconds(req.runtime, "runtime")
    if runtime is None:
        runtime = d.runtime_s
    if runtime is not None and runtime < 0:
        raise InvalidInput("runtime", f"{runtime} s", limit="0 or more")
    command = tuple(req.command)
    if not command and req.script is not None:
        command = ("bash", "-c", req.script)
    if (
        d.array is not None
        and d.dependency is not None
        and any(c.kind == "singleton" for c in d.dependency.conditions)
    ):
        d.warnings.append("--dependency=singleton on an array holds each task for the last")
    spec = JobSpec(
        gpus=gpus,
        time_limit_s=time_limit,
        gpu_model=model,
        min_gpu_memory_gb=memory,
        nodes=nodes,
        name=name,
        command=command,
        script=req.script,
        workdir=_workdir(req, d),
        countries=frozenset(_countries(req, d)),
        runtime_s=runtime,
        partitions=_partitions(ctx, d.partitions) if d.partitions else frozenset(),
        ntasks=d.ntasks,
        ntasks_per_node=d.ntasks_per_node,
        cpus_per_task=d.cpus_per_task or 1,
        mem_per_node_mb=d.mem_mb,
        mem_per_gpu_mb=d.mem_per_gpu_mb,
        exclusive=d.exclusive,
        batch=BatchOptions(
            output=d.output,
            error=d.error,
            signal=d.signal,
            requeue=d.requeue,
            mail_types=frozenset(d.mail_types),
            mail_user=d.mail_user,
        ),
    )
    if not candidates(ctx, spec):
        raise _explain_no_candidate(ctx, spec)
    if d.signal is not None and d.signal.seconds_before >= time_limit:
        d.warnings.append(
            f"--signal={d.signal.as_option()}: {d.signal.seconds_before} s before a time "
            f"limit of {time_limit} s is at the start"
        )
    return CheckedRequest(spec, d.account, d.array, d.dependency, tuple(d.warnings))
