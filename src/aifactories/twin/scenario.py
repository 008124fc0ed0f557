"""A scenario: one YAML file that makes a twin run reproducible and shareable.

It names the federation (``sites``), the policies, the seed, the workload (a trace file or
the generator), the mapping of trace groups onto projects, the speed matrix, the restart
cost, the time-limit factor, outages and capacity changes, and where the results go. Every
key is optional and takes the default of :class:`ScenarioSpec`; an unknown key is an error,
so a typo never falls back to a default unnoticed.

Paths in the file (a catalogue file, a trace) are relative to the scenario file, so a folder
with a scenario and its inputs can be moved or shared; ``out`` is relative to the working
directory, like ``--out``. Times are hours in the file (people write them), seconds inside.

The run writes the resolved spec (every default filled in, the sites inline, the trace pinned
by its SHA-256; see :mod:`aifactories.services.twin.scenario`) as ``scenario.yaml``, which
reproduces that run byte for byte. Errors are
:class:`~aifactories.domain.errors.InvalidInput` naming the file and the key, on one line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from aifactories.domain.errors import InvalidInput
from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.domain.projects import PriorityWeights
from aifactories.scheduling import POLICY_NAMES
from aifactories.scheduling.policies.tiresias_las import TiresiasSettings
from aifactories.scheduling.preemptive_policies import PREEMPTIVE_POLICY_NAMES
from aifactories.twin.federation import DEFAULT_PUE
from aifactories.twin.scenario_errors import invalid
from aifactories.twin.scenario_generator import GeneratorSpec
from aifactories.twin.simulation import TwinSetup
from aifactories.twin.traces import FORMATS, TraceFormat

# Every policy the twin runs: the broker's, and the preemptive ones run in rounds.
TWIN_POLICY_NAMES = POLICY_NAMES + PREEMPTIVE_POLICY_NAMES

DEFAULT_POLICIES = ("first_fit", "earliest_start", "fair_share")


def _setup_default(name: str) -> float:
    """The twin's own default, read from TwinSetup so that the two cannot drift apart."""
    value = next(f.default for f in dataclasses.fields(TwinSetup) if f.name == name)
    assert isinstance(value, int | float)
    return float(value)


Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Hours = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _known_policy(name: str) -> str:
    if name not in TWIN_POLICY_NAMES:
        raise PydanticCustomError(
            "unknown_policy",
            "unknown policy '{name}'",
            {"name": name, "expected": "one of " + ", ".join(TWIN_POLICY_NAMES)},
        )
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceSpec(_Strict):
    path: Annotated[str, Field(min_length=1)]
    format: TraceFormat
    limit: Annotated[int, Field(ge=1)] | None = None
    # Arrivals ``load`` times as fast (submit times divided by it): the log's jobs at a higher
    # or lower offered load (twin/traces/transform.py). 1.0 replays it as recorded.
    load: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 1.0
    # Pinned by the resolved scenario: a rerun on another file refuses to run.
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    # Pollux and Sia: the application profiles that price the jobs and give the speed matrix
    # per application (null: a profiles folder beside the trace), and the GPU profile whose
    # speed sets the runtimes ("": Pollux's T4; aws, azure, dgx, dgx-ext, quad, rtx: Sia's).
    profiles: Annotated[str, Field(min_length=1)] | None = None
    gpu_profile: Literal["", "aws", "azure", "dgx", "dgx-ext", "quad", "rtx"] = ""


class GavelWorkloadSpec(_Strict):
    """Gavel's continuous workload, drawn by its own generator (twin/traces/gavel.py): 1-GPU
    jobs (``gpus: single``, its continuous-single experiment) or 1, 2, 4 and 8 GPUs
    (``multiple``, continuous-multiple), Poisson arrivals at ``jobs_per_hour``; the speed
    matrix comes from the same ``throughputs`` file (Gavel's simulation_throughputs.json)."""

    throughputs: Annotated[str, Field(min_length=1)]
    jobs: Annotated[int, Field(ge=1, le=1_000_000)] = 6000
    jobs_per_hour: Positive
    gpus: Literal["single", "multiple"] = "single"
    # Pinned by the resolved scenario, as a trace is.
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class WorkloadSpec(_Strict):
    generator: GeneratorSpec | None = None
    trace: TraceSpec | None = None
    gavel: GavelWorkloadSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadSpec:
        if sum(s is not None for s in (self.generator, self.trace, self.gavel)) != 1:
            raise PydanticCustomError(
                "workload",
                "give exactly one of 'generator' and 'trace' (or 'gavel')",
                {"expected": "generator: {hours, load} or trace: {path, format, limit}"},
            )
        return self


class GroupSpec(_Strict):
    """Explicit values for one trace group; what is left out follows the default rule."""

    kind: OrganisationKind | None = None
    domain: Domain | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    gpu_hours: Positive | None = None


class WeightsSpec(_Strict):
    critical_domain: Positive = PriorityWeights().critical_domain
    industrial: Positive = PriorityWeights().industrial


class MappingSpec(_Strict):
    # "hashed": kind and domain from the trace when it has them (the generator does), else a
    # seeded hash of the group; the home country a seeded hash over the sites' countries.
    rule: Literal["hashed"] = "hashed"
    default_gpu_hours: Positive | None = None  # None: a budget no trace exhausts
    weights: WeightsSpec = WeightsSpec()
    groups: dict[str, GroupSpec] = {}


class OutageSpec(_Strict):
    site: Annotated[str, Field(min_length=1)]
    start_h: Hours
    end_h: Hours

    @model_validator(mode="after")
    def _ends_after_start(self) -> OutageSpec:
        if not self.end_h > self.start_h:
            raise PydanticCustomError(
                "outage",
                "end_h ({end}) is not after start_h ({start})",
                {"end": self.end_h, "start": self.start_h, "expected": "end_h > start_h"},
            )
        return self


class CapacityChangeSpec(_Strict):
    site: Annotated[str, Field(min_length=1)]
    partition: Annotated[str, Field(min_length=1)]
    at_h: Hours
    nodes: Annotated[int, Field(ge=0)]


class EventsSpec(_Strict):
    outages: list[OutageSpec] = []
    capacity_changes: list[CapacityChangeSpec] = []


_TIRESIAS = TiresiasSettings()


class TiresiasSpec(_Strict):
    """Tiresias' settings (``tiresias_las``; scheduling/policies/tiresias_las.py): queue
    thresholds in GPU-hours (``service: gpu_time``, 2D-LAS) or run hours (``time``), the
    round (scheduling interval) in seconds, and STARVELIMIT (0: no promotion)."""

    queue_thresholds_h: Annotated[list[Positive], Field(max_length=16)] = list(
        _TIRESIAS.queue_thresholds_h
    )
    round_s: Annotated[float, Field(ge=1, le=86400, allow_inf_nan=False)] = _TIRESIAS.round_s
    starve_limit: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = 0.0
    service: Literal["gpu_time", "time"] = _TIRESIAS.service

    @field_validator("queue_thresholds_h")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if value != sorted(set(value)):
            raise PydanticCustomError(
                "tiresias",
                "queue thresholds are not strictly increasing",
                {"expected": "e.g. [1, 10]: three queues, split at 1 and 10 GPU-hours"},
            )
        return value

    def settings(self) -> TiresiasSettings:
        return TiresiasSettings(
            tuple(self.queue_thresholds_h), self.round_s, self.starve_limit, self.service
        )


SITE_NAMES = ("auto", "catalogue", "trace")
"""The values of ``sites`` that name a federation rather than a catalogue file."""


class ScenarioSpec(_Strict):
    version: Literal[1] = 1
    name: str | None = None  # the report's title; default: the workload's name
    # "catalogue" (the configured catalogue), "trace" (the trace's own machine, twin/
    # trace_sites.py), "auto" (the trace's machine if it describes one, else the catalogue),
    # a catalogue file, or a catalogue inline.
    sites: str | dict[str, Any] = "auto"
    policies: Annotated[
        list[Annotated[str, AfterValidator(_known_policy)]], Field(min_length=1)
    ] = list(DEFAULT_POLICIES)
    seed: Annotated[int, Field(ge=0)] = 0
    workload: WorkloadSpec = WorkloadSpec(generator=GeneratorSpec())
    mapping: MappingSpec = MappingSpec()
    speed: dict[str, Positive] = {}  # merged over DEFAULT_SPEED
    speed_by_class: dict[str, dict[str, Positive]] = {}
    gpu_power_kw: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = {}
    pue: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False)] = DEFAULT_PUE
    restart_cost_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = _setup_default(
        "restart_cost_s"
    )
    time_limit_factor: Positive = _setup_default("time_limit_factor")
    half_life_h: Positive = _setup_default("half_life_s") / 3600  # fair share's usage decay
    events: EventsSpec = EventsSpec()
    tiresias: TiresiasSpec = TiresiasSpec()
    out: Annotated[str, Field(min_length=1)] = "report"

    @field_validator("sites", mode="before")
    @classmethod
    def _sites_shape(cls, value: object) -> object:
        if not (isinstance(value, dict) or (isinstance(value, str) and value)):
            raise PydanticCustomError(
                "sites",
                "sites is neither a name nor a mapping",
                {
                    "expected": "'auto', 'catalogue', 'trace', a catalogue file path, "
                    "or an inline {sites: [...]}"
                },
            )
        return value

    @field_validator("policies")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("policies", "a policy is listed twice", {})
        return value


@dataclass(frozen=True)
class Scenario:
    """A validated spec with absolute paths, and where it came from (for error messages)."""

    spec: ScenarioSpec
    source: str


def validate_spec(
    data: object, source: str, options: Mapping[str, str] | None = None
) -> ScenarioSpec:
    try:
        return ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = invalid(ScenarioSpec, errors[0], source, options or {})
        if len(errors) > 1:
            # One line still: the first problem in full, the count of the rest.
            first.message += f" ({len(errors) - 1} more problem(s) in the file after this one)"
        raise first from None


# -- reading and overriding -----------------------------------------------------------------


def _absolute(spec: ScenarioSpec, base: Path) -> ScenarioSpec:
    """Paths relative to ``base`` made absolute, so the spec means the same from anywhere."""
    update: dict[str, Any] = {}
    if isinstance(spec.sites, str) and spec.sites not in SITE_NAMES:
        update["sites"] = os.path.abspath(base / spec.sites)
    trace = spec.workload.trace
    if trace is not None:
        path = os.path.abspath(base / trace.path)
        profiles = trace.profiles and os.path.abspath(base / trace.profiles)
        trace = trace.model_copy(update={"path": path, "profiles": profiles})
        update["workload"] = WorkloadSpec(trace=trace)
    gavel = spec.workload.gavel
    if gavel is not None:
        path = os.path.abspath(base / gavel.throughputs)
        update["workload"] = WorkloadSpec(gavel=gavel.model_copy(update={"throughputs": path}))
    return spec.model_copy(update=update)


def read_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file (relative paths in it taken from its folder)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            str(path),
            f"cannot read the scenario file ({exc.strerror})",
            limit="the path of a scenario YAML file, e.g. examples/scenarios/two-site-outage.yaml",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(str(path), f"not valid YAML{line}: {problem}") from None
    if data is None:
        data = {}  # an empty file: every default
    if not isinstance(data, dict):
        raise InvalidInput(
            str(path),
            "a scenario is a mapping of keys",
            limit="sites, policies, seed, workload, mapping, speed, events, out, ...",
        )
    # The folder the file really is in: through a link such as report/latest, '..' in its
    # paths counts from the run's folder, as it did when the file was written.
    folder = path.resolve().parent
    return Scenario(_absolute(validate_spec(data, str(path)), folder), str(path))


def default_scenario() -> Scenario:
    return Scenario(ScenarioSpec(), "command line")


_OPTIONS = {
    "sites": "--sites",
    "policies": "--policy",
    "seed": "--seed",
    "workload.generator.jobs": "--jobs",
    "workload.generator.hours": "--hours",
    "workload.generator.load": "--load",
    "workload.trace.path": "--trace",
    "workload.trace.format": "--format",
    "workload.trace.limit": "--limit",
    "out": "--out",
}


@dataclass(frozen=True)
class Overrides:
    """Command-line options given explicitly (None: not given, the scenario's value holds)."""

    sites: str | None = None
    policies: tuple[str, ...] | None = None
    seed: int | None = None
    jobs: int | None = None
    hours: float | None = None
    load: float | None = None
    trace: Path | None = None
    trace_format: str | None = None
    limit: int | None = None
    out: Path | None = None


def with_overrides(scenario: Scenario, given: Overrides) -> Scenario:
    """The scenario with the options given on the command line in place of its values."""
    data = scenario.spec.model_dump()
    if given.sites is not None:
        named = given.sites in SITE_NAMES
        data["sites"] = given.sites if named else os.path.abspath(given.sites)
    if given.policies is not None:
        data["policies"] = list(given.policies)
    if given.seed is not None:
        data["seed"] = given.seed
    if given.out is not None:
        data["out"] = str(given.out)
    generator, trace = data["workload"]["generator"], data["workload"]["trace"]
    sizing = "--jobs" if given.jobs is not None else "--hours" if given.hours is not None else None
    if sizing is not None and (given.trace is not None or trace is not None):
        raise InvalidInput(
            sizing,
            "sizes the generator, but the workload is a trace",
            limit="drop it, or give the generator (no --trace) instead; --limit reads fewer jobs",
        )
    if given.jobs is not None and given.hours is not None:
        raise InvalidInput(
            "--jobs", "and --hours both size the generator", limit="give one of the two"
        )
    reading = "--format" if given.trace_format is not None else None
    reading = "--limit" if given.limit is not None and reading is None else reading
    if given.trace is not None:
        trace = {
            "path": os.path.abspath(given.trace),
            "format": given.trace_format or (trace or {}).get("format"),
            "limit": given.limit,
            "load": given.load if given.load is not None else 1.0,
        }
        if trace["format"] is None:
            raise InvalidInput(
                "--format", "is required with --trace", "one of " + ", ".join(FORMATS)
            )
        data["workload"] = {"trace": trace}
    elif reading is not None or (given.load is not None and trace is not None):
        if trace is None:
            raise InvalidInput(
                reading or "--format",
                "applies to a trace, but the workload is the generator",
                limit="add --trace PATH",
            )
        if given.trace_format is not None:
            trace["format"] = given.trace_format
        if given.limit is not None:
            trace["limit"] = given.limit
        if given.load is not None:
            trace["load"] = given.load
    elif data["workload"].get("gavel") is not None:
        sizes = {"--jobs": given.jobs, "--hours": given.hours, "--load": given.load}
        refused = next((option for option, v in sizes.items() if v is not None), None)
        if refused is not None:
            raise InvalidInput(
                refused,
                "does not apply to a gavel workload",
                limit="set jobs and jobs_per_hour under workload.gavel in the scenario",
            )
    elif generator is not None:
        # One size replaces the other: --jobs over a scenario's hours, or --hours over its jobs.
        if given.jobs is not None:
            generator.update(jobs=given.jobs, hours=None)
        if given.hours is not None:
            generator.update(hours=given.hours, jobs=None)
        if given.load is not None:
            generator["load"] = given.load
    return Scenario(validate_spec(data, scenario.source, _OPTIONS), scenario.source)


def dump_scenario(spec: ScenarioSpec) -> str:
    body = yaml.safe_dump(
        spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100
    )
    return (
        "# The resolved scenario of an `aif simulate` run: every default filled in.\n"
        "# `aif simulate --scenario THIS_FILE` reproduces the run, in a new folder beside it.\n"
        + body
    )
