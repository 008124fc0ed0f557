"""Benchmark the programme's figures over a year of 400,000 ledger charges.

    python bench/bench_programme_figures.py [--charges 400000] [--jobs 20000] [--postgres]

The demo, 20,000 seeded jobs and 2,000 proposals (services/volume_seed.py), then ``--charges``
charge entries over the last 400 days: eight in ten of a seeded job, one in ten of usage
imported from a site's accounting, one in ten of no job. The figure is the wall-clock time
and the peak Python memory (tracemalloc) of one ``programme_figures`` call over the last 365
days, as the API serves it, against a target of 2 s; the database is SQLite unless
``--postgres`` (under scripts/with-postgres).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import insert, select

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow, UserRow
from aifactories.domain.clock import ManualClock
from aifactories.services.core.auth import principal_of_user
from aifactories.services.demo import load_demo
from aifactories.services.fund.programme_figures import programme_figures
from aifactories.services.platform import Platform
from aifactories.services.volume_seed import seed_volume
from aifactories.settings import Settings

TARGET_S = 2.0
DAY_S = 86400.0


def seed_charges(platform: Platform, count: int, seed: int) -> None:
    rng = random.Random(seed)
    now = platform.ctx.clock.now()
    with platform.ctx.sessions.begin() as session:
        jobs = [
            (int(j), int(a))
            for j, a in session.execute(select(JobRow.id, JobRow.allocation_id))
            if a is not None
        ]
        allocations = session.scalars(select(AllocationRow.id)).all()
        rows = []
        for i in range(count):
            at = now - rng.uniform(0, 400 * DAY_S)
            pick = rng.random()
            if pick < 0.8:
                job_id, alloc = rng.choice(jobs)
                note = f"job {job_id} completed"
            elif pick < 0.9:
                job_id, alloc = None, rng.choice(allocations)
                note = f"direct lumi-aif job {i} (kalevala-mri)"
            else:
                job_id, alloc = None, rng.choice(allocations)
                note = None
            rows.append(
                {
                    "allocation_id": alloc,
                    "job_id": job_id,
                    "kind": "charge",
                    "gpu_seconds": rng.randint(60, 7200),
                    "at": at,
                    "note": note,
                }
            )
        session.execute(insert(LedgerEntryRow), rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charges", type=int, default=400_000)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-figures-"))
    if args.postgres:
        from _support import new_postgres_database

        url = new_postgres_database("bench_figures")
    else:
        url = f"sqlite:///{tmp / 'aif.db'}"
    clock = ManualClock()
    platform = Platform(
        Settings(data_dir=tmp / "data", database_url=url, run_broker=False), clock=clock
    )
    platform.migrate()
    load_demo(platform.ctx)
    seed_volume(platform.ctx, jobs=args.jobs, proposals=2_000, seed=args.seed)
    seed_charges(platform, args.charges, args.seed)
    with platform.ctx.reads() as session:
        user = session.scalars(select(UserRow).where(UserRow.username == "oscar")).one()
        oscar = principal_of_user(session, user)
    now = clock.now()
    tracemalloc.start()
    began = time.perf_counter()
    figures = programme_figures(platform.ctx, oscar, start=now - 365 * DAY_S, end=now, as_of=now)
    took = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    platform.stop()
    used = next(r.gpu_hours for r in figures.used if r.dimension == "total")
    database = "postgresql" if args.postgres else "sqlite"
    print(
        f"{args.charges:,} charges + {args.jobs:,} jobs on {database}: {used:,.0f} GPU-hours used"
    )
    print(
        f"programme_figures: {took:.2f} s (target < {TARGET_S:.0f} s), peak {peak / 2**20:.0f} MiB"
    )
    return 0 if took < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
