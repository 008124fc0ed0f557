"""A scenario's ``workload: gavel``: Gavel's continuous-multiple experiment from a YAML file,
its speed matrix from the throughputs file, and no job where its throughput is 0."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.services.twin.simulate import prepare, simulate
from aifactories.twin.scenario import read_scenario
from tests.twin.traces.support import SHARED_TRACES

THROUGHPUTS = SHARED_TRACES / "gavel-throughputs" / "simulation_throughputs.json"
SITES = {
    "sites": [
        {
            "id": "gavel",
            "name": "Gavel cluster",
            "country": "US",
            "supercomputer": "Gavel",
            "status": "operational",
            "partitions": [
                {
                    "name": model.lower(),
                    "gpu_model": model,
                    "gpu_memory_gb": 16,
                    "gpus_per_node": 4,
                    "nodes": 2,
                }
                for model in ("V100", "P100", "K80")
            ],
        }
    ]
}
needs_throughputs = pytest.mark.skipif(
    not THROUGHPUTS.exists(), reason=f"Gavel's throughputs not at {THROUGHPUTS}"
)


def _no_catalogue() -> Catalogue:
    raise AssertionError("the scenario names its sites inline")


def _scenario(tmp_path: Path, workload: dict[str, object], policies: list[str]) -> Path:
    path = tmp_path / "gavel.yaml"
    body = {"sites": SITES, "policies": policies, "seed": 0, "workload": workload}
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


@needs_throughputs
def test_continuous_multiple_from_a_scenario(tmp_path: Path) -> None:
    workload = {
        "gavel": {
            "throughputs": str(THROUGHPUTS),
            "jobs": 80,
            "jobs_per_hour": 4.0,
            "gpus": "multiple",
        }
    }
    prepared = prepare(
        read_scenario(_scenario(tmp_path, workload, ["fifo", "gavel_las"])), _no_catalogue
    )
    sizes = {job.gpus for job in prepared.trace.jobs}
    assert sizes > {1} and sizes <= {1, 2, 4, 8}
    speeds = prepared.setups[0].speed_by_class
    assert speeds["ResNet-50 (batch size 128) (scale factor 4)"]["K80"] == 0.0
    assert prepared.trace_sha256 is not None and len(prepared.trace_sha256) == 64
    runs, _ = simulate(prepared)
    for run in runs:
        assert all(r.end_s is not None for r in run.results)
        classes = {j.job_id: j.workload_class or "" for j in prepared.trace.jobs}
        for r in run.results:
            assert speeds[classes[r.job_id]][r.gpu_model or ""] > 0


@needs_throughputs
def test_continuous_single_draws_one_gpu_jobs(tmp_path: Path) -> None:
    workload = {"gavel": {"throughputs": str(THROUGHPUTS), "jobs": 50, "jobs_per_hour": 2.0}}
    prepared = prepare(read_scenario(_scenario(tmp_path, workload, ["fifo"])), _no_catalogue)
    assert {job.gpus for job in prepared.trace.jobs} == {1}


def test_the_throughputs_path_is_relative_to_the_scenario(tmp_path: Path) -> None:
    workload = {"gavel": {"throughputs": "gavel.json", "jobs_per_hour": 2.0}}
    spec = read_scenario(_scenario(tmp_path, workload, ["fifo"])).spec
    assert spec.workload.gavel is not None
    assert spec.workload.gavel.throughputs == str(tmp_path / "gavel.json")


@pytest.mark.parametrize(
    ("workload", "words"),
    [
        ({"gavel": {"throughputs": "t.json", "jobs_per_hour": 2.0, "gpus": "two"}}, "gpus"),
        ({"gavel": {"throughputs": "t.json"}}, "jobs_per_hour"),
        (
            {"gavel": {"throughputs": "t.json", "jobs_per_hour": 2.0}, "generator": {"jobs": 5}},
            "exactly one of",
        ),
    ],
)
def test_a_bad_gavel_workload_says_what_is_wrong(
    tmp_path: Path, workload: dict[str, object], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        read_scenario(_scenario(tmp_path, workload, ["fifo"]))


@pytest.mark.parametrize(
    ("given", "named"),
    [({"jobs": 5}, "--jobs"), ({"hours": 2.0}, "--hours"), ({"load": 2.0}, "--load")],
)
def test_generator_options_over_a_gavel_workload_are_refused(
    tmp_path: Path, given: dict[str, float], named: str
) -> None:
    from aifactories.twin.scenario import Overrides, with_overrides

    workload = {"gavel": {"throughputs": "t.json", "jobs": 10, "jobs_per_hour": 2.0}}
    scenario = read_scenario(_scenario(tmp_path, workload, ["fifo"]))
    with pytest.raises(InvalidInput) as error:
        with_overrides(scenario, Overrides(**given))  # type: ignore[arg-type]
    assert error.value.field == named and "workload.gavel" in str(error.value.limit)
