"""SWF (Parallel Workloads Archive): fields, statuses, -1, gzip, errors, and the NASA iPSC log."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from aifactories.twin.traces import TraceError, read_swf, read_trace
from tests.twin.traces.support import Write

HEADER = "; Version: 2.2\n; MaxProcs: 128\n;\n"


def swf_line(
    job: int,
    submit: int,
    runtime: float,
    procs: int,
    *,
    wait: int = -1,
    requested_procs: int = -1,
    requested_time: int = -1,
    status: int = 1,
    user: int = 3,
    group: int = 1,
    app: int = -1,
    queue: int = -1,
) -> str:
    fields = [job, submit, wait, runtime, procs, -1, -1, requested_procs, requested_time, -1]
    fields += [status, user, group, app, queue, -1, -1, -1]
    return " ".join(str(f) for f in fields) + "\n"


def test_maps_fields(write: Write) -> None:
    path = write(
        "log.swf",
        HEADER
        + swf_line(7, 100, 50, 32, wait=20, requested_time=3600, app=4, queue=1)
        + swf_line(8, 0, 10, -1, requested_procs=16, user=-1, group=-1, status=0),
    )
    trace = read_swf(path)
    first, second = trace.jobs
    assert (first.job_id, first.submit_s, first.gpus, first.user, first.group) == (
        "8",
        0.0,
        16,
        None,
        None,
    )
    assert first.get("status") == "0" and first.time_limit_s is None
    assert (second.runtime_s, second.gpus, second.recorded_wait_s) == (50.0, 32, 20.0)
    assert (second.time_limit_s, second.workload_class, second.user) == (3600.0, "app4", "3")
    assert second.get("queue") == "1" and second.nodes is None and second.gpu_model is None


def test_statuses_and_unknowns_are_skipped_as_documented(write: Write) -> None:
    lines = [
        swf_line(1, 0, 5, 1, status=1),
        swf_line(2, 1, 5, 1, status=0),
        swf_line(3, 2, 5, 1, status=-1),
        swf_line(4, 3, 5, 1, status=5),  # cancelled after it ran: kept
        swf_line(5, 4, 0, 1, status=5),
        swf_line(6, 5, 5, 1, status=2),
        swf_line(7, 6, 5, 1, status=3),
        swf_line(8, 7, 5, 1, status=4),
        swf_line(9, 8, -1, 1),
        swf_line(10, 9, 0, 1),
        swf_line(11, 10, 5, -1),
    ]
    trace = read_swf(write("log.swf", HEADER + "".join(lines)))
    assert [j.job_id for j in trace.jobs] == ["1", "2", "3", "4", "10"]
    assert dict(trace.skip_reasons) == {
        "cancelled before start": 1,
        "partial execution record": 3,
        "unknown runtime": 1,
        "unknown processors": 1,
    }
    assert trace.skipped == 6
    assert trace.jobs[-1].runtime_s == 0.0  # ran 0 s: kept, it held its place in the queue
    assert trace.notes == (("zero runtime (kept)", 1),)


def test_gzip_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "log.swf.gz"
    text = HEADER + "".join(swf_line(i, i * 10, 5, 2) for i in range(1, 6))
    path.write_bytes(gzip.compress(text.encode()))
    assert len(read_swf(path)) == 5
    assert [j.job_id for j in read_swf(path, limit=2).jobs] == ["1", "2"]


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ("1 0 -1 5 2 -1 -1 -1 -1 -1 1 3 1 -1 -1 -1 -1", "row", "expected 18 fields, got 17"),
        ("1 0 -1 5 x -1 -1 -1 -1 -1 1 3 1 -1 -1 -1 -1 -1", "allocated_processors", "'x'"),
        ("1 0 -1 -7 2 -1 -1 -1 -1 -1 1 3 1 -1 -1 -1 -1 -1", "run_time", "is negative"),
        ("1 -1 -1 5 2 -1 -1 -1 -1 -1 1 3 1 -1 -1 -1 -1 -1", "submit_time", "-1 (unknown)"),
        ("1 0 -1 5 2.5 -1 -1 -1 -1 -1 1 3 1 -1 -1 -1 -1 -1", "allocated_processors", "whole"),
    ],
)
def test_malformed_line_names_file_line_and_field(
    write: Write, line: str, field: str, problem: str
) -> None:
    path = write("log.swf", HEADER + swf_line(9, 0, 5, 1) + line + "\n")
    with pytest.raises(TraceError) as caught:
        read_swf(path)
    assert (caught.value.line, caught.value.field) == (5, field)
    assert str(caught.value).startswith(f"log.swf:5: {field}: ")
    assert problem in str(caught.value)


def test_real_nasa_ipsc_log(shared_traces: Path) -> None:
    path = shared_traces / "pwa-nasa-ipsc-1993" / "NASA-iPSC-1993-3.1-cln.swf.gz"
    trace = read_trace(path, "swf")
    # README: 18,239 jobs; 173 of them have a run time of 0 and are kept as zero-length jobs.
    assert len(trace) == 18_239 and trace.skipped == 0
    assert trace.notes == (("zero runtime (kept)", 173),)
    assert sum(1 for j in trace.jobs if j.runtime_s == 0) == 173
    assert max(j.gpus for j in trace.jobs) == 128
    # Header caveat: no wait times (field 3 is -1 throughout).
    assert all(j.recorded_wait_s is None for j in trace.jobs)
    first, last = trace.jobs[0], trace.jobs[-1]
    assert (first.job_id, first.submit_s, first.runtime_s, first.gpus) == ("1", 0.0, 1451.0, 128)
    assert (last.job_id, last.submit_s, last.runtime_s, last.gpus) == (
        "42264",
        7948936.0,
        86.0,
        128,
    )
    sizes = Counter(j.gpus for j in trace.jobs)
    assert set(sizes) == {1, 2, 4, 8, 16, 32, 64, 128}
    assert Counter(j.group for j in trace.jobs).keys() == {"1", "2"}
