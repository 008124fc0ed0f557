"""Gavel's throughputs file and its continuous workload generator."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces.gavel import (
    GAVEL_JOB_TABLE,
    GavelThroughputsError,
    gavel_speed_matrix,
    generate_gavel_continuous,
    load_gavel_throughputs,
    workload_class,
)
from tests.twin.traces.support import Write

GAVEL_FILE = Path("gavel-throughputs") / "simulation_throughputs.json"


@pytest.fixture(scope="module")
def small() -> dict[str, dict[int, dict[str, float]]]:
    """Two models: one 1-GPU only, one distributed (2, 4 and 8 GPUs too)."""
    return {
        "A3C": {1: {"v100": 7.0, "p100": 5.0, "k80": 3.5}},
        "ResNet-18 (batch size 16)": {
            1: {"v100": 30.0, "p100": 20.0, "k80": 5.0},
            2: {"v100": 55.0, "p100": 35.0, "k80": 9.0},
            4: {"v100": 100.0, "p100": 60.0, "k80": 0.0},
            8: {"v100": 180.0, "p100": 110.0, "k80": 0.0},
        },
    }


def test_loads_the_real_file(shared_traces: Path) -> None:
    table = load_gavel_throughputs(shared_traces / GAVEL_FILE)
    assert sorted(m for m, scales in table.items() if 1 in scales) == sorted(GAVEL_JOB_TABLE)
    resnet = table["ResNet-50 (batch size 64)"][1]
    # The README's example: 4.39 / 2.62 / 0.62 iterations per second.
    assert (resnet["v100"], resnet["p100"], resnet["k80"]) == pytest.approx(
        (4.39, 2.62, 0.62), abs=0.01
    )
    assert sorted(table["LM (batch size 20)"]) == [1, 2, 4, 8]
    assert "k80_unconsolidated" in table["A3C"][1]
    with pytest.raises(TypeError):
        table["A3C"][1]["v100"] = 0.0  # type: ignore[index]


def test_speed_matrix_of_the_real_file(shared_traces: Path) -> None:
    matrix = gavel_speed_matrix(load_gavel_throughputs(shared_traces / GAVEL_FILE))
    assert len(matrix) == 26
    assert matrix["ResNet-50 (batch size 64)"] == pytest.approx(
        {"V100": 1.0, "P100": 2.6195 / 4.3948, "K80": 0.6190 / 4.3948}, rel=1e-3
    )
    assert matrix["A3C"]["K80"] == pytest.approx(3.4388 / 7.1758, rel=1e-3)
    # Recommendation models run faster on the P100 than on the V100.
    assert matrix["Recommendation (batch size 512)"]["P100"] > 1.0


def test_continuous_single_from_the_real_file(shared_traces: Path) -> None:
    table = load_gavel_throughputs(shared_traces / GAVEL_FILE)
    trace = generate_gavel_continuous(3000, 3.0, 0, table)
    assert len(trace) == 3000 and trace.jobs[0].submit_s == 0.0
    assert all(job.gpus == 1 for job in trace.jobs)
    classes = Counter(job.workload_class for job in trace.jobs)
    assert set(classes) <= set(GAVEL_JOB_TABLE) and len(classes) == 26
    for job in trace.jobs[:50]:
        steps = float(job.get("steps") or "nan")
        rate = table[job.workload_class or ""][1]["v100"]
        assert steps == pytest.approx(job.runtime_s * rate, rel=1e-6)
    gaps = [b.submit_s - a.submit_s for a, b in zip(trace.jobs, trace.jobs[1:], strict=False)]
    assert statistics.mean(gaps) == pytest.approx(1200.0, rel=0.06)


def test_same_seed_same_trace(small) -> None:
    a = generate_gavel_continuous(300, 2.0, 1, small)
    b = generate_gavel_continuous(300, 2.0, 1, small)
    c = generate_gavel_continuous(300, 2.0, 2, small)
    assert a == b and a.jobs != c.jobs
    assert a.name == "gavel-continuous(n=300, jobs_per_hour=2, seed=1, 1 GPU)"
    keys = [(job.submit_s, job.job_id) for job in a.jobs]
    assert keys == sorted(keys)


def test_draws_follow_gavels_streams(small) -> None:
    """Job k's parameters are the k-th draws of random.Random(seed + 2) in Gavel's order
    (scale factor, duration branch, duration exponent, rng.choice(JobTable)); arrivals the
    draws of random.Random(seed + 3), the first job at 0."""
    seed, rate = 4, 2.5
    trace = generate_gavel_continuous(200, rate, seed, small)
    jobs_rng, arrivals_rng = random.Random(seed + 2), random.Random(seed + 3)
    models = ["A3C", "ResNet-18 (batch size 16)"]  # JobTable order restricted to the file
    models = [m for m in GAVEL_JOB_TABLE if m in models]
    arrival = 0.0
    for job in trace.jobs:
        jobs_rng.uniform(0, 1)  # the scale factor, ignored for 1-GPU jobs
        if jobs_rng.random() >= 0.8:
            duration = 60 * 10 ** jobs_rng.uniform(3, 4)
        else:
            duration = 60 * 10 ** jobs_rng.uniform(1.5, 3)
        model = jobs_rng.choice(models)
        assert (job.workload_class, job.runtime_s) == (model, round(duration, 3))
        assert job.submit_s == round(arrival, 3)
        arrival += -math.log(1.0 - arrivals_rng.random()) / (1.0 / (3600.0 / rate))


def test_durations_follow_the_philly_mixture(small) -> None:
    trace = generate_gavel_continuous(5000, 10.0, 3, small)
    minutes = [job.runtime_s / 60 for job in trace.jobs]
    assert min(minutes) >= 10**1.5 - 1e-3 and max(minutes) <= 10**4 + 1e-3
    long_share = sum(m > 1000 for m in minutes) / len(minutes)
    assert long_share == pytest.approx(0.2, abs=0.02)


def test_multi_gpu_jobs_follow_gavels_mix(small) -> None:
    trace = generate_gavel_continuous(4000, 10.0, 0, small, scale_factor_one_only=False)
    sizes = Counter(job.gpus for job in trace.jobs)
    shares = {size: sizes[size] / len(trace.jobs) for size in (1, 2, 4, 8)}
    assert shares == pytest.approx({1: 0.7, 2: 0.1, 4: 0.15, 8: 0.05}, abs=0.02)
    # A multi-GPU job is drawn again until its model has that size (Gavel's distributed test).
    for job in trace.jobs:
        if job.gpus > 1:
            assert job.workload_class == workload_class("ResNet-18 (batch size 16)", job.gpus)
    with pytest.raises(InvalidInput, match="no job type has a throughput at scale factor"):
        generate_gavel_continuous(50, 1.0, 0, {"A3C": small["A3C"]}, scale_factor_one_only=False)


def test_speed_matrix_leaves_out_incomplete_types(small) -> None:
    matrix = gavel_speed_matrix(small, scale_factors=(1, 4, 16))
    assert matrix["A3C"] == pytest.approx({"V100": 1.0, "P100": 5 / 7, "K80": 0.5})
    assert matrix[workload_class("ResNet-18 (batch size 16)", 4)]["K80"] == 0.0
    with pytest.raises(InvalidInput, match="no throughput on v100"):
        gavel_speed_matrix({"X": {1: {"v100": 0.0, "p100": 1.0, "k80": 1.0}}})


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("{not json", "line 1", "not valid JSON"),
        ("[]", "top level", "non-empty object"),
        ('{"v100": 3}', "v100", "object of job types"),
        ('{"v100": {"ResNet": {"null": 1.0}}}', "v100 -> ResNet", "job type must read"),
        ('{"v100": {"(\'A3C\', 1)": {}}}', "v100 -> ('A3C', 1)", '"null"'),
        ('{"v100": {"(\'A3C\', 1)": {"null": "fast"}}}', "-> null", "got 'fast'"),
        ('{"v100": {"(\'A3C\', 1)": {"null": -2}}}', "-> null", "got -2"),
        ('{"v100": {"(\'A3C\', 0)": {"null": 2}}}', "('A3C', 0)", "scale factor"),
    ],
)
def test_malformed_files_say_file_and_what_is_wrong(
    write: Write, text: str, where: str, problem: str
) -> None:
    path = write("tputs.json", text)
    with pytest.raises(GavelThroughputsError) as raised:
        load_gavel_throughputs(path)
    message = str(raised.value)
    assert message.startswith("tputs.json: ")
    assert where in message and problem in message
    assert isinstance(raised.value, InvalidInput)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GavelThroughputsError, match=r"nothing\.json: file: cannot read it"):
        load_gavel_throughputs(tmp_path / "nothing.json")


def test_generator_rejects_bad_arguments(small) -> None:
    with pytest.raises(InvalidInput, match="jobs"):
        generate_gavel_continuous(-1, 1.0, 0, small)
    with pytest.raises(InvalidInput, match="jobs_per_hour"):
        generate_gavel_continuous(1, 0.0, 0, small)
    with pytest.raises(InvalidInput, match="1-GPU"):
        generate_gavel_continuous(1, 1.0, 0, {"X": {2: {"v100": 1.0}}})
    with pytest.raises(InvalidInput, match="no v100 throughput"):
        generate_gavel_continuous(5, 1.0, 0, {"X": {1: {"k80": 1.0}}})
