"""Server-side rendering time of every portal page, at the demo's size and with 10,000 jobs
and 5,000 proposals in the database (p95 < 100 ms and < 300 ms).

A platform as the tests build it (tests/api/harness.py: the application of
``aifactories.api.app.create_app`` over a migrated database with the demo loaded, broker
off, in-memory sites), browsers signed in as each role through the login form with the demo
users' tokens (alice: PI and member, rita: reviewer, sam: site operator, oscar: programme
operator, and anonymous). The pages are discovered from the application's routes (GET, at
``/`` or under ``/portal``), so pages added later are measured without editing this script;
path parameters are filled with real ids from the database (a project of alice's, one of
her jobs and proposals, one of rita's reviews, a call...). Each page is requested
``--requests`` times per role that may read it (HTTP 200), after a warm-up, in process
(Starlette's TestClient): the time of a request is the application's whole handling, which
is the server side, with no network. The demo's size is the demo plus ``--demo-jobs`` jobs
and ``--demo-proposals`` proposals (services/volume_seed.py), so that every page has
something to show; then the database is seeded up to ``--jobs`` and ``--proposals``.

    python bench/bench_portal_pages.py
    scripts/with-postgres python bench/bench_portal_pages.py --database postgresql
    python bench/bench_portal_pages.py --profile /portal/reviews   # cProfile, seeded size

Answers that are attachments (``Content-Disposition: attachment``: the audit log's CSV
export, a job's output) are downloads, not pages: they grow with what they hold by design,
so they are listed apart with their time and no target.

Exit code 1 if any page misses a target (downloads never fail it).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from _support import new_postgres_database
from aifactories.api.app import create_app
from aifactories.db.models import AllocationRow, JobRow, ProjectRow, UserRow
from aifactories.db.programme_models import (
    AwardRunRow,
    CallRow,
    ProposalRow,
    ReviewRow,
    SiteOperatorRow,
)
from aifactories.executors.base import Executor
from aifactories.executors.mock import MockExecutor
from aifactories.services.demo import load_demo
from aifactories.services.platform import Platform
from aifactories.services.volume_seed import seed_volume
from aifactories.settings import Settings

TARGET_DEMO_MS = 100.0
TARGET_SEEDED_MS = 300.0
ROLES = ("anonymous", "alice", "rita", "sam", "oscar")
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
# the literal path segment before a parameter (or the parameter's name) -> what it names
KINDS = {
    "projects": "project",
    "jobs": "job",
    "proposals": "proposal",
    "calls": "call",
    "reviews": "review",
    "assignments": "review",
    "sites": "site",
    "partitions": "partition",
    "allocations": "allocation",
    "runs": "award_run",
    "award-runs": "award_run",
    "users": "user",
    "reviewers": "user",
}


@dataclass
class Timing:
    status: int
    html: bool
    download: bool = False  # an attachment (a file to save), not a page
    samples_ms: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build_platform(database_url: str, home: Path) -> tuple[Platform, dict[str, str]]:
    """As tests/api/harness.py: migrated, demo loaded, broker off, in-memory sites."""
    settings = Settings(data_dir=home / "data", database_url=database_url, run_broker=False)
    probe = Platform(settings)
    executors: dict[str, Executor] = {
        site.id: MockExecutor(site, probe.ctx.clock) for site in probe.catalogue.operational_sites
    }
    probe.stop()
    platform = Platform(settings, executors=executors)  # type: ignore[arg-type]
    platform.migrate()
    return platform, load_demo(platform.ctx).tokens


def award_run(platform: Platform, token: str) -> None:
    """An award run (the optimiser) for the peer-reviewed call with the most accepted
    proposals, proposed through the API as the programme operator would."""
    with platform.ctx.reads() as s:
        call = s.scalar(
            select(CallRow.code)
            .join(ProposalRow, ProposalRow.call_id == CallRow.id)
            .where(ProposalRow.status == "accepted")
            .group_by(CallRow.code)
            .order_by(func.count().desc(), CallRow.code)
        )
    if call is None:
        return
    api = TestClient(create_app(platform.settings, platform=platform))
    api.headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    answer = api.post(f"/calls/{call}/award-runs", json={"method": "optimiser"})
    took = time.perf_counter() - started
    print(f"award run for {call}: HTTP {answer.status_code} in {took:.1f} s")


def browsers(platform: Platform, tokens: dict[str, str]) -> dict[str, TestClient]:
    """One browser per role, signed in through the login form (anonymous: not signed in)."""
    out = {}
    for role in ROLES:
        client = TestClient(
            create_app(platform.settings, platform=platform), follow_redirects=False
        )
        if role != "anonymous":
            answer = client.post(
                "/portal/login/token", data={"token": tokens[role], "next": "/portal/account"}
            )
            if answer.status_code != 303:
                raise SystemExit(f"{role} could not sign in: {answer.status_code} {answer.text}")
        out[role] = client
    return out


def page_paths(client: TestClient) -> list[str]:
    """The portal's GET routes: ``/`` and everything under ``/portal``."""
    paths = [
        path
        for path, methods in _routes(client.app.routes, "")  # type: ignore[attr-defined]
        if "GET" in methods and (path == "/" or path.startswith("/portal"))
    ]
    return sorted(set(paths))


def _routes(routes: list[Any], prefix: str) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route, through included routers (FastAPI >= 0.16x keeps an
    included router as one entry holding the original router and the prefix)."""
    out: list[tuple[str, set[str]]] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            out += _routes(inner.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIRoute):
            out.append((prefix + route.path, set(route.methods or ())))
    return out


Known = dict[str, dict[str, list[str]]]


def ids(platform: Platform) -> Known:
    """kind -> role -> values of that kind the role may read ("*": any role), tried in
    order until a page answers (an edit page needs a draft, a withdraw page a submitted
    proposal)."""
    with platform.ctx.reads() as s:
        user = {n: i for i, n in s.execute(select(UserRow.id, UserRow.username))}
        project = s.execute(
            select(ProjectRow.id, ProjectRow.code).where(ProjectRow.code == "aurora-vision")
        ).one()
        jobs = [
            s.scalar(
                select(JobRow.id)
                .where(JobRow.project_id == project.id, JobRow.state == state)
                .order_by(JobRow.id.desc())
            )
            for state in ("completed", "running")
        ]
        peer = select(CallRow.id).where(CallRow.mode.in_(("large_scale", "ai_for_science")))
        # a peer-reviewed awarded one first: it has the most to show (reviews, scores, the
        # project); then editable ones (the edit page) and one under review (withdraw)
        mine = select(ProposalRow.id).where(ProposalRow.pi_user_id == user["alice"])
        own = [
            s.scalar(
                mine.where(ProposalRow.call_id.in_(peer), ProposalRow.status == "awarded").order_by(
                    ProposalRow.id.desc()
                )
            ),
            *(
                s.scalar(mine.where(ProposalRow.status == status).order_by(ProposalRow.id.desc()))
                for status in ("draft", "checks_failed", "revision", "under_review")
            ),
            s.scalar(mine.order_by(ProposalRow.id.desc())),  # any of hers
        ]
        review, reviewed = s.execute(
            select(ReviewRow.id, ReviewRow.proposal_id)
            .where(ReviewRow.reviewer_id == user["rita"], ReviewRow.status == "assigned")
            .order_by(ReviewRow.id.desc())
        ).first() or (None, None)
        site = s.scalar(
            select(SiteOperatorRow.site_id).where(SiteOperatorRow.user_id == user["sam"])
        )
        checked = s.scalar(
            select(ProposalRow.id)
            .where(ProposalRow.status == "technical_check")
            .order_by(ProposalRow.id.desc())
        )
        call = s.scalar(
            select(CallRow.code)
            .where(CallRow.status == "open", CallRow.mode == "large_scale")
            .order_by(CallRow.id.desc())
        )
        allocation = s.scalar(
            select(AllocationRow.id).where(AllocationRow.project_id == project.id)
        )
        run = s.scalar(select(func.max(AwardRunRow.id)))
    partition = next(
        (
            p.name
            for s_ in platform.catalogue.operational_sites
            if s_.id == site
            for p in s_.partitions
        ),
        None,
    )
    found: dict[str, dict[str, list[Any]]] = {
        "project": {"*": [project.code]},
        "job": {"*": jobs},
        "proposal": {"*": own, "rita": [reviewed], "sam": [checked]},
        "review": {"*": [review]},
        "call": {"*": [call]},
        "site": {"*": [site]},
        "partition": {"*": [partition]},
        "allocation": {"*": [allocation]},
        "award_run": {"*": [run]},
        "user": {"*": ["alice"]},
    }
    return {
        kind: {role: [str(v) for v in vs if v is not None] for role, vs in values.items()}
        for kind, values in found.items()
    }


def fill(path: str, role: str, known: Known) -> list[str]:
    """The path with its parameters filled for ``role``, one URL per candidate value (none
    if a parameter has no value)."""
    urls = [""]
    segments = path.split("/")
    for i, segment in enumerate(segments):
        prefix = "/" if i else ""
        match = PARAM.fullmatch(segment)
        if match is None:
            urls = [url + prefix + segment for url in urls]
            continue
        name = match.group(1)
        kind = KINDS.get(segments[i - 1]) or next(
            (k for word, k in KINDS.items() if name.startswith(k) or name.startswith(word)), None
        )
        values = known.get(kind or "", {})
        candidates = values.get(role) or values.get("*") or []
        urls = [url + prefix + value for url in urls for value in candidates]
    return urls


@dataclass
class Measured:
    timings: dict[tuple[str, str], Timing]
    unfilled: list[str]  # pages no id could be found for
    unread: dict[str, set[int]]  # pages no role could read: the answers they gave


def readable(client: TestClient, path: str, role: str, known: Known) -> tuple[str | None, int]:
    """The first URL of the page that ``role`` may read, or None and the last status."""
    status = 0
    for url in fill(path, role, known):
        status = client.get(url).status_code
        if status == 200:
            return url, status
    return None, status


def measure(clients: dict[str, TestClient], paths: list[str], known: Known, n: int) -> Measured:
    """(page, role) -> timing, for every role that reads the page (HTTP 200)."""
    out = Measured({}, [], {})
    for path in paths:
        answers: set[int] = set()
        for role, client in clients.items():
            url, status = readable(client, path, role, known)
            if status:
                answers.add(status)
            if url is None:
                continue
            first = client.get(url)
            timing = Timing(
                200,
                "text/html" in first.headers.get("content-type", ""),
                "attachment" in first.headers.get("content-disposition", ""),
            )
            for _ in range(2):  # warm-up (with the first requests above)
                client.get(url)
            for _ in range(n):
                started = time.perf_counter()
                answer = client.get(url)
                timing.samples_ms.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    timing.status = answer.status_code
            out.timings[(path, role)] = timing
        if not answers:
            out.unfilled.append(path)
        elif 200 not in answers:
            out.unread[path] = answers
    return out


def profile(clients: dict[str, TestClient], paths: list[str], known: Known, what: str) -> None:
    """cProfile of the pages whose path contains ``what``, for each role that reads them.
    The requests run in this thread (httpx's ASGI transport, thread-pool work inline), so
    that the profile sees the application's own work, not a test client waiting."""
    import anyio.to_thread
    import httpx

    async def inline(func: Any, *args: Any, **_: Any) -> Any:
        return func(*args)

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]

    async def five(client: TestClient, url: str) -> None:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=client.cookies
        ) as browser:
            for _ in range(5):
                await browser.get(url)

    exact = what in paths  # a page's path: that page only; else every page containing it
    for path in paths:
        if path != what if exact else what not in path:
            continue
        for role, client in clients.items():
            url = readable(client, path, role, known)[0]
            if url is None:
                continue
            print(f"\n== profile of {url} as {role}, 5 requests ==")
            profiler = cProfile.Profile()
            profiler.enable()
            asyncio.run(five(client, url))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def is_download(key: tuple[str, str], *sizes: dict[tuple[str, str], Timing]) -> bool:
    return any(t.download for t in (size.get(key) for size in sizes) if t is not None)


def report(demo: dict[tuple[str, str], Timing], seeded: Measured) -> bool:
    """The pages against their targets (the verdict), then the downloads, timed only."""
    ok = True
    keys = sorted(set(demo) | set(seeded.timings))
    downloads = [k for k in keys if is_download(k, demo, seeded.timings)]
    print(
        "\n| page | role | p50 / p95 demo | target | p50 / p95 seeded | target | |\n"
        "|---|---|---|---|---|---|---|"
    )
    for key in keys:
        if key in downloads:
            continue
        path, role = key
        cells = []
        verdicts = []
        for timings, target in ((demo, TARGET_DEMO_MS), (seeded.timings, TARGET_SEEDED_MS)):
            t = timings.get(key)
            if t is None:
                cells.append("not readable")
                verdicts.append(True)
            elif t.status != 200:
                cells.append(f"HTTP {t.status}")
                verdicts.append(False)
            else:
                cells.append(f"{statistics.median(t.samples_ms):.1f} / {t.p(0.95):.1f} ms")
                verdicts.append(t.p(0.95) < target)
        passed = all(verdicts)
        ok = ok and passed
        html = all(t.html for t in (demo.get(key), seeded.timings.get(key)) if t is not None)
        page = f"`{path}`" if html else f"`{path}` (not HTML)"
        print(
            f"| {page} | {role} | {cells[0]} | < {TARGET_DEMO_MS:.0f} ms "
            f"| {cells[1]} | < {TARGET_SEEDED_MS:.0f} ms | {'PASS' if passed else 'FAIL'} |"
        )
    for path in seeded.unfilled:
        print(f"| `{path}` | - | skipped (no id) | | | | |")
    for path, answers in sorted(seeded.unread.items()):
        codes = ", ".join(f"HTTP {c}" for c in sorted(answers))
        print(f"| `{path}` | - | not read by any role ({codes}) | | | | |")
    report_downloads(downloads, demo, seeded.timings)
    slowest(
        {k: t for k, t in demo.items() if k not in downloads},
        {k: t for k, t in seeded.timings.items() if k not in downloads},
    )
    return ok


def report_downloads(
    keys: list[tuple[str, str]],
    demo: dict[tuple[str, str], Timing],
    seeded: dict[tuple[str, str], Timing],
) -> None:
    """Answers that are attachments (the audit export, a job's output): a file whose size
    grows with what it holds by design, so no page target; their time is shown."""
    if not keys:
        return
    print(
        "\n| download, no page target | role | p50 / p95 demo | p50 / p95 seeded |\n"
        "|---|---|---|---|"
    )
    for key in keys:
        cells = []
        for timings in (demo, seeded):
            t = timings.get(key)
            if t is None:
                cells.append("not readable")
            elif t.status != 200:
                cells.append(f"HTTP {t.status}")
            else:
                cells.append(f"{statistics.median(t.samples_ms):.1f} / {t.p(0.95):.1f} ms")
        print(f"| `{key[0]}` | {key[1]} | {cells[0]} | {cells[1]} |")


def slowest(demo: dict[tuple[str, str], Timing], seeded: dict[tuple[str, str], Timing]) -> None:
    """Per page, the p95 of its slowest role at each size: the short table for the docs."""
    print(
        "\n| page | p95 demo (slowest role) / target | p95 seeded (slowest role) / target | |"
        "\n|---|---|---|---|"
    )
    for path in sorted({p for p, _ in demo} | {p for p, _ in seeded}):
        cells, passed = [], True
        for timings, target in ((demo, TARGET_DEMO_MS), (seeded, TARGET_SEEDED_MS)):
            mine = [(t.p(0.95), role) for (p, role), t in timings.items() if p == path]
            if not mine:
                cells.append("-")
                continue
            worst, role = max(mine)
            cells.append(f"{worst:.0f} ms ({role}) / < {target:.0f} ms")
            passed = passed and worst < target
        print(f"| `{path}` | {cells[0]} | {cells[1]} | {'PASS' if passed else 'FAIL'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--database-url", help="an empty database (default: a new one)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page and role")
    parser.add_argument("--demo-jobs", type=int, default=100)
    parser.add_argument("--demo-proposals", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--proposals", type=int, default=5_000)
    parser.add_argument("--profile", metavar="PATH_PART", help="profile these pages, seeded")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aif-bench-portal-"))
    url = args.database_url or (
        f"sqlite:///{home / 'aif.db'}"
        if args.database == "sqlite"
        else new_postgres_database("aif_bench_portal")
    )
    platform, tokens = build_platform(url, home)
    try:
        seed_volume(platform.ctx, jobs=args.demo_jobs, proposals=args.demo_proposals, seed=1)
        award_run(platform, tokens["oscar"])
        clients = browsers(platform, tokens)
        paths = page_paths(clients["anonymous"])
        print(
            f"{len(paths)} portal GET routes; {args.requests} requests per page and role; "
            f"{os.cpu_count()} CPUs; {url.split(':')[0]}"
        )
        demo = {} if args.profile else measure(clients, paths, ids(platform), args.requests).timings
        started = time.perf_counter()
        seeded_rows = seed_volume(
            platform.ctx,
            jobs=args.jobs - args.demo_jobs,
            proposals=args.proposals - args.demo_proposals,
            seed=2,
        )
        print(f"seeded in {time.perf_counter() - started:.1f} s: {seeded_rows}")
        award_run(platform, tokens["oscar"])
        known = ids(platform)
        if args.profile:
            profile(clients, paths, known, args.profile)
            return
        ok = report(demo, measure(clients, paths, known, args.requests))
    finally:
        platform.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
