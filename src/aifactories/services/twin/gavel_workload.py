"""A scenario's ``workload: gavel``: Gavel's continuous experiments (single and multiple GPUs)
drawn by its own generator, and the speed matrix from the same throughputs file."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from aifactories.domain.errors import InvalidInput
from aifactories.twin.scenario import Scenario
from aifactories.twin.simulation import TwinSetup
from aifactories.twin.traces.gavel import (
    GavelThroughputs,
    gavel_speed_matrix,
    generate_gavel_continuous,
    load_gavel_throughputs,
)
from aifactories.twin.traces.model import Trace

SCALE_FACTORS = (1, 2, 4, 8)  # every job size Gavel's generator draws


def _throughputs(scenario: Scenario) -> tuple[GavelThroughputs, str]:
    gavel = scenario.spec.workload.gavel
    assert gavel is not None
    path = Path(gavel.throughputs)
    throughputs = load_gavel_throughputs(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if gavel.sha256 is not None and digest != gavel.sha256:
        raise InvalidInput(
            f"{scenario.source}: workload.gavel.sha256",
            f"{path} has SHA-256 {digest[:12]}..., the scenario pins {gavel.sha256[:12]}...",
            limit="the throughputs file the scenario was written for, or remove sha256",
        )
    return throughputs, digest


def gavel_workload(scenario: Scenario) -> tuple[Trace, str]:
    """The jobs Gavel's simulator draws for the scenario's seed, and the file's SHA-256."""
    gavel = scenario.spec.workload.gavel
    assert gavel is not None
    throughputs, digest = _throughputs(scenario)
    trace = generate_gavel_continuous(
        gavel.jobs,
        gavel.jobs_per_hour,
        scenario.spec.seed,
        throughputs,
        scale_factor_one_only=gavel.gpus == "single",
    )
    return trace, digest


def with_gavel_speeds(scenario: Scenario, setup: TwinSetup) -> TwinSetup:
    """``setup`` with Gavel's measured speeds under the scenario's own ``speed_by_class`` (which
    win); unchanged for any other workload. A 0 in the matrix (out of memory) keeps such jobs
    off that GPU model (twin/setup.py, RunnableModels)."""
    if scenario.spec.workload.gavel is None:
        return setup
    throughputs, _ = _throughputs(scenario)
    matrix = gavel_speed_matrix(throughputs, SCALE_FACTORS)
    return replace(setup, speed_by_class={**matrix, **setup.speed_by_class})
