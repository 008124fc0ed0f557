"""The machine a trace comes from, as a one-site catalogue: the twin replays a trace on its own
hardware unless a scenario names other sites.

==========  =========================================================================
format      the machine
==========  =========================================================================
swf         the header's ``MaxNodes`` nodes of ``MaxProcs / MaxNodes`` processors (one
            partition, GPU model ``processor``: the twin treats a processor as a slot)
alibaba     the node list beside the pod list (``openb_node_list_gpu_node.csv``): one
            partition per GPU model and GPUs per node (``v100m32-8gpu``, ``g2-8gpu``)
==========  =========================================================================

Other formats do not describe their cluster in the file, so they have no machine here.
What the trace does not say is stated, never guessed silently: an SWF site's country is
``XX`` (unknown) and its memory per slot 1 GB (no SWF job asks for GPU memory); the Alibaba
site is in ``CN`` (Alibaba's cluster), and the undisclosed models G1 to G3 are given
:data:`UNDISCLOSED_MEMORY_GB` (no pod of the trace asks for GPU memory, so the figure changes
no placement). Relative speeds of the Alibaba models are in
:data:`aifactories.twin.federation.DEFAULT_SPEED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifactories.catalogue.loader import Catalogue, parse_catalogue
from aifactories.domain.ids import SiteId
from aifactories.twin.trace_clusters_dl import dl_cluster
from aifactories.twin.traces.alibaba import alibaba_partitions, read_alibaba_nodes
from aifactories.twin.traces.swf import read_swf_machine

SWF_MODEL = "processor"
"""The GPU model of an SWF machine's slots: CPU logs hold processors, one slot each."""
UNKNOWN_COUNTRY = "XX"
"""ISO 3166's user-assigned code, for a machine whose country the trace does not give."""
ALIBABA_NODE_LISTS = ("openb_node_list_gpu_node.csv", "openb_node_list_all_node.csv")
UNDISCLOSED_MEMORY_GB = {"G1": 16, "G2": 16, "G3": 16}
"""G1-G3 are internal codes whose memory Alibaba does not publish: 16 GB, the smallest of the
disclosed models of the cluster, as a stated placeholder."""


@dataclass(frozen=True, slots=True)
class TraceMachine:
    """A trace's own machine: the catalogue, and one line saying what it is and whence."""

    catalogue: Catalogue
    description: str


def trace_machine(path: Path | str, format: str) -> TraceMachine | None:
    """The machine the trace at ``path`` describes, or None when its format or file has none
    (a format without a machine, an SWF header without MaxProcs or MaxNodes, an Alibaba pod
    list without its node list beside it)."""
    path = Path(path)
    if format == "swf":
        return _swf(path)
    if format == "alibaba":
        return _alibaba(path)
    cluster = dl_cluster(format)  # Pollux and Sia: their simulators' clusters
    if cluster is not None:
        return TraceMachine(_catalogue(cluster[0], f"{format} cluster"), cluster[1])
    return None


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return (slug or "trace")[:40].strip("-")


def _catalogue(site: dict[str, Any], source: str) -> Catalogue:
    return parse_catalogue({"version": 1, "sites": [site]}, source)


def _swf(path: Path) -> TraceMachine | None:
    machine = read_swf_machine(path)
    if machine is None:
        return None
    site = {
        "id": _slug(path.name.split(".")[0]),
        "name": machine.name,
        "country": UNKNOWN_COUNTRY,
        "supercomputer": machine.name,
        "status": "operational",
        "partitions": [
            {
                "name": "machine",
                "gpu_model": SWF_MODEL,
                "gpu_memory_gb": 1,
                "gpus_per_node": machine.procs_per_node,
                "nodes": machine.nodes,
            }
        ],
        "sources": [f"{path.name} header: MaxNodes, MaxProcs"],
    }
    description = (
        f"the trace's own machine: {machine.name}, {machine.nodes:,} nodes x "
        f"{machine.procs_per_node} processor{'s' if machine.procs_per_node != 1 else ''} "
        f"(SWF header of {path.name})"
    )
    return TraceMachine(_catalogue(site, f"{path.name} header"), description)


def _alibaba(path: Path) -> TraceMachine | None:
    nodes = next((path.parent / n for n in ALIBABA_NODE_LISTS if (path.parent / n).is_file()), None)
    if nodes is None:
        return None
    pools = read_alibaba_nodes(nodes)
    site_id = SiteId("alibaba-pai")
    partitions = alibaba_partitions(pools, site_id, UNDISCLOSED_MEMORY_GB)
    site = {
        "id": site_id,
        "name": "Alibaba PAI GPU cluster (openb)",
        "country": "CN",
        "supercomputer": "Alibaba PAI",
        "status": "operational",
        "partitions": [
            {
                "name": p.name,
                "gpu_model": p.gpu_model,
                "gpu_memory_gb": p.gpu_memory_gb,
                "gpus_per_node": p.gpus_per_node,
                "nodes": p.nodes,
            }
            for p in partitions
        ],
        "sources": [f"{nodes.name}: GPU model and count per node"],
    }
    gpus = sum(pool.total_gpus for pool in pools)
    description = (
        f"the trace's own machine: {sum(p.nodes for p in pools):,} GPU nodes, {gpus:,} GPUs in "
        f"{len(partitions)} partitions by model ({nodes.name})"
    )
    return TraceMachine(_catalogue(site, nodes.name), description)
