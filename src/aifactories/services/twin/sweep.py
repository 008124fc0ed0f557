"""Sweeps: policies x loads x seeds x scenarios, each point of the grid one task.

A point is one scenario at one load and one seed, with its policies: the policies of a point
run together, as ``aif simulate`` runs them, because their figures come from one steady-state
window common to the runs compared (twin/metrics/steady_state.py), so a point of a sweep says
exactly what ``aif simulate --load L --seed S`` says. A task is a pure function of its
:class:`SweepPoint` (:func:`run_point`), which carries the platform's catalogue when the
scenario uses it (so a worker needs no platform settings; files a scenario names, a trace or a
catalogue file, must be readable where the workers run), and returns the summary rows, plain
picklable values. So every engine of :mod:`aifactories.services.twin.sweep_engines` (serial,
local processes, Dask, Slurm) returns what the serial sweep returns, but for the wall-clock
cycle times (:func:`simulated`).

The rows come back in the spec's order (scenario, load, seed, policy), whatever the order in
which the points finish.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import AifError, InvalidInput
from aifactories.services.twin.scenario import catalogue_of
from aifactories.services.twin.simulate import prepare, simulate
from aifactories.services.twin.sweep_engines import Engine, Serial
from aifactories.twin.metrics.summary import Row
from aifactories.twin.scenario import Scenario, read_scenario, validate_spec

_AXES = "load=START:STOP:STEP, seed=START:STOP, policy=A,B or scenario=FILE,FILE"
_MAX_POINTS = 100_000


@dataclass(frozen=True)
class SweepSpec:
    """The product of its axes; an axis left None takes each scenario's own value."""

    scenarios: tuple[Scenario, ...]
    policies: tuple[str, ...] | None = None
    loads: tuple[float, ...] | None = None
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SweepPoint:
    """One task of a sweep: ``scenario`` already holds its policies, load and seed; the other
    fields label the result rows. ``platform``: the platform's catalogue, for the scenarios
    that name it (``sites: catalogue``, or ``auto`` without a machine in the trace)."""

    label: str
    scenario: Scenario
    load: float
    seed: int
    platform: Catalogue | None = None

    def describe(self) -> str:
        policies = ", ".join(self.scenario.spec.policies)
        return f"{self.label} @ load {self.load:g}, seed {self.seed}: {policies}"

    def configured(self) -> Catalogue:
        if self.platform is None:
            raise InvalidInput(
                "sites", "no platform catalogue was given to this sweep", limit="a sites file"
            )
        return self.platform


@dataclass(frozen=True)
class RunFailure:
    """An :class:`AifError` raised in a worker, as plain values: the error classes take
    their own arguments and do not survive pickling, so the worker sends this instead."""

    field: str | None
    message: str
    limit: str | None

    def error(self) -> AifError:
        if self.field is None:
            return AifError(self.message)
        return InvalidInput(self.field, self.message, self.limit)


# -- the sweep's text on the command line ------------------------------------------------------


def _numbers(axis: str, text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInput("sweep", f"{axis}={text!r} has a non-number", limit=_AXES) from None


def parse_sweep(text: str) -> list[float]:
    """``load=START:STOP:STEP`` (STOP included) or ``load=A,B,C`` as a list of loads."""
    name, _, spec = text.partition("=")
    parts = spec.split(":")
    if name.strip() == "load" and ":" not in spec and spec:
        loads = _numbers("load", spec)
        if not all(0 < load <= 100 for load in loads):
            raise InvalidInput("sweep", f"{text!r}", limit="every load in (0, 100]")
        return loads
    if name.strip() != "load" or len(parts) != 3:
        raise InvalidInput(
            "sweep", f"{text!r}", limit="load=START:STOP:STEP, e.g. load=0.5:1.3:0.1"
        )
    start, stop, step = _numbers("load", ",".join(parts))
    if not (0 < start <= stop and step > 0) or (stop - start) / step > 200:
        raise InvalidInput("sweep", f"{text!r}", limit="0 < START <= STOP, STEP > 0, <= 200 steps")
    count = round((stop - start) / step) + 1
    return [round(start + i * step, 10) for i in range(count)]


def _seeds(text: str) -> list[int]:
    spec = text.partition("=")[2]
    match = re.fullmatch(r"(\d+):(\d+)(?::(\d+))?", spec)
    if match:
        start, stop, step = int(match[1]), int(match[2]), int(match[3] or 1)
        if start <= stop and step > 0:
            return list(range(start, stop + 1, step))
    elif re.fullmatch(r"\d+(,\d+)*", spec):
        return [int(part) for part in spec.split(",")]
    raise InvalidInput("sweep", f"{text!r}", limit="seed=START:STOP (both included) or seed=0,1,2")


def parse_axes(
    texts: Sequence[str], base: Scenario
) -> tuple[tuple[Scenario, ...] | None, SweepSpec]:
    """The ``--sweep`` options as a spec over ``base`` (or the ``scenario=`` files, which are
    returned first so that the caller can apply its command-line options to each)."""
    axes: dict[str, Any] = {}
    for text in texts:
        axis = text.partition("=")[0].strip()
        if axis in axes:
            raise InvalidInput("sweep", f"{axis} is swept twice", limit="one --sweep per axis")
        if axis == "load":
            axes[axis] = tuple(parse_sweep(text))
        elif axis == "seed":
            axes[axis] = tuple(_seeds(text))
        elif axis in ("policy", "scenario"):
            names = [p.strip() for p in text.partition("=")[2].split(",") if p.strip()]
            if not names or len(set(names)) != len(names):
                raise InvalidInput("sweep", f"{text!r}", limit=f"{axis}=A,B with no repeats")
            axes[axis] = tuple(names)
        else:
            raise InvalidInput("sweep", f"{text!r} sweeps no known axis", limit=_AXES)
    files = axes.get("scenario")
    scenarios = tuple(read_scenario(Path(f)) for f in files) if files else None
    spec = SweepSpec(
        scenarios=scenarios or (base,),
        policies=axes.get("policy"),
        loads=axes.get("load"),
        seeds=axes.get("seed"),
    )
    return scenarios, spec


# -- the runs --------------------------------------------------------------------------------


def _label(scenario: Scenario) -> str:
    if scenario.spec.name:
        return scenario.spec.name
    source = Path(scenario.source)
    if source.suffix in (".yaml", ".yml"):
        return source.stem
    trace = scenario.spec.workload.trace  # options only: name the workload
    return Path(trace.path).stem if trace is not None else _workload(scenario.spec.model_dump())[0]


def _workload(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The workload's source (generator, trace, ...) and its settings, in a dumped spec."""
    return next((k, v) for k, v in data["workload"].items() if v is not None)


def at(scenario: Scenario, policies: Sequence[str], load: float | None, seed: int) -> Scenario:
    """``scenario`` with ``policies``, its seed and (unless None) its offered load: the
    generator's, or a trace's arrivals that many times as fast. Validated, so that a bad
    value fails before anything runs."""
    data = scenario.spec.model_dump()
    data["policies"] = list(policies)
    data["seed"] = seed
    if load is not None:
        source, settings = _workload(data)
        if "load" not in settings:
            raise InvalidInput(
                "sweep",
                f"a {source} workload has no offered load to sweep",
                limit="sweep seed, policy or scenario; or use the generator or a trace",
            )
        settings["load"] = load
    return Scenario(validate_spec(data, scenario.source), scenario.source)


def points_of(spec: SweepSpec, configured: Callable[[], Catalogue]) -> list[SweepPoint]:
    """Every point of ``spec``; ``configured`` (the platform's catalogue) is called once, and
    only if a scenario names it."""
    platform = None
    if any(s.spec.sites in ("catalogue", "auto") for s in spec.scenarios):
        platform = configured()
    labels: dict[str, int] = {}
    points = []
    for scenario in spec.scenarios:
        label = _label(scenario)
        labels[label] = labels.get(label, 0) + 1
        if labels[label] > 1:
            label = f"{label} ({labels[label]})"  # two files of one name stay apart
        own = _workload(scenario.spec.model_dump())[1].get("load")
        generator = scenario.spec.workload.generator
        if own is None and generator is not None:  # the mixture's default, on these sites
            sites = catalogue_of(scenario, lambda: platform or configured())
            largest = max((p.total_gpus for p in sites.operational_partitions), default=0)
            own = generator.concrete(largest).load
        own = math.nan if own is None else own  # a gavel workload has no load
        for load in spec.loads or (None,):
            for seed in spec.seeds or (scenario.spec.seed,):
                policies = spec.policies or scenario.spec.policies
                one = at(scenario, policies, load, seed)
                points.append(SweepPoint(label, one, own if load is None else load, seed, platform))
                if len(points) > _MAX_POINTS:
                    raise InvalidInput(
                        "sweep", "more than 100,000 points", limit="fewer values per axis"
                    )
    return points


def run_point(point: SweepPoint) -> list[Row] | RunFailure:
    """The summary rows of one point, a row per policy (scenario, load and seed first).
    Module level and pure, so that an engine can ship it to another process or machine."""
    try:
        _runs, rows = simulate(prepare(point.scenario, point.configured))
    except AifError as exc:
        if isinstance(exc, InvalidInput):
            return RunFailure(exc.field, exc.detail, exc.limit)
        return RunFailure(None, exc.message, None)
    labels: Row = {"scenario": point.label, "load": point.load, "seed": point.seed}
    return [{**labels, **row} for row in rows]


def sweep(
    spec: SweepSpec,
    configured: Callable[[], Catalogue],
    engine: Engine | None = None,
    progress: Callable[[SweepPoint, int, int], None] | None = None,
) -> list[Row]:
    """Every point of ``spec`` on ``engine`` (serial by default); ``progress(point, done,
    total)`` as each finishes. The rows come in the spec's order; the first failed point
    stops the rest and raises its error."""
    points = points_of(spec, configured)
    results: list[list[Row] | None] = [None] * len(points)
    tasks = (engine or Serial()).run(run_point, points)
    for done, (index, outcome) in enumerate(tasks, start=1):
        if isinstance(outcome, RunFailure):
            raise outcome.error()
        results[index] = outcome
        if progress is not None:
            progress(points[index], done, len(points))
    return [row for rows in results if rows is not None for row in rows]


def simulated(row: Row) -> Row:
    """``row`` without what the machine measured rather than the twin simulated (the time a
    scheduling cycle took): what must be equal, run for run, on every engine."""
    return {k: v for k, v in row.items() if not (k.startswith("cycle_") and k.endswith("_ms"))}


def saturation_load(points: Sequence[tuple[float, float]]) -> float | None:
    """The knee of a policy's mean-JCT curve: the first load whose mean JCT is more than twice
    the mean JCT at the lowest load (where queueing starts to dominate run time). None if the
    curve never doubles in the swept range."""
    finite = [(load, jct) for load, jct in sorted(points) if math.isfinite(jct)]
    if not finite:
        return None
    base = finite[0][1]
    return next((load for load, jct in finite if jct > 2 * base), None)
