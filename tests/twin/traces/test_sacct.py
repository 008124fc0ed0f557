"""Slurm ``sacct --parsable2`` exports: steps, durations, TRES, states and malformed rows."""

from __future__ import annotations

import pytest

from aifactories.twin.traces import TraceError, read_sacct, read_trace
from aifactories.twin.traces.sacct import parse_slurm_duration
from tests.twin.traces.support import Write

HEADER = (
    "JobID|JobName|User|Account|Partition|Submit|Start|End|Elapsed|Timelimit|AllocTRES|State|"
    "NNodes\n"
)
ROWS = [
    "101|train|alice|proj-a|gpu|2025-01-01T10:00:00|2025-01-01T10:05:00|2025-01-02T12:08:04|"
    "1-02:03:04|2-00:00:00|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|COMPLETED|1",
    "101.batch|batch||proj-a||2025-01-01T10:05:00|2025-01-01T10:05:00|2025-01-02T12:08:04|"
    "1-02:03:04||cpu=8,gres/gpu=4,mem=64G,node=1|COMPLETED|1",
    "101.extern|extern||proj-a||2025-01-01T10:05:00|2025-01-01T10:05:00|2025-01-02T12:08:04|"
    "1-02:03:04||billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|COMPLETED|1",
    "102_3|sweep|bob|proj-b|gpu|2025-01-01T10:00:30|2025-01-01T10:00:30|2025-01-01T10:30:30|"
    "00:30:00|UNLIMITED|cpu=16,gres/gpu:a100=8,mem=1T,node=2|TIMEOUT|2",
    "103|cpu|carol|proj-b|cpu|2025-01-01T10:01:00|2025-01-01T10:01:00|2025-01-01T10:02:00|"
    "00:01:00|01:00:00|cpu=4,mem=8G,node=1|COMPLETED|1",
    "104|wait|carol|proj-b|gpu|2025-01-01T10:02:00|Unknown|Unknown|00:00:00|01:00:00||PENDING|1",
    "105|gone|dave|proj-c|gpu|2025-01-01T10:03:00|None|2025-01-01T10:04:00|00:00:00|01:00:00|"
    "|CANCELLED by 1000|0",
    "106|run|dave|proj-c|gpu|2025-01-01T10:04:00|2025-01-01T10:04:10|Unknown|00:10:00|"
    "Partition_Limit|cpu=2,gres/gpu=1,node=1|RUNNING|1",
    "107|mix|erin|proj-c|gpu|2025-01-01T10:05:00|2025-01-01T10:06:00|2025-01-01T10:06:45|"
    "00:45|05:00|cpu=2,gres/gpu:a100=1,gres/gpu:h100=2,node=1|FAILED|1",
]


def test_maps_jobs_and_skips_steps(write: Write) -> None:
    trace = read_sacct(write("sacct.txt", HEADER + "\n".join(ROWS) + "\n"))
    assert [j.job_id for j in trace.jobs] == ["101", "102_3", "107"]
    a, b, c = trace.jobs
    assert (a.submit_s, a.runtime_s, a.gpus, a.nodes, a.user, a.group) == (
        0.0,
        93784.0,
        4,
        1,
        "alice",
        "proj-a",
    )
    assert (a.time_limit_s, a.recorded_wait_s, a.get("partition")) == (172800.0, 300.0, "gpu")
    assert (b.gpus, b.gpu_model, b.nodes, b.time_limit_s, b.get("state")) == (
        8,
        "a100",
        2,
        None,
        "TIMEOUT",
    )
    assert (c.gpus, c.gpu_model, c.runtime_s, c.time_limit_s) == (3, None, 45.0, 300.0)
    assert trace.origin == "2025-01-01T10:00:00+00:00"
    assert dict(trace.skip_reasons) == {
        "job step": 2,
        "no GPU": 1,
        "never started": 1,
        "cancelled before start": 1,
        "still running": 1,
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1-02:03:04", 93784.0),
        ("00:30:00", 1800.0),
        ("12:34", 754.0),
        ("00:00:01.500", 1.5),
        ("2-12", 216000.0),
        ("90", 5400.0),
        ("UNLIMITED", None),
        ("1:2:3:4", None),
    ],
)
def test_slurm_durations(text: str, seconds: float | None) -> None:
    assert parse_slurm_duration(text) == seconds


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (
            "9|j|u|a|p|2025-01-01T10:00:00|2025-01-01T10:00:00|x|1:00:00:00|1:00|gres/gpu=1|"
            "COMPLETED|1",
            "Elapsed",
            "not a Slurm duration",
        ),
        (
            "9|j|u|a|p|01/01/25|2025-01-01T10:00:00|x|00:01:00|1:00|gres/gpu=1|COMPLETED|1",
            "Submit",
            "neither a date-time",
        ),
        (
            "9|j|u|a|p|2025-01-01T10:00:00|2025-01-01T10:00:00|x|00:01:00|1:00|gres/gpu=two|"
            "COMPLETED|1",
            "AllocTRES",
            "GPU count is not a whole number",
        ),
        (
            "9|j|u|a|p|2025-01-01T10:00:00|2025-01-01T10:00:00|x|00:01:00|1:00|gres/gpu=1|"
            "COMPLETED|-1",
            "NNodes",
            "below the minimum",
        ),
        (
            "9|j|u|a|p|2025-01-01T10:00:00|2025-01-01T10:00:00|x|00:01:00|1:00|gres/gpu=1",
            "row",
            "expected 13 fields, got 11",
        ),
        (
            "101|j|u|a|p|2025-01-01T10:00:00|2025-01-01T10:00:00|x|00:01:00|1:00|gres/gpu=1|"
            "COMPLETED|1",
            "job_id",
            "'101' appears twice",
        ),
    ],
)
def test_malformed_row_names_file_line_and_field(
    write: Write, row: str, field: str, problem: str
) -> None:
    path = write("sacct.txt", HEADER + ROWS[0] + "\n" + row + "\n")
    with pytest.raises(TraceError) as caught:
        read_trace(path, "sacct")
    assert str(caught.value).startswith(f"sacct.txt:3: {field}: ")
    assert problem in str(caught.value)


def test_limit(write: Write) -> None:
    trace = read_sacct(write("sacct.txt", HEADER + "\n".join(ROWS) + "\n"), limit=2)
    assert [j.job_id for j in trace.jobs] == ["101", "102_3"]
