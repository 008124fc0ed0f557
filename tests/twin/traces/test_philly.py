"""Philly per-job CSV: the mapping, each malformed row, and the real 82,247-job trace."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aifactories.twin.traces import Trace, TraceError, read_philly, read_trace
from tests.twin.traces.support import Write

HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"


def test_maps_columns_sorts_and_rebases(write: Write) -> None:
    path = write(
        "philly.csv",
        HEADER
        + "2017-10-09 08:00:00,60.0,1,60.0,vc-b\n"
        + "2017-10-09 07:00:00,3000.0,2,6000.0,vc-a\n"
        + "\n"
        + "2017-10-09 07:00:00,10.5,4,42.0,vc-c\n",
    )
    trace = read_philly(path)
    assert [j.job_id for j in trace.jobs] == ["000002", "000003", "000001"]
    first, second, third = trace.jobs
    assert (first.submit_s, first.runtime_s, first.gpus, first.group) == (0.0, 3000.0, 2, "vc-a")
    assert second.submit_s == 0.0 and second.runtime_s == 10.5
    assert third.submit_s == 3600.0
    assert trace.origin == "2017-10-09T07:00:00+00:00"
    assert first.nodes is None and first.user is None and first.recorded_wait_s is None
    assert trace.name == "philly.csv" and trace.source == path and trace.skipped == 0


def test_skips_zero_runtime_and_no_gpu(write: Write) -> None:
    path = write(
        "philly.csv",
        HEADER
        + "2017-10-09 08:00:00,0.0,1,0.0,a\n"
        + "2017-10-09 07:01:56,5.0,0,0.0,a\n"
        + "2017-10-09 07:01:57,5.0,1,5.0,a\n",
    )
    trace = read_philly(path)
    assert len(trace) == 1
    assert trace.skip_reasons == (("no GPU", 1), ("zero runtime", 1))
    assert "2 skipped" in trace.summary()


def test_limit_keeps_the_first_rows_in_file_order(write: Write) -> None:
    rows = [f"2017-10-09 07:0{9 - i}:00,5.0,1,5.0,a\n" for i in range(5)]
    trace = read_philly(write("philly.csv", HEADER + "".join(rows)), limit=2)
    assert sorted(j.job_id for j in trace.jobs) == ["000001", "000002"]
    assert len(read_philly(write("p2.csv", HEADER + "".join(rows)), limit=0)) == 0


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ("2017-10-09 08:00:00,66.0,abc,66.0,x", "num_gpus", "'abc' is not a whole number"),
        ("2017-10-09 08:00:00,66.0,1.5,99.0,x", "num_gpus", "'1.5' is not a whole number"),
        ("2017-10-09 08:00:00,-3,1,-3,x", "duration", "'-3' is below the minimum 0"),
        ("2017-10-09 08:00:00,nan,1,1,x", "duration", "'nan' is not a finite number"),
        ("yesterday,66.0,1,66.0,x", "timestamp", "'yesterday' is neither a date-time"),
        ("2017-10-09 08:00:00,66.0,2,66.0,x", "gpu_time", "is not duration x num_gpus"),
        ("2017-10-09 08:00:00,66.0,1,66.0", "row", "expected 5 fields, got 4"),
    ],
)
def test_malformed_row_names_file_line_and_field(
    write: Write, row: str, field: str, problem: str
) -> None:
    path = write("philly.csv", HEADER + "2017-10-09 08:00:00,1.0,1,1.0,ok\n" + row + "\n")
    with pytest.raises(TraceError) as caught:
        read_philly(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), 3, field)
    assert str(error).startswith(f"philly.csv:3: {field}: ")
    assert problem in str(error)


def test_missing_column_fails_on_the_header(write: Write) -> None:
    with pytest.raises(TraceError, match=r"philly.csv:1: cluster: missing column"):
        read_philly(write("philly.csv", "timestamp,duration,num_gpus,gpu_time\n"))


def test_gzip_is_read_by_content(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "philly.csv.anything"
    path.write_bytes(gzip.compress((HEADER + "2017-10-09 08:00:00,5.0,1,5.0,a\n").encode()))
    assert len(read_philly(path)) == 1


@pytest.fixture(scope="module")
def real(shared_traces: Path) -> Trace:
    return read_trace(shared_traces / "philly-pollux" / "philly.csv", "philly")


def test_real_philly_counts_from_its_readme(real: Trace) -> None:
    trace = real

    assert len(trace) == 82_247 and trace.skipped == 0
    gpus = Counter(j.gpus for j in trace.jobs)
    assert (gpus[1], gpus[2], gpus[4], gpus[8], gpus[16], gpus[32]) == (
        76_627,
        1_818,
        1_870,
        1_643,
        199,
        67,
    )
    assert max(gpus) == 128
    clusters = Counter(j.group for j in trace.jobs)
    assert len(clusters) == 15
    assert (clusters["6214e9"], clusters["11cb48"], clusters["6c71a0"]) == (41_226, 16_091, 9_953)
    runtimes = [j.runtime_s for j in trace.jobs]
    assert statistics.median(runtimes) == 1_144
    assert round(statistics.fmean(runtimes)) == 13_136
    assert 4.5e6 < max(runtimes) < 4.7e6
    assert sum(r < 60 for r in runtimes) == 7_654


def test_real_philly_calendar(real: Trace) -> None:
    trace = real

    assert trace.origin == "2017-09-04T10:30:41+00:00"
    start = datetime.fromisoformat(trace.origin)
    last = start + timedelta(seconds=trace.jobs[-1].submit_s)
    assert last.isoformat() == "2017-12-22T08:02:11+00:00"
    months = Counter((start + timedelta(seconds=j.submit_s)).month for j in trace.jobs)
    assert (months[9], months[10], months[11], months[12]) == (5_657, 47_192, 21_318, 8_080)
