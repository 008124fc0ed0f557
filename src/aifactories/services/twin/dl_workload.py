"""A scenario's Pollux or Sia trace: the speed matrix per application (workload class) from
the same profiles that price its jobs, so on a heterogeneous cluster (Sia's T4, RTX 2080Ti and
A100 nodes) each application runs as fast as its profiles say on each GPU model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aifactories.domain.errors import InvalidInput
from aifactories.twin.scenario import Scenario
from aifactories.twin.simulation import TwinSetup
from aifactories.twin.traces._profiles import class_speeds
from aifactories.twin.traces.pollux import find_profiles


def profiles_of(scenario: Scenario) -> Path | None:
    """The profiles folder of the scenario's Pollux or Sia trace (named, or found beside the
    trace as the reader finds it); None for any other workload."""
    trace = scenario.spec.workload.trace
    if trace is None or trace.format not in ("pollux", "sia"):
        return None
    root = Path(trace.profiles) if trace.profiles else find_profiles(Path(trace.path))
    if root is None or not root.is_dir():
        raise InvalidInput(
            f"{scenario.source}: workload.trace.profiles",
            f"no profiles folder {'at ' + str(root) if root else 'beside ' + trace.path}",
            limit="the profiles/ folder of the Sia artifact (one folder per application)",
        )
    return root


def with_profile_speeds(scenario: Scenario, setup: TwinSetup) -> TwinSetup:
    """``setup`` with the profiles' speeds per application under the scenario's own
    ``speed_by_class`` (which win); unchanged for any other workload."""
    root = profiles_of(scenario)
    if root is None:
        return setup
    trace = scenario.spec.workload.trace
    assert trace is not None
    matrix = class_speeds(root.resolve(), trace.gpu_profile)
    return replace(setup, speed_by_class={**matrix, **setup.speed_by_class})
