"""A job that accepts a set of GPU models (a trace's ``V100M16|V100M32``): the spec, the
partition fit, and the cycle's placement and wait reasons honour every alternative."""

from __future__ import annotations

import dataclasses

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.domain.fit import Misfit, fit, shape_fitting
from aifactories.domain.jobs import JobSpec, PendingJob
from aifactories.scheduling import get_policy, run_cycle
from tests.scheduling.builders import T0, job, partition, snapshot, state

V100M16 = partition(name="v16", model="V100M16", memory_gb=16, gpus_per_node=8, nodes=1)
T4 = partition(name="t4", model="T4", memory_gb=16, gpus_per_node=2, nodes=4)
V100M32 = partition(name="v32", model="V100M32", memory_gb=32, gpus_per_node=8, nodes=1)


def alternatives(pending_id: int, *models: str, gpus: int = 1, memory_gb: int = 0) -> PendingJob:
    pending = job(pending_id, gpus=gpus, memory_gb=memory_gb)
    spec = dataclasses.replace(pending.spec, gpu_models=frozenset(models))
    return dataclasses.replace(pending, spec=spec)


def test_alternatives_accept_each_listed_model_and_no_other() -> None:
    spec = JobSpec(gpus=1, time_limit_s=60, gpu_models=frozenset({"V100M16", "V100M32"}))
    assert spec.wants_model("V100M16") and spec.wants_model("v100m32")  # case as in Slurm
    assert not spec.wants_model("T4")
    assert spec.model_label == "V100M16|V100M32"
    assert shape_fitting(spec, V100M16) is not None and shape_fitting(spec, V100M32) is not None
    misfit = fit(spec, T4)
    assert isinstance(misfit, Misfit) and misfit.rule == "gpu_model"


def test_single_model_field_works_as_before() -> None:
    spec = JobSpec(gpus=1, time_limit_s=60, gpu_model="T4")
    assert spec.wants_model("t4") and not spec.wants_model("V100M16")
    assert spec.model_label == "T4"
    anything = JobSpec(gpus=1, time_limit_s=60)
    assert anything.wants_model("T4") and anything.model_label == "any"


@pytest.mark.parametrize(
    ("gpu_model", "models", "problem"),
    [
        ("T4", {"V100M16"}, "given with gpu_model 'T4'"),
        ("any", {"any", "T4"}, "an empty name or 'any'"),
        ("any", {""}, "an empty name or 'any'"),
    ],
)
def test_alternatives_are_validated(gpu_model: str, models: set[str], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as caught:
        JobSpec(gpus=1, time_limit_s=60, gpu_model=gpu_model, gpu_models=frozenset(models))
    assert caught.value.field == "gpu_models" and caught.value.limit


def test_cycle_places_only_on_an_accepted_model() -> None:
    # T4 comes first in catalogue order: without its constraint first_fit would take it.
    snap = snapshot([state(T4), state(V100M16), state(V100M32)])
    pending = [alternatives(1, "V100M32"), alternatives(2, "V100M16", "V100M32"), job(3)]
    result = run_cycle(snap, pending, get_policy("first_fit"), T0)
    where = {int(p.job_id): str(p.partition_id) for p in result.placements}
    assert where == {1: "jaif/v32", 2: "jaif/v16", 3: "jaif/t4"}


def test_jobs_with_other_alternatives_do_not_share_options() -> None:
    # Same gang and hardware otherwise: the cycle's per-requirement cache must tell them apart.
    snap = snapshot([state(V100M16), state(T4, [0, 0, 0, 0])])
    pending = [alternatives(1, "V100M16"), alternatives(2, "T4")]
    result = run_cycle(snap, pending, get_policy("first_fit"), T0)
    assert [int(p.job_id) for p in result.placements] == [1]
    (wait,) = result.waits
    assert "models T4" in wait.reason or "model T4" in wait.reason


def test_wait_reason_names_the_alternatives() -> None:
    snap = snapshot([state(T4)])
    pending = [alternatives(1, "V100M16", "V100M32")]
    result = run_cycle(snap, pending, get_policy("first_fit"), T0)
    (wait,) = result.waits
    assert "any of the GPU models V100M16|V100M32" in wait.reason
    assert "models in the federation: T4" in wait.reason
