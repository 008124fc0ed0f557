"""Pollux and Sia workloads: runtimes priced from profiles (toy profile by hand), errors, and the
real workloads with the real profiles."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces import TraceError, read_pollux, read_sia, read_trace

VALIDATION = "progress,iteration,metric,grad_sqr,grad_var\n"
WORKLOAD = "name,time,application,num_replicas,batch_size\n"


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    """A toy ``bert`` profile small enough to price by hand (bert trains 2 epochs)."""
    bert = tmp_path / "artifact" / "profiles" / "bert"
    bert.mkdir(parents=True)
    (bert / "validation-96.csv").write_text(VALIDATION + "1,100,0,0,0\n2,200,0,0,0\n")
    (bert / "validation-384.csv").write_text(VALIDATION + "1,50,0,0,0\n2,80,0,0,0\n")
    (bert / "placements.csv").write_text(
        "placement,local_bsz,step_time,sync_time\n"
        "1,4,0.4,0.01\n1,8,0.8,0.02\n"
        "4,4,0.5,0.1\n4,8,0.9,0.1\n"
        "44,4,0.6,0.2\n44,8,1.0,0.3\n44,8,1.0,0.3\n"
    )
    (bert / "scalability.csv").write_text(
        "num_nodes,num_replicas,local_bsz,step_time,sync_time\n3,12,4,0.7,0.3\n3,12,8,1.1,0.4\n"
    )
    (bert / "placements-azure.csv").write_text(
        "local_bsz,step_time,sync_time,placement\n4,0.2,0.05,8\n8,0.3,0.05,8\n"
    )
    return tmp_path / "artifact" / "profiles"


def workload(profiles: Path, rows: str) -> Path:
    path = profiles.parent / "workloads" / "toy" / "workload-1.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(WORKLOAD + rows)
    return path


def test_prices_rigid_runtimes_by_hand(profiles: Path) -> None:
    path = workload(
        profiles,
        "bert-0,0,bert,4,96\n"  # 1 node; local 24 > 8: 2 accumulation steps of atomic 8
        "bert-1,10,bert,8,240\n"  # 2 nodes (44); iterations halfway between 96 and 384
        "bert-2,20,bert,12,384\n"  # 3 nodes: no placement rows, the scalability grid line
        "bert-3,30,bert,2,96\n"  # placement 2: not measured anywhere
        "bert-4,40,bert,4,1000\n"  # batch above the profiled 384
        "cifar10-5,50,cifar10,1,128\n"  # no profile folder
        "gpt_pmp-6,60,gpt_pmp,2,12\n",  # pipeline model: not supported
    )
    trace = read_pollux(path, profiles=profiles)
    a, b, c = trace.jobs
    # step = 0.9 + 2 x (0.9 - 0.1) = 2.5 s; 200 iterations.
    assert a.runtime_s == pytest.approx(500.0) and (a.get("profile_nodes"), a.gpus) == ("1", 4)
    # step = 1.0 + 3 x (1.0 - 0.3) = 3.1 s; iterations 200 + (80 - 200) x 144 / 288 = 140.
    assert b.runtime_s == pytest.approx(434.0) and b.get("profile_nodes") == "2"
    # step = 1.1 + 3 x (1.1 - 0.4) = 3.2 s; 80 iterations.
    assert c.runtime_s == pytest.approx(256.0) and c.get("profile_nodes") == "3"
    # the packing priced the runtime; on the cluster the twin packs the gang itself
    assert a.nodes is None and b.nodes is None and c.nodes is None
    assert (a.gpu_model, a.workload_class, a.get("batch_size"), a.get("profile")) == (
        "T4",
        "bert",
        "96",
        "pollux",
    )
    assert (b.submit_s, b.get("accumulation_steps")) == (10.0, "3")
    assert dict(trace.skip_reasons) == {
        "configuration outside the profile": 1,
        "batch size outside the profile": 1,
        "no profile for the application": 2,
    }
    assert trace.notes == (("runtime from the T4 profile", 3),)


def test_other_gpu_profile_and_discovery(profiles: Path) -> None:
    path = workload(profiles, "bert-0,0,bert,8,96\nbert-1,5,bert,12,96\n")
    # Found two levels above workloads/toy/; 8 GPUs per azure node; local 12 > 8: 1 accumulation.
    trace = read_sia(path, gpu_profile="azure")
    assert [j.job_id for j in trace.jobs] == ["bert-0"]
    job = trace.jobs[0]
    # atomic 6: step 0.25, sync 0.05 -> 0.25 + 0.2 = 0.45 s x 200 iterations.
    assert job.runtime_s == pytest.approx(90.0) and job.gpu_model == "V100"
    assert trace.skip_reasons == (("configuration outside the profile", 1),)
    with pytest.raises(InvalidInput, match="gpu_profile: unknown 'h100'"):
        read_sia(path, gpu_profile="h100")


def test_without_profiles_says_where_runtimes_come_from(tmp_path: Path) -> None:
    path = tmp_path / "workload-1.csv"
    path.write_text(WORKLOAD + "bert-0,0,bert,4,96\n")
    with pytest.raises(InvalidInput, match=r"profiles: workload-1\.csv has no runtimes"):
        read_pollux(path)
    with pytest.raises(InvalidInput, match="only the pollux and sia formats"):
        read_trace(path, "philly", profiles=tmp_path)


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ("bert-9,0,bert,0,96", "num_replicas", "below the minimum 1"),
        ("bert-9,-1,bert,4,96", "time", "below the minimum 0"),
        ("bert-9,0,bert,4,big", "batch_size", "'big' is not a whole number"),
        ("bert-9,0,,4,96", "application", "is empty"),
        ("bert-9,0,bert,4", "row", "expected 5 fields, got 4"),
    ],
)
def test_malformed_row_names_file_line_and_field(
    profiles: Path, row: str, field: str, problem: str
) -> None:
    path = workload(profiles, "bert-0,0,bert,4,96\n" + row + "\n")
    with pytest.raises(TraceError) as caught:
        read_pollux(path, profiles=profiles)
    assert str(caught.value).startswith(f"workload-1.csv:3: {field}: ")
    assert problem in str(caught.value)


def test_real_pollux_workloads(shared_traces: Path) -> None:
    folder = shared_traces / "philly-pollux" / "pollux-workloads"
    profiles = shared_traces / "sia-hetero" / "profiles"
    traces = [
        read_trace(folder / f"workload-{n}.csv", "pollux", profiles=profiles) for n in range(1, 9)
    ]
    # README: 8 files x 160 jobs, every configuration priced by the Pollux profile.
    assert [len(t) for t in traces] == [160] * 8 and all(t.skipped == 0 for t in traces)
    apps = Counter(j.workload_class for t in traces for j in t.jobs)
    assert apps == {
        "cifar10": 495,
        "ncf": 503,
        "deepspeech2": 111,
        "bert": 86,
        "yolov3": 59,
        "imagenet": 26,
    }
    first = traces[0].jobs[0]
    assert (first.job_id, first.submit_s, first.gpus, first.get("batch_size")) == (
        "cifar10-0",
        107.0,
        6,
        "2048",
    )
    assert first.get("profile_nodes") == "2" and first.gpu_model == "T4"
    # Pollux's generator only offers configurations whose runtime is under 12 hours.
    runtimes = [j.runtime_s for t in traces for j in t.jobs]
    assert max(runtimes) < 12 * 3600 and min(runtimes) > 30  # ncf on 1 GPU: 33 s
    assert all(j.submit_s < 8 * 3600 for t in traces for j in t.jobs)


def test_real_sia_workloads(shared_traces: Path) -> None:
    folder = shared_traces / "sia-hetero" / "workloads"
    counts: Counter[str] = Counter()
    for path in sorted(folder.glob("*/workload-*.csv")):
        trace = read_sia(path)
        assert trace.skipped == 0, trace.summary()
        counts[path.parent.name] += len(trace)
    # README: philly 8 x 160, saturn 10 x 160, newtrace 10 x 960.
    assert counts == {"philly": 1_280, "saturn": 1_600, "newtrace": 9_600}
    a100 = read_sia(folder / "philly" / "workload-1.csv", gpu_profile="dgx-ext")
    assert len(a100) + a100.skipped == 160 and a100.jobs[0].gpu_model == "A100-40GB"
