"""The trace model, the error type and the format registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces import FORMATS, Trace, TraceError, TraceJob, read_trace


def test_trace_job_guards_its_invariants() -> None:
    job = TraceJob("a", 0.0, 10.0, 2, extra=(("k", "v"),))
    assert job.gpu_seconds == 20.0 and job.get("k") == "v" and job.get("x") is None
    for bad in (
        {"submit_s": -1.0},
        {"runtime_s": -1.0},
        {"runtime_s": float("inf")},
        {"gpus": 0},
        {"nodes": 0},
        {"time_limit_s": 0.0},
        {"recorded_wait_s": -1.0},
        {"min_gpu_memory_gb": -1},
        {"gpu_models": frozenset({""})},
    ):
        fields = {"job_id": "a", "submit_s": 0.0, "runtime_s": 1.0, "gpus": 1} | bad
        with pytest.raises(InvalidInput):
            TraceJob(**fields)  # type: ignore[arg-type]
    # A job that ran 0 s is a job (it held its place in the queue), not an error.
    assert TraceJob("z", 0.0, 0.0, 1).gpu_seconds == 0.0


def test_trace_is_sorted_and_counts_add_up() -> None:
    jobs = (TraceJob("b", 0.0, 1.0, 1), TraceJob("a", 1.0, 1.0, 1))
    trace = Trace("t", None, jobs, skipped=2, skip_reasons=(("x", 2),), notes=(("y", 1),))
    assert len(trace) == 2 and trace.skip_count("x") == 2 and trace.note_count("y") == 1
    assert trace.summary() == "t: 2 jobs, 2 skipped (x: 2); y: 1"
    many = Trace("t", None, jobs, skipped=1500, skip_reasons=(("x", 1500),), notes=(("y", 1200),))
    assert many.summary() == "t: 2 jobs, 1,500 skipped (x: 1,500); y: 1,200"
    with pytest.raises(InvalidInput, match="sorted"):
        Trace("t", None, tuple(reversed(jobs)))
    with pytest.raises(InvalidInput, match="skipped"):
        Trace("t", None, jobs, skipped=1)


def test_trace_error_is_invalid_input_with_location() -> None:
    error = TraceError(Path("/data/philly.csv"), 1234, "num_gpus", "'abc' is not a whole number")
    assert isinstance(error, InvalidInput)
    assert str(error) == error.message == "philly.csv:1234: num_gpus: 'abc' is not a whole number"
    assert (error.file, error.line, error.field) == ("/data/philly.csv", 1234, "num_gpus")


def test_registry_lists_formats(tmp_path: Path) -> None:
    assert FORMATS == ("philly", "swf", "alibaba", "helios", "pollux", "sia", "sacct")
    with pytest.raises(InvalidInput) as caught:
        read_trace(tmp_path / "x.csv", "csv")
    assert caught.value.field == "format"
    assert "philly, swf, alibaba, helios, pollux, sia, sacct" in str(caught.value)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such trace file"):
        read_trace(tmp_path / "absent.csv", "philly")
    with pytest.raises(InvalidInput, match="is a directory"):
        read_trace(tmp_path, "swf")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TraceError, match=r"empty\.csv:1: row: the file is empty"):
        read_trace(tmp_path / "empty.csv", "helios")


def test_non_utf8_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"timestamp,duration,num_gpus,gpu_time,cluster\n\xff\xfe,1,1,1,a\n")
    with pytest.raises(TraceError, match="not UTF-8"):
        read_trace(path, "philly")


def test_truncated_gzip_is_a_trace_error(tmp_path: Path) -> None:
    import gzip

    body = "".join(f"{i} {i} -1 5 1 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n" for i in range(1, 2000))
    path = tmp_path / "cut.swf.gz"
    path.write_bytes(gzip.compress(body.encode())[:-40])
    with pytest.raises(TraceError, match="unreadable"):
        read_trace(path, "swf")
