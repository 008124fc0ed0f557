"""The clusters the Pollux and Sia workloads were simulated on, as one-site catalogue data.

Neither workload file describes its cluster; the papers' simulators fix it, so a ``pollux`` or
``sia`` trace brings that cluster as its own machine (twin/trace_sites.py wires it in):

- ``pollux``: 16 nodes of 4 NVIDIA T4 (AWS g4dn.12xlarge), 64 GPUs: the defaults of Pollux's
  simulator (petuum/adaptdl, osdi21-artifact, ``simulator/simulator.py``: ``--min-nodes 16``,
  ``--num-gpus 4``), the cluster of its Section 5.3 results.
- ``sia``: Sia's "Heterogeneous" cluster, 6 nodes of 4 T4 (aws), 3 of 8 RTX 2080Ti (rtx) and
  2 DGX-A100 of 8 A100-40GB (dgx-ext), 64 GPUs (siasosp23/artifacts, commit aaf7a0d,
  ``sia-simulator/simulator_config.py``: ``cluster_nnodes = {aws: 6, dgx-ext: 2, rtx: 3}``,
  "default for experiments", and ``cluster_ngpus_per_node``).

GPU models are named as the profiles name them (:data:`~aifactories.twin.traces._profiles.
GPU_PROFILES`), so the speed matrix built from the profiles applies to them. Country ``US``
(both clusters are AWS and CMU machines); memory per GPU as the vendors publish it.
"""

from __future__ import annotations

from typing import Any

DL_FORMATS = ("pollux", "sia")

_T4 = {"gpu_model": "T4", "gpu_memory_gb": 16}
_RTX = {"gpu_model": "RTX2080Ti", "gpu_memory_gb": 11}
_A100 = {"gpu_model": "A100-40GB", "gpu_memory_gb": 40}

_CLUSTERS: dict[str, tuple[str, list[dict[str, Any]], str]] = {
    "pollux": (
        "Pollux simulator cluster (OSDI'21)",
        [{"name": "t4", **_T4, "gpus_per_node": 4, "nodes": 16}],
        "Pollux's simulator defaults (--min-nodes 16, --num-gpus 4; AWS g4dn.12xlarge)",
    ),
    "sia": (
        "Sia heterogeneous cluster (SOSP'23)",
        [
            {"name": "aws-t4", **_T4, "gpus_per_node": 4, "nodes": 6},
            {"name": "rtx-2080ti", **_RTX, "gpus_per_node": 8, "nodes": 3},
            {"name": "dgx-a100", **_A100, "gpus_per_node": 8, "nodes": 2},
        ],
        "Sia's simulator_config.py: 6 aws (4 T4), 3 rtx (8 RTX 2080Ti), 2 dgx-ext (8 A100)",
    ),
}


def dl_cluster(format: str) -> tuple[dict[str, Any], str] | None:
    """The cluster of a ``pollux`` or ``sia`` trace as a catalogue site (the format
    :func:`~aifactories.catalogue.loader.parse_catalogue` reads) and a line saying what it
    is; None for any other format."""
    if format not in _CLUSTERS:
        return None
    name, partitions, source = _CLUSTERS[format]
    site = {
        "id": f"{format}-cluster",
        "name": name,
        "country": "US",
        "supercomputer": name,
        "status": "operational",
        "partitions": [dict(p) for p in partitions],
        "sources": [source],
    }
    gpus = sum(p["gpus_per_node"] * p["nodes"] for p in partitions)
    models = ", ".join(f"{p['nodes']} x {p['gpus_per_node']} {p['gpu_model']}" for p in partitions)
    return site, f"the trace's own cluster: {name}, {gpus} GPUs ({models})"
