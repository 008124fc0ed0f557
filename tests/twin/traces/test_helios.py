"""Helios and Acme per-job CSVs (no per-job file is in the shared traces: synthetic files only)."""

from __future__ import annotations

import pytest

from aifactories.twin.traces import TraceError, read_helios, read_trace
from tests.twin.traces.support import Write

HELIOS_HEADER = (
    "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue\n"
)
HELIOS = HELIOS_HEADER + "".join(  # invented rows in Helios's layout
    f"{row}\n"
    for row in (
        "11,uA,vcX,1,1,1,COMPLETED,2020-06-09 10:00:00,2020-06-09 10:00:00,"
        "2020-06-09 20:00:00,36000,0",
        "12,uB,vcY,4,16,1,FAILED,2020-06-09 10:00:30,2020-06-09 10:02:30,"
        "2020-06-09 10:06:40,250,120",
        "13,uC,vcY,0,8,1,COMPLETED,2020-06-09 10:01:00,2020-06-09 10:01:00,"
        "2020-06-09 10:09:00,480,0",
        "14,uC,vcY,8,8,1,CANCELLED,2020-06-09 10:02:00,,2020-06-09 10:09:00,0,0",
        "15,uD,vcZ,16,64,2,COMPLETED,2020-06-09 10:03:00,2020-06-09 10:03:10,"
        "2020-06-09 10:03:10,0,10",
    )
)

ACME = (  # invented rows in Acme's layout (zoned date-times, a type, no vc)
    "job_id,user,node_num,gpu_num,cpu_num,type,state,submit_time,start_time,end_time,duration,"
    "queue,gpu_time\n"
    "901,u0001,1,8,128,Other,FAILED,2023-03-01 00:10:00+08:00,2023-03-01 00:10:30+08:00,"
    "2023-03-01 00:12:30+08:00,120,30,960.0\n"
    "902,u0001,1,8,128,SFT,COMPLETED,2023-03-01 00:15:00+08:00,2023-03-01 00:15:10+08:00,"
    "2023-03-01 01:00:00+08:00,2690,10,21520.0\n"
)


def test_maps_helios(write: Write) -> None:
    trace = read_helios(write("cluster_log.csv", HELIOS))
    assert [j.job_id for j in trace.jobs] == ["11", "12"]
    a, b = trace.jobs
    assert (a.submit_s, a.runtime_s, a.gpus, a.nodes, a.user, a.group) == (
        0.0,
        36000.0,
        1,
        1,
        "uA",
        "vcX",
    )
    assert (b.submit_s, b.recorded_wait_s, b.get("state"), b.get("cpu_num")) == (
        30.0,
        120.0,
        "FAILED",
        "16",
    )
    assert trace.origin == "2020-06-09T10:00:00+00:00"
    assert dict(trace.skip_reasons) == {"no GPU": 1, "cancelled before start": 1, "zero runtime": 1}


def test_maps_acme_with_zones_and_type(write: Write) -> None:
    trace = read_trace(write("trace_seren.csv", ACME), "helios")
    a, b = trace.jobs
    assert trace.origin == "2023-02-28T16:10:00+00:00"
    assert (a.runtime_s, a.recorded_wait_s, a.workload_class, a.group) == (
        120.0,
        30.0,
        "Other",
        None,
    )
    assert (b.submit_s, b.workload_class, b.gpus, b.nodes) == (300.0, "SFT", 8, 1)


def test_epoch_times_and_runtime_from_start_end(write: Write) -> None:
    path = write(
        "log.csv",
        "job_id,gpu_num,submit_time,start_time,end_time\n"
        "a,2,1600000000,1600000010,1600000110\n"
        "b,1,1600000005,,\n"
        "c,1,1600000001,1599999990,1600000000\n",
    )
    trace = read_helios(path)
    assert [(j.job_id, j.submit_s, j.runtime_s) for j in trace.jobs] == [
        ("a", 0.0, 100.0),
        ("c", 1.0, 10.0),
    ]
    assert trace.skip_reasons == (("never started", 1),)
    # c started before it was submitted: a clock glitch, so its recorded wait is dropped.
    assert [j.recorded_wait_s for j in trace.jobs] == [10.0, None]
    assert trace.note_count("start before submit (wait dropped)") == 1


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ("9,u,vc,x,1,1,COMPLETED,2020-06-09 10:00:00,,,5,0", "gpu_num", "'x' is not a whole"),
        ("9,u,vc,1,1,1,COMPLETED,09/06/2020,,,5,0", "submit_time", "neither a date-time"),
        ("9,u,vc,1,1,1,COMPLETED,2020-06-09 10:00:00,,,-5,0", "duration", "below the minimum"),
        ("9,u,vc,1,1,1,COMPLETED,2020-06-09 10:00:00,,,5", "row", "expected 12 fields, got 11"),
    ],
)
def test_malformed_row_names_file_line_and_field(
    write: Write, row: str, field: str, problem: str
) -> None:
    path = write(
        "cluster_log.csv", HELIOS.splitlines()[0] + "\n" + HELIOS.splitlines()[1] + "\n" + row
    )
    with pytest.raises(TraceError) as caught:
        read_helios(path)
    assert str(caught.value).startswith(f"cluster_log.csv:3: {field}: ")
    assert problem in str(caught.value)


def test_needs_a_runtime_source(write: Write) -> None:
    with pytest.raises(TraceError, match=r"x\.csv:1: duration: missing column"):
        read_helios(write("x.csv", "job_id,gpu_num,submit_time\n1,1,0\n"))
    with pytest.raises(TraceError, match=r"x\.csv:1: gpu_num: missing column"):
        read_helios(write("x.csv", "job_id,submit_time,duration\n1,0,5\n"))
