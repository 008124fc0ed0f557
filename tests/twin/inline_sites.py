"""Small inline federations for twin tests: one site of one A100 partition, as a scenario's
``sites:`` mapping (docs/catalogue.md)."""

from __future__ import annotations

from typing import Any


def one_site(gpus_per_node: int = 4, nodes: int = 4) -> dict[str, Any]:
    """Site ``a`` (IT) with partition ``p``: ``nodes`` nodes of ``gpus_per_node`` A100s."""
    partition = {
        "name": "p",
        "gpu_model": "A100",
        "gpu_memory_gb": 64,
        "gpus_per_node": gpus_per_node,
        "nodes": nodes,
    }
    site = {
        "id": "a",
        "name": "A",
        "country": "IT",
        "supercomputer": "A",
        "status": "operational",
        "partitions": [partition],
    }
    return {"sites": [site]}
