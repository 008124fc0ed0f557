"""Jobs per second the broker submits to real local Slurm sites, through each back-end.

Starts local Slurm clusters (root; Debian's Slurm is installed if missing) with large fake
nodes, so that capacity never limits a cycle, loads the demo data set into a SQLite database,
queues --jobs one-GPU jobs, and times the broker's cycles until every job is accepted by its
site (submitted or running). Prints jobs/s next to the target for 1 site and for 3 sites, on
the CLI (sbatch) and REST (slurmrestd) back-ends.

    .venv/bin/python bench/bench_slurm_submit.py --jobs 200
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from aifactories.db.models import JobRow
from aifactories.localslurm import LocalSlurm, SiteRequest, free_port_base
from aifactories.localslurm.sites_file import write_sites_file
from aifactories.services.auth import authenticate
from aifactories.services.demo import load_demo
from aifactories.services.jobs import JobRequest, submit_job
from aifactories.services.platform import Platform
from aifactories.settings import Settings

TARGET_RATE = {1: 20.0, 3: 20.0}  # jobs/s the broker hands to Slurm (one cycle's worth)
BIG_NODE = SiteRequest(nodes=16, gpus_per_node=16, cpus_per_node=64, memory_mb=64000)


def measure(backend: str, sites: int, jobs: int, port0: int) -> float:
    base = Path(tempfile.mkdtemp(prefix="aifb-", dir="/tmp"))
    cluster = LocalSlurm(base, port0=free_port_base(port0 // 1000 % 40))
    try:
        layouts = cluster.start([BIG_NODE] * sites)
        sites_file = write_sites_file(base / "sites.yaml", layouts, backend)
        platform = Platform(
            Settings(
                data_dir=base / "data",
                catalogue=sites_file,
                run_broker=False,
                policy="first_fit",
            )
        )
        platform.migrate()
        tokens = load_demo(platform.ctx).tokens
        principal = authenticate(platform.ctx, tokens["alice"])
        for k in range(jobs):
            request = JobRequest(
                project="aurora-vision", gpus=1, time_limit=600, runtime=300, name=f"b{k}"
            )
            submit_job(platform.ctx, principal, request)
        started = time.perf_counter()
        while True:
            platform.broker.run_once()
            with platform.ctx.reads() as session:
                waiting = session.execute(
                    select(func.count())
                    .select_from(JobRow)
                    .where(JobRow.state.in_(("pending", "placed")))
                ).scalar_one()
            if waiting == 0:
                break
        elapsed = time.perf_counter() - started
        platform.stop()
        return jobs / elapsed
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="at most 256 (one site)")
    parser.add_argument("--backends", default="cli,rest")
    args = parser.parse_args()
    print(f"{'back-end':8} {'sites':>5} {'jobs':>5} {'jobs/s':>8} {'target':>7}  verdict")
    port0 = 37000
    for backend in args.backends.split(","):
        for sites in (1, 3):
            rate = measure(backend, sites, args.jobs, port0)
            port0 += 1000
            target = TARGET_RATE[sites]
            verdict = "PASS" if rate >= target else "BELOW TARGET"
            print(f"{backend:8} {sites:>5} {args.jobs:>5} {rate:>8.1f} {target:>7.0f}  {verdict}")


if __name__ == "__main__":
    main()
