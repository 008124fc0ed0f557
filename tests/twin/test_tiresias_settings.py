"""Tiresias with its own settings: queue thresholds, round length and starvation promotion,
set in a scenario's ``tiresias:`` section and reaching the policy the twin runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aifactories.catalogue.loader import parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import PartitionId
from aifactories.scheduling.policies.tiresias_las import TiresiasLas, TiresiasSettings
from aifactories.scheduling.preemption import JobService
from aifactories.services.twin.scenario import setup_of
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.scenario import read_scenario
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.model import Trace, TraceJob

HOUR = 3600.0
ONE_GPU = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 1, nodes: 1}]}
"""),
    "test",
)


def _run(jobs: tuple[TraceJob, ...], settings: TiresiasSettings) -> dict[str, JobResult]:
    trace = Trace(name="t", source=None, jobs=jobs)
    setup = TwinSetup(ONE_GPU.sites, "tiresias_las", restart_cost_s=0.0, tiresias=settings)
    run = Simulation(trace, projects_for(trace, ["IT"], 0), setup).run()
    return {r.job_id: r for r in run.results}


def _starving() -> tuple[TraceJob, ...]:
    """A 3 h job on one GPU, and from 1 h a stream of half-hour jobs, one every half hour,
    until 9.5 h: the stream alone keeps the GPU busy until 10 h."""
    long = TraceJob(job_id="long", submit_s=0.0, runtime_s=3 * HOUR, gpus=1, group="g")
    stream = tuple(
        TraceJob(
            job_id=f"s{i}", submit_s=HOUR + i * HOUR / 2, runtime_s=HOUR / 2, gpus=1, group="g"
        )
        for i in range(18)
    )
    return (long, *stream)


def test_starvation_promotion_brings_a_demoted_job_back() -> None:
    two_queues = TiresiasSettings(queue_thresholds_h=(1.0,))
    # Without promotion the long job, demoted at 1 h, waits for the whole stream.
    assert _run(_starving(), two_queues)["long"].end_s > 10 * HOUR  # type: ignore[operator]
    # STARVELIMIT 2: it ran 1 h, so after waiting 2 h (at 3 h) it is back at the end of the
    # first queue and runs 1 h; demoted at 4 h, it waits 2 h again and is promoted at 6 h,
    # behind the two stream jobs its hour delayed (they entered at 5 h and 5.5 h): last hour
    # from 7 h to 8 h.
    promoted = _run(_starving(), TiresiasSettings(queue_thresholds_h=(1.0,), starve_limit=2.0))
    assert promoted["long"].end_s == pytest.approx(8 * HOUR)
    assert promoted["long"].restarts == 2


def test_queue_thresholds_decide_who_is_preempted() -> None:
    jobs = (
        TraceJob(job_id="long", submit_s=0.0, runtime_s=5 * HOUR, gpus=1, group="g"),
        TraceJob(job_id="short", submit_s=2 * HOUR, runtime_s=0.5 * HOUR, gpus=1, group="g"),
    )
    # Threshold 1 GPU-h: the long job is in the second queue at 2 h; the short one preempts it.
    low = _run(jobs, TiresiasSettings(queue_thresholds_h=(1.0,)))
    assert low["short"].start_s == 2 * HOUR and low["long"].restarts == 1
    # Threshold 16 GPU-h (Pollux's setting): both in the first queue, first come first served.
    high = _run(jobs, TiresiasSettings(queue_thresholds_h=(16.0,)))
    assert high["short"].start_s == 5 * HOUR and high["long"].restarts == 0


def test_the_round_length_is_the_scheduling_interval() -> None:
    jobs = (
        TraceJob(job_id="x", submit_s=0.0, runtime_s=100.0, gpus=1, group="g"),
        TraceJob(job_id="y", submit_s=10.0, runtime_s=100.0, gpus=1, group="g"),
    )
    assert _run(jobs, TiresiasSettings())["y"].start_s == 360.0
    assert _run(jobs, TiresiasSettings(round_s=60.0))["y"].start_s == 120.0  # x ends at 100 s


def test_service_in_gpu_time_or_in_run_time() -> None:
    # Two GPUs for 0.6 h: 1.2 GPU-hours, but 0.6 hours of run.
    two_gpus = JobService(
        gpus=2,
        submitted_at=0.0,
        attained_gpu_seconds=1.2 * HOUR,
        received_s={PartitionId("a/p"): 0.6 * HOUR},
    )
    assert TiresiasLas(TiresiasSettings(queue_thresholds_h=(1.0,))).queue_of(two_gpus) == 1
    time_based = TiresiasSettings(queue_thresholds_h=(1.0,), service="time")
    assert TiresiasLas(time_based).queue_of(two_gpus) == 0


def _scenario(tmp_path: Path, tiresias: object) -> Path:
    path = tmp_path / "scenario.yaml"
    data = {"policies": ["tiresias_las"], "sites": {"sites": []}, "tiresias": tiresias}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_scenario_sets_tiresias_and_the_setup_carries_it(tmp_path: Path) -> None:
    given = {"queue_thresholds_h": [0.9, 2.0], "round_s": 60, "starve_limit": 8}
    spec = read_scenario(_scenario(tmp_path, given)).spec
    setup = setup_of(spec, ONE_GPU, "tiresias_las")
    assert setup.tiresias == TiresiasSettings((0.9, 2.0), 60.0, 8.0, "gpu_time")
    trace = Trace(name="t", source=None, jobs=_starving()[:1])
    simulation = Simulation(trace, projects_for(trace, ["IT"], 0), setup)
    assert simulation.rounds is not None and simulation.rounds.round_s == 60.0
    assert read_scenario(_scenario(tmp_path, {})).spec.tiresias.settings() == TiresiasSettings()


@pytest.mark.parametrize(
    ("tiresias", "words"),
    [
        ({"queue_thresholds_h": [10, 1]}, "tiresias.queue_thresholds_h: queue thresholds are not"),
        ({"queue_thresholds_h": [0]}, "tiresias.queue_thresholds_h[0]"),
        ({"round_s": 0}, "tiresias.round_s"),
        ({"starve_limt": 2}, "did you mean 'starve_limit'"),
        ({"service": "gpu"}, "tiresias.service"),
    ],
)
def test_bad_tiresias_settings_say_which_key(tmp_path: Path, tiresias: object, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_scenario(_scenario(tmp_path, tiresias))
    assert words in str(caught.value)


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(InvalidInput, match="strictly increasing"):
        TiresiasSettings(queue_thresholds_h=(2.0, 2.0))


@pytest.mark.parametrize("policy", ["tiresias_las", "gavel_las"])
def test_a_round_policy_ends_when_the_jobs_left_can_never_run(policy: str) -> None:
    # Two GPUs asked of a one-GPU federation: no round can start it, and none would ever
    # stop (the run used to loop for good).
    jobs = (
        TraceJob(job_id="a-too-big", submit_s=0.0, runtime_s=HOUR, gpus=2, group="g"),
        TraceJob(job_id="fits", submit_s=0.0, runtime_s=HOUR, gpus=1, group="g"),
    )
    trace = Trace(name="t", source=None, jobs=jobs)
    setup = TwinSetup(ONE_GPU.sites, policy, restart_cost_s=0.0)
    run = Simulation(trace, projects_for(trace, ["IT"], 0), setup).run()
    by_id = {r.job_id: r for r in run.results}
    assert by_id["fits"].end_s == HOUR
    assert by_id["a-too-big"].start_s is None and by_id["a-too-big"].end_s is None
