"""Expected completion: the fastest GPU for the job's workload class, shortest requests first
with ageing (no starvation), pure over the snapshot."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import JobId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob, JobState, PendingJob, Shape
from aifactories.scheduling import get_policy, run_cycle
from aifactories.scheduling.policies.expected_completion import ExpectedCompletion
from aifactories.scheduling.speeds import SpeedTable, speeds_from_billing_weights

from .builders import HOUR, T0, World, allocation, job, partition, snapshot, state

A100 = partition(site="a", name="gpu", model="A100")
H100 = partition(site="b", name="gpu", model="H100")
MI250X = partition(site="c", name="gpu", model="MI250X")
SPEEDS = SpeedTable.of(
    {"A100": 1.0, "H100": 2.0, "MI250X": 0.9},
    {"bert": {"MI250X": 3.0}},  # a class the AMD GPU runs best (made up for the test)
)


def _classed(pending: PendingJob, workload_class: str | None) -> PendingJob:
    spec = dataclasses.replace(pending.spec, workload_class=workload_class)
    return dataclasses.replace(pending, spec=spec)


def _placed_on(pending: PendingJob, speeds: SpeedTable) -> str:
    # The A100 partition is half busy, the others idle: least loaded would not pick by speed.
    states = [state(A100, [4, 4, 0, 0]), state(H100), state(MI250X)]
    shot = dataclasses.replace(snapshot(states), speeds=speeds)
    result = run_cycle(shot, [pending], get_policy("expected_completion"), T0)
    assert len(result.placements) == 1
    return result.placements[0].partition_id


def test_the_fastest_gpu_for_the_class_wins() -> None:
    assert _placed_on(_classed(job(1), None), SPEEDS) == "b/gpu"  # default row: H100
    assert _placed_on(_classed(job(1), "bert"), SPEEDS) == "c/gpu"  # its own row
    # a class the table does not know, or a model its row lacks, reads the default row
    assert _placed_on(_classed(job(1), "gpt"), SPEEDS) == "b/gpu"
    slow_amd = SpeedTable.of({"H100": 2.0}, {"bert": {"MI250X": 0.5}})
    assert _placed_on(_classed(job(1), "bert"), slow_amd) == "b/gpu"


def test_without_speeds_it_chooses_as_earliest_start() -> None:
    # every GPU the same: the least loaded partition, then the catalogue's order
    assert _placed_on(job(1), SpeedTable()) == "b/gpu"
    states = [state(A100), state(H100, [0, 0, 0, 4])]
    result = run_cycle(snapshot(states), [job(1)], get_policy("expected_completion"), T0)
    assert result.placements[0].partition_id == "a/gpu"


def _h100_busy_for(hours: float) -> ActiveJob:
    return ActiveJob(
        id=JobId(100),
        project_id=ProjectId(1),
        site_id=SiteId("b"),
        partition_id=H100.id,
        shape=Shape(4, 4, exclusive=True),
        state=JobState.RUNNING,
        started_at=T0,
        time_limit_s=round(hours * HOUR),
    )


@pytest.mark.parametrize(
    ("busy_hours", "waited_hours", "placed"),
    [
        (1, 0, False),  # H100 free at +1 h, done at +3 h: sooner than +4 h on the A100
        (3, 0, True),  # free at +3 h, done at +5 h: the A100 now is sooner
        (1, 4, True),  # it has waited its requested time: it takes what there is
    ],
)
def test_it_waits_for_a_faster_gpu_only_when_that_ends_sooner(
    busy_hours: float, waited_hours: float, placed: bool
) -> None:
    states = [state(A100), state(H100, [0, 0, 0, 0])]
    shot = dataclasses.replace(snapshot(states, active=[_h100_busy_for(busy_hours)]), speeds=SPEEDS)
    pending = job(1, hours=4, submitted_at=T0 - waited_hours * HOUR)
    result = run_cycle(shot, [pending], get_policy("expected_completion"), T0)
    assert [p.partition_id for p in result.placements] == (["a/gpu"] if placed else [])


def test_shortest_request_first_unless_the_longer_one_waited_longer() -> None:
    policy = ExpectedCompletion(ageing=1.0)
    long_old = job(1, hours=10, submitted_at=T0)
    short_soon = job(2, hours=1, submitted_at=T0 + 8 * HOUR)  # due T0 + 9 h, before 10 h
    short_late = job(3, hours=1, submitted_at=T0 + 9.5 * HOUR)  # due T0 + 10.5 h
    order = policy.order([short_late, long_old, short_soon], snapshot([state(A100)]), T0)
    assert [j.id for j in order] == [2, 1, 3]
    # ageing 2: waiting counts double, the long job is due at T0 + 5 h
    order = ExpectedCompletion(ageing=2.0).order([short_soon, long_old], snapshot([]), T0)
    assert [j.id for j in order] == [1, 2]
    with pytest.raises(InvalidInput):
        ExpectedCompletion(ageing=0)


def _big_job_start(policy: ExpectedCompletion, hours: float) -> float | None:
    """A 16-GPU job of 10 h behind a stream of 1-GPU, 1 h jobs that keeps 16 GPUs busy."""
    world = World([state(partition(site="a", name="gpu", nodes=4))], [allocation(1)])
    big = job(1, gpus=16, hours=10, submitted_at=T0)
    pending: list[PendingJob] = [big]
    next_id = 2
    while world.now < T0 + hours * HOUR:
        for _ in range(4):  # 16 jobs an hour, each 1 GPU-hour: exactly the capacity
            pending.append(job(next_id, hours=1, submitted_at=world.now))
            next_id += 1
        result = run_cycle(world.snapshot(), pending, policy, world.now)
        pending = world.apply(result, pending)
        if big.id in world.started:
            return world.started[big.id] - T0
        world.advance(HOUR / 4)
    return None


def test_ageing_prevents_starvation() -> None:
    # Due at T0 + 10 h: no later short job passes it after that, the short ones ahead end
    # within the hour, it heads the queue and its reservation keeps the GPUs for it.
    started = _big_job_start(ExpectedCompletion(ageing=1.0), hours=40)
    assert started is not None and started <= 11.25 * HOUR
    # Nearly without ageing (shortest first only), the stream passes it for good.
    assert _big_job_start(ExpectedCompletion(ageing=1e-6), hours=40) is None


def test_pure_over_the_snapshot() -> None:
    policy = get_policy("expected_completion")
    states = [state(A100), state(H100, [4, 4, 4, 0]), state(MI250X)]
    shot = dataclasses.replace(snapshot(states), speeds=SPEEDS)
    pending = [_classed(job(i, hours=1 + i % 3), "bert" if i % 2 else None) for i in range(1, 9)]
    before = (shot, list(pending))
    first = run_cycle(shot, pending, policy, T0)
    assert (shot, pending) == before  # inputs left as they were
    # the same decisions from the same inputs, however often asked and in whatever input order
    assert run_cycle(shot, list(reversed(pending)), policy, T0) == first
    other = dataclasses.replace(shot, speeds=SpeedTable())
    run_cycle(other, pending, policy, T0)  # a different picture in between leaves no trace
    assert run_cycle(shot, pending, policy, T0) == first
    assert policy.order(pending, shot, T0) == sorted(pending, key=policy.standing_key)  # type: ignore[attr-defined]


def test_speed_table_rules() -> None:
    table = SpeedTable.of({"h100": 2.0}, {"bert": {"mi250x": 3.0}})
    assert table.speed(None, "H100") == table.speed("bert", "h100") == 2.0  # any case
    assert table.speed("bert", "MI250X") == 3.0
    assert table.speed(None, "K80") == 1.0  # unknown model: the reference
    assert isinstance(table.by_class, MappingProxyType)
    with pytest.raises(InvalidInput) as caught:
        SpeedTable.of({"K80": 0.0})
    assert "K80" in caught.value.message
    broker = speeds_from_billing_weights([A100, partition(model="H100", billing_weight=2.0)])
    assert (broker.speed(None, "A100"), broker.speed(None, "H100")) == (1.0, 2.0)


# Three classes on an A100 (slow) and an H100 (fast): relative speeds on the A100 are 0.8,
# 0.5 and 0.25, so the median class loses half its speed there.
CLASSES = SpeedTable.of(
    {},
    {
        "light": {"A100": 0.8, "H100": 1.0},
        "mid": {"A100": 0.5, "H100": 1.0},
        "heavy": {"A100": 0.25, "H100": 1.0},
    },
)


def test_comparative_advantage_against_the_median_class() -> None:
    assert CLASSES.median_relative == {"A100": 0.5, "H100": 1.0}
    assert CLASSES.relative("light", "a100") == 0.8
    assert CLASSES.has_comparative_advantage("light", "A100")
    assert not CLASSES.has_comparative_advantage("mid", "A100")  # the median itself: none
    assert not CLASSES.has_comparative_advantage("heavy", "A100")
    assert not CLASSES.has_comparative_advantage("light", "H100")  # every class's best
    # A job without a class reads the default row: here empty, every GPU the same to it, so
    # it loses nothing on the A100; a default row where the A100 is slow makes it lose.
    assert CLASSES.relative(None, "A100") == 1.0
    assert CLASSES.has_comparative_advantage(None, "A100")
    slow_default = dataclasses.replace(CLASSES, default={"A100": 0.3, "H100": 1.0})
    assert not slow_default.has_comparative_advantage(None, "A100")
    # One row (the catalogue's, by billing weight) gives no class an advantage anywhere.
    one_row = SpeedTable.of({"A100": 1.0, "H100": 2.0}, {"bert": {"A100": 0.5}})
    assert one_row.median_relative == {}
    assert not one_row.has_comparative_advantage("bert", "A100")


@pytest.mark.parametrize(
    ("workload_class", "placed"),
    [("light", True), ("mid", False), ("heavy", False)],
)
def test_a_job_that_loses_least_on_a_slow_gpu_takes_it_instead_of_waiting(
    workload_class: str, placed: bool
) -> None:
    # The H100 is full for 1 h more; a 4 h request ends sooner there (+1 h + 4 h) than on
    # the A100 now (4 h / 0.8 = 5 h for "light" is a tie, longer for the others), so without
    # the advantage every class waits; "light" loses least on the A100 and takes it now.
    states = [state(A100), state(H100, [0, 0, 0, 0])]
    shot = dataclasses.replace(snapshot(states, active=[_h100_busy_for(1)]), speeds=CLASSES)
    pending = _classed(job(1, hours=4), workload_class)
    result = run_cycle(shot, [pending], get_policy("expected_completion"), T0)
    assert [p.partition_id for p in result.placements] == (["a/gpu"] if placed else [])
