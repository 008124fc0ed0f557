"""Write a site catalogue that points the platform at local Slurm sites (``aif up --sites``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from aifactories.localslurm.config import REST_API, SiteLayout
from aifactories.localslurm.install import JOB_USER

# Local sites stand for factories in different countries, so residency rules have a choice.
COUNTRIES = ("DE", "FR", "IT", "ES", "FI", "SE", "AT", "NL")
GPU_MEMORY_GB = {"a100": 40, "h100": 80, "mi250x": 128}


def executor_options(layout: SiteLayout, backend: str) -> dict[str, str | int | float | bool]:
    """The catalogue ``executor`` block of one local site for the ``cli`` or ``rest`` back-end."""
    if backend == "cli":
        return {
            "kind": "slurm_cli",
            "slurm_conf": str(layout.slurm_conf),
            "output_dir": str(layout.output_dir),
        }
    if backend == "rest":
        return {
            "kind": "slurm_rest",
            "url": layout.rest_url,
            "user": JOB_USER,
            "jwt_key_file": str(layout.jwt_key),
            "api_version": REST_API,
            "output_dir": str(layout.output_dir),
            # accounts and usage go through sacctmgr/sacct, which need the site's config
            "slurm_conf": str(layout.slurm_conf),
        }
    raise ValueError(f"unknown back-end {backend!r}: use 'cli' or 'rest'")


def catalogue_entry(
    layout: SiteLayout, backend: str, billing_weight: float = 1.0
) -> dict[str, object]:
    return {
        "id": layout.name,
        "name": f"Local Slurm {layout.name}",
        "country": COUNTRIES[(layout.index - 1) % len(COUNTRIES)],
        "supercomputer": f"local Slurm cluster {layout.name} ({layout.nodes} nodes)",
        "status": "operational",
        "partitions": [
            {
                "name": layout.partition,
                "gpu_model": layout.gpu_type.upper(),
                "gpu_memory_gb": GPU_MEMORY_GB.get(layout.gpu_type.lower(), 40),
                "gpus_per_node": layout.gpus_per_node,
                "nodes": layout.nodes,
                "billing_weight": billing_weight,
            }
        ],
        "executor": executor_options(layout, backend),
        "sources": [str(layout.slurm_conf)],
    }


def write_sites_file(path: Path, layouts: Sequence[SiteLayout], backend: str = "cli") -> Path:
    data = {"version": 1, "sites": [catalogue_entry(layout, backend) for layout in layouts]}
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Local Slurm sites written by scripts/slurm-sites; use: aif up --sites THIS_FILE\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
