"""Alibaba GPU 2023 (openb): pods, fractional GPUs, node pools and partitions, the real files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import SiteId
from aifactories.twin.traces import (
    NodePool,
    TraceError,
    alibaba_partitions,
    read_alibaba,
    read_alibaba_nodes,
    read_trace,
)
from tests.twin.traces.support import Write

HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time\n"
)
PODS = (
    HEADER
    + "pod-a,12000,16384,1,1000,,LS,Running,0,500,0\n"
    + "pod-b,6000,12288,1,460,V100M16|V100M32,BE,Succeeded,10,110,40\n"
    + "pod-c,8000,30517,8,1000,G2,LS,Failed,20,80,20\n"
    + "pod-d,8000,30517,1,1000,,BE,Pending,30,35,\n"
    + "pod-e,8000,30517,0,0,,BE,Running,40,90,40\n"
    + "pod-f,8000,30517,2,1000,,LS,Running,50,50,50\n"
)


def test_maps_pods(write: Write) -> None:
    trace = read_alibaba(write("pods.csv", PODS))
    assert [j.job_id for j in trace.jobs] == ["pod-a", "pod-b", "pod-c", "pod-f"]
    a, b, c, f = trace.jobs
    assert (a.submit_s, a.runtime_s, a.gpus, a.group, a.gpu_model) == (0.0, 500.0, 1, "LS", None)
    assert a.get("pod_phase") == "Running" and a.get("cpu_milli") == "12000"
    assert (b.runtime_s, b.recorded_wait_s, b.gpus, b.gpu_model) == (
        70.0,
        30.0,
        1,
        "V100M16|V100M32",
    )
    assert b.get("gpu_milli") == "460"
    assert (c.gpus, c.gpu_model, c.get("pod_phase")) == (8, "G2", "Failed")
    assert (a.gpu_models, b.gpu_models, c.gpu_models) == (
        frozenset(),
        frozenset({"V100M16", "V100M32"}),
        frozenset({"G2"}),
    )
    assert (f.runtime_s, f.gpus) == (0.0, 2)  # deleted when scheduled: kept, zero-length
    assert dict(trace.skip_reasons) == {"never scheduled": 1, "no GPU": 1}
    assert trace.notes == (("fractional GPU rounded up", 1), ("zero runtime (kept)", 1))


def test_fractional_pods_can_be_skipped(write: Write) -> None:
    trace = read_alibaba(write("pods.csv", PODS), fractional="skip")
    assert [j.job_id for j in trace.jobs] == ["pod-a", "pod-c", "pod-f"]
    assert trace.skip_count("fractional GPU") == 1
    assert trace.notes == (("zero runtime (kept)", 1),)
    with pytest.raises(InvalidInput, match="fractional"):
        read_alibaba(write("p.csv", PODS), fractional="half")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ("x,1,1,one,1000,,LS,Running,0,5,0", "num_gpu", "'one' is not a whole number"),
        ("x,1,1,1,1500,,LS,Running,0,5,0", "gpu_milli", "above 1000"),
        ("x,1,1,1,1000,,LS,Running,-4,5,0", "creation_time", "below the minimum"),
        ("x,1,1,1,1000,,LS,Running,0,5,9", "deletion_time", "before scheduled_time"),
        ("x,1,1,1,1000,,LS,Running,0,5", "row", "expected 11 fields, got 10"),
        ("pod-a,1,1,1,1000,,LS,Running,0,5,0", "job_id", "'pod-a' appears twice"),
    ],
)
def test_malformed_pod_names_file_line_and_field(
    write: Write, row: str, field: str, problem: str
) -> None:
    path = write("pods.csv", HEADER + "pod-a,1,1,1,1000,,LS,Running,0,5,0\n" + row + "\n")
    with pytest.raises(TraceError) as caught:
        read_alibaba(path)
    assert str(caught.value).startswith(f"pods.csv:3: {field}: ")
    assert problem in str(caught.value)


def test_nodes_become_pools_and_partitions(write: Write) -> None:
    path = write(
        "nodes.csv",
        "sn,cpu_milli,memory_mib,gpu,model\n"
        "n0,32000,262144,0,\n"
        "n1,64000,262144,2,P100\n"
        "n2,16000,122880,2,P100\n"
        "n3,96000,786432,8,V100M32\n",
    )
    pools = read_alibaba_nodes(path)
    assert pools == (NodePool("P100", 2, 2), NodePool("V100M32", 8, 1))
    parts = alibaba_partitions(pools, SiteId("openb"))
    assert [(p.name, p.gpu_memory_gb, p.total_gpus) for p in parts] == [
        ("p100-2gpu", 16, 4),
        ("v100m32-8gpu", 32, 8),
    ]
    with pytest.raises(InvalidInput, match="G2"):
        alibaba_partitions((NodePool("G2", 8, 3),), SiteId("openb"))
    assert alibaba_partitions((NodePool("G2", 8, 3),), SiteId("x"), {"G2": 40})[0].nodes == 3


def test_real_default_pods(shared_traces: Path) -> None:
    folder = shared_traces / "alibaba-gpu-2023"
    trace = read_trace(folder / "openb_pod_list_default.csv", "alibaba")
    # README: 8,152 pods; 1,088 ask for no GPU (1,052 of them were scheduled); 897 stayed Pending.
    assert len(trace) + trace.skipped == 8_152
    assert dict(trace.skip_reasons) == {"never scheduled": 897, "no GPU": 1_052}
    assert len(trace) == 6_203
    # 3,078 pods ask for a GPU fraction; 2,573 of them were scheduled and are rounded up.
    assert trace.note_count("fractional GPU rounded up") == 2_573
    gpus = Counter(j.gpus for j in trace.jobs)
    assert gpus == {1: 6_129, 8: 44, 2: 15, 4: 15}
    qos = Counter(j.group for j in trace.jobs)
    assert qos == {"LS": 3_590, "BE": 2_510, "Burstable": 97, "Guaranteed": 6}
    first = trace.jobs[0]
    assert (first.job_id, first.submit_s, first.runtime_s) == ("openb-pod-0000", 0.0, 12_537_496.0)
    assert max(j.submit_s + j.runtime_s for j in trace.jobs) == 12_902_960  # about 149 days


def test_real_gpuspec33_and_multigpu50(shared_traces: Path) -> None:
    folder = shared_traces / "alibaba-gpu-2023"
    spec = read_alibaba(folder / "openb_pod_list_gpuspec33.csv", fractional="skip")
    assert len(spec) + spec.skipped == 8_152 and spec.skip_count("fractional GPU") == 2_573
    assert sum(j.gpu_model is not None for j in spec.jobs) > 0
    models = Counter(
        j.gpu_model for j in read_alibaba(folder / "openb_pod_list_gpuspec33.csv").jobs
    )
    assert (models["T4"], models["G2"]) == (1_132, 300)
    with pytest.raises(TraceError, match=r"multigpu50.csv:1: gpu_spec: missing column"):
        read_alibaba(folder / "openb_pod_list_multigpu50.csv")


def test_real_nodes(shared_traces: Path) -> None:
    folder = shared_traces / "alibaba-gpu-2023"
    pools = read_alibaba_nodes(folder / "openb_node_list_gpu_node.csv")
    by_model: Counter[str] = Counter()
    gpus_by_model: Counter[str] = Counter()
    for pool in pools:
        by_model[pool.gpu_model] += pool.nodes
        gpus_by_model[pool.gpu_model] += pool.total_gpus
    # README: GPU nodes by model (nodes / GPUs).
    assert {m: (by_model[m], gpus_by_model[m]) for m in by_model} == {
        "G2": (549, 4_392),
        "T4": (404, 842),
        "P100": (134, 265),
        "V100M16": (55, 195),
        "G3": (39, 312),
        "V100M32": (30, 204),
        "A10": (2, 2),
    }
    assert sum(by_model.values()) == 1_213
    assert read_alibaba_nodes(folder / "openb_node_list_all_node.csv") == pools
    parts = alibaba_partitions(pools, SiteId("openb"), {"G2": 32, "G3": 32})
    assert sum(p.total_gpus for p in parts) == 6_212
