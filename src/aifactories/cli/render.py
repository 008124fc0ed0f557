"""Rich tables for people, JSON for scripts. Colour only on a terminal (and never with NO_COLOR).

Light to import (the standard library at the top, Rich when a table or the console is first
used): every command imports this module. Numbers carry their units, times are local with
their zone, counts take their plural (:mod:`aifactories.cli.human`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from aifactories.cli.human import duration, gb, hours, local_day, local_time, plural, zone

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

# Built on first use by __getattr__ below, so that importing this module loads no Rich.
console: Console
err_console: Console


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    # Piped or captured: no colour, and wide enough that tables are not squeezed into 80
    # columns (COLUMNS still wins when set).
    return Console(stderr=stderr, no_color=True, width=int(os.environ.get("COLUMNS", "160")))


def __getattr__(name: str) -> Any:
    if name in ("console", "err_console"):
        made = _console(stderr=name == "err_console")
        globals()[name] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def table(title: str | None = None, **options: Any) -> Table:
    """A Rich table (imported here, not at start-up)."""
    from rich.table import Table

    return Table(title=title, **options)


STATE_STYLE = {
    "pending": "yellow",
    "placed": "cyan",
    "submitted": "cyan",
    "running": "green",
    "completed": "bold green",
    "failed": "red",
    "cancelled": "magenta",
    "timeout": "red",
}


def progress_bars() -> Progress:
    """Bars for long work, one task each: what it is, the bar, done of total, time taken."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=globals().get("err_console") or __getattr__("err_console"),  # the shared one
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def sites_table(sites: list[dict[str, Any]], show_planned: bool) -> Table:
    t = table("Sites of the federation", show_lines=False)
    right = {
        "GPU memory",
        "GPUs",
        "billing weight",
        "free GPUs now",
        "EUR/GPU-h",
        "energy EUR/GPU-h",
    }
    for column in (
        "site",
        "country",
        "supercomputer",
        "status",
        "partition",
        "GPU model",
        "GPU memory",
        "GPUs",
        "billing weight",
        "free GPUs now",
        "EUR/GPU-h",  # the full cost of one GPU-hour (cost model, docs/fund.md)
        "energy EUR/GPU-h",
    ):
        t.add_column(column, justify="right" if column in right else "left")
    for site in sites:
        if site["status"] != "operational" and not show_planned:
            continue
        if not site["partitions"]:
            row = [site["id"], site["country"], site["supercomputer"], f"[dim]{site['status']}[/]"]
            t.add_row(*row, *["-"] * 8)
        for p in site["partitions"]:
            if p["free_gpus"] is None:
                free = "[dim]unknown[/dim]"
            elif not p["available"]:
                free = f"[red]down[/red] ({p['status_reason']})"
            else:
                free = plural(p["free_gpus"], "GPU")
            t.add_row(
                site["id"],
                site["country"],
                site["supercomputer"],
                site["status"],
                p["name"],
                p["gpu_model"],
                gb(p["gpu_memory_gb"]),
                plural(p["total_gpus"], "GPU"),
                f"{p['billing_weight']:g}",
                free,
                _per_hour(p.get("eur_per_gpu_hour")),  # an older server sends none
                _per_hour(p.get("energy_eur_per_gpu_hour")),
            )
    return t


def _per_hour(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(iso: str | None) -> float | None:
    from datetime import UTC, datetime

    if not iso:
        return None
    moment = datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()  # API: UTC


def wall_elapsed(job: dict[str, Any], now: float | None = None) -> float | None:
    """How long the job has run on the wall clock: from its start to its end, or to now."""
    started = _seconds(job["started_at"])
    if started is None:
        return None
    ended = _seconds(job["ended_at"])
    return max(0.0, (ended if ended is not None else (now or time.time())) - started)


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    t = table(
        "Jobs",
        caption=f"times on the wall clock, in {zone()}; GPU-hours charged, or reserved while "
        "the job runs",
    )
    for column in (
        "id",
        "project",
        "name",
        "state",
        "GPUs",
        "site/partition",
        "submitted",
        "ran for",
        "GPU-hours",
        "reason",
    ):
        t.add_column(column, justify="right" if column in {"id", "GPU-hours"} else "left")
    for job in jobs:
        style = STATE_STYLE.get(job["state"], "")
        charged = job["charged_gpu_hours"] or job["reserved_gpu_hours"]
        t.add_row(
            str(job.get("ref") or job["id"]),
            job["project"],
            job["name"],
            f"[{style}]{job['state']}[/{style}]" if style else job["state"],
            plural(job["allocated_gpus"] or job["gpus"], "GPU"),
            job["partition_id"] or "-",
            local_time(job["submitted_at"]),
            duration(wall_elapsed(job)),
            hours(charged),
            job["reason"] or "",
        )
    return t


def _asked(job: dict[str, Any]) -> str:
    model = job["gpu_model"]
    text = plural(job["gpus"], "GPU") + (" of any model" if model == "any" else f" of {model}")
    if job["nodes"]:
        text += f" on {plural(job['nodes'], 'node')}"
    if job["min_gpu_memory_gb"]:
        text += f", at least {gb(job['min_gpu_memory_gb'])} each"
    return text


def _job_time(job: dict[str, Any], wall: float | None) -> str | None:
    """What the site counted, when its clock is not the wall clock (an emulated site that
    runs faster, as in the demo): the charge follows the site's count."""
    site = job["elapsed_s"]
    if site is None or wall is None or wall < 1 or site < 1.5 * wall:
        return None
    factor = site / wall  # measured, so only about: round it to two figures
    shown = f"{float(f'{factor:.2g}'):g}"
    return (
        f"{duration(site)} at the site, whose emulated clock runs about {shown} times faster "
        "than the wall clock: the charge counts that time"
    )


def _resources(options: dict[str, Any]) -> str | None:
    """The Slurm resource options a job asked for, in words."""
    words = []
    if options.get("partitions"):
        words.append("partition " + " or ".join(options["partitions"]))
    if options.get("ntasks"):
        words.append(plural(options["ntasks"], "task"))
    if options.get("ntasks_per_node"):
        words.append(plural(options["ntasks_per_node"], "task") + " per node")
    if options.get("cpus_per_task"):
        words.append(plural(options["cpus_per_task"], "core") + " per task")
    if options.get("mem_per_node_mb") is not None:
        mem = options["mem_per_node_mb"]
        words.append("all of each node's memory" if mem == 0 else f"{mem:,} MB per node")
    if options.get("mem_per_gpu_mb"):
        words.append(f"{options['mem_per_gpu_mb']:,} MB per GPU")
    if options.get("exclusive"):
        words.append("whole nodes")
    return ", ".join(words) or None


def _batch_rows(job: dict[str, Any]) -> list[tuple[str, str]]:
    """Array, dependency, resources, output files and warnings, when the job has them."""
    options: dict[str, Any] = job.get("options") or {}
    rows: list[tuple[str, str]] = []
    if job.get("array_job_id") is not None:
        count = job.get("array_task_count")
        of = f" of {plural(count, 'task')}" if count else ""
        rows.append(("array", f"task {job['array_task_id']}{of} of array {job['array_job_id']}"))
    if job.get("dependency"):
        rows.append(("dependency", job["dependency"]))
    resources = _resources(options)
    if resources:
        rows.append(("resources", resources))
    batch: dict[str, Any] = options.get("batch") or {}
    output = job.get("output_path") or batch.get("output")
    if output:
        rows.append(("output", output))
    error = job.get("error_path") or batch.get("error")
    if error:
        rows.append(("error", error))
    for number, warning in enumerate(job.get("warnings") or [], start=1):
        rows.append(("warning" if number == 1 else "", warning))
    return rows


def job_details(job: dict[str, Any]) -> Table:
    """One job, every time on one clock (the wall clock, in the local zone, said in the
    title); the site's own count shown apart when an emulated site runs faster."""
    ref = job.get("ref") or job["id"]
    t = table(f"Job {ref} (times on the wall clock, in {zone()})", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    wall = wall_elapsed(job)
    running = job["ended_at"] is None and job["started_at"] is not None
    command = "(job script)" if job["has_script"] else " ".join(job["command"])[:200] or "-"
    rows = [
        ("name", job["name"]),
        ("state", job["state"]),
        ("reason", job["reason"] or "-"),
        ("project", job["project"]),
        ("asked", _asked(job)),
        ("time limit", duration(job["time_limit_s"])),
        ("countries", ", ".join(job["countries"]) or "any"),
        ("site / partition", job["partition_id"] or "-"),
        ("site job id", job["site_job_id"] or "-"),
        ("submitted", local_time(job["submitted_at"])),
        ("placed", local_time(job["placed_at"])),
        ("started", local_time(job["started_at"])),
        ("ended", local_time(job["ended_at"])),
        ("ran for", duration(wall) + (" so far" if running and wall is not None else "")),
    ]
    job_time = _job_time(job, wall)
    if job_time:
        rows.append(("job time", job_time))
    rows += [
        ("exit code", "-" if job["exit_code"] is None else str(job["exit_code"])),
        ("reserved", hours(job["reserved_gpu_hours"]) + " (GPU-hours)"),
        ("charged", hours(job["charged_gpu_hours"]) + " (GPU-hours)"),
        ("in euros", _job_euros(job)),
        ("requeued", plural(job["requeues"], "time")),
        ("command", command),
        *_batch_rows(job),
    ]
    for key, value in rows:
        t.add_row(key, value)
    return t


def euros(value: float | None) -> str:
    """``EUR 1,234`` (cents below a thousand: ``EUR 12.34``); ``-`` when not valued."""
    if value is None:
        return "-"
    return f"EUR {value:,.0f}" if abs(value) >= 1000 else f"EUR {value:,.2f}"


def _job_euros(job: dict[str, Any]) -> str:
    """The charge in euros, and the rate it was valued at (an older server: ``-``)."""
    rate = job.get("eur_per_gpu_hour")
    if job.get("charged_eur") is None:
        return "-"
    shown = euros(job["charged_eur"])
    return shown + (f" (at EUR {rate:,.2f} per GPU-hour used)" if rate is not None else "")


def balance_table(balance: dict[str, Any]) -> Table:
    t = table(
        f"Balance of {balance['project_code']} (GPU-hours, and in euros)",
        caption=f"domain {balance['domain']}"
        + (", industrial" if balance["industrial"] else "")
        + f"; priority weight {balance['priority_weight']:g}; euros at the full cost of the "
        "partitions' GPU-hours (used: where the jobs ran)",
    )
    numbers = ("granted", "reserved", "used", "left", "EUR granted", "EUR used", "EUR left")
    for column in ("allocation", "site", "status", "valid until", *numbers):
        t.add_column(column, justify="right" if column in numbers else "left")
    for a in balance["allocations"]:
        t.add_row(
            str(a["allocation_id"]),
            a["site_id"]
            or ("any of " + ", ".join(a["pool_sites"]) if a.get("pool_sites") else "any site"),
            a["status"],
            local_day(a["ends_at"]),
            hours(a["granted_gpu_hours"]),
            hours(a["reserved_gpu_hours"]),
            hours(a["used_gpu_hours"]),
            hours(a["left_gpu_hours"]),
            euros(a.get("granted_eur")),
            euros(a.get("used_eur")),
            euros(a.get("left_eur")),
        )
    return t


def whoami_line(me: dict[str, Any]) -> str:
    """``alice (PI of aurora-vision, member of po-twin)``: roles by project code."""
    by_role: dict[str, list[str]] = {}
    codes = me.get("project_codes") or me["projects"]  # an older server: ids only
    for code, role in sorted(codes.items()):
        by_role.setdefault(role, []).append(code)
    names = {"pi": "PI", "member": "member"}
    order = sorted(by_role, key=lambda role: (role != "pi", role))  # PI first
    parts = ["operator"] if me["is_operator"] else []
    parts += [f"{names.get(role, role)} of {', '.join(by_role[role])}" for role in order]
    return f"{me['username']} ({'; '.join(parts) or 'in no project'})"


def print_split(
    title: str, columns: list[tuple[str, str]], rows: list[list[str]], keep: int = 1
) -> None:
    """A table too wide for the terminal printed as several tables side by side in time (the
    first ``keep`` columns repeated in each), so that no cell is ever cut short: Rich would
    otherwise crop a table whose cells cannot wrap. ``columns``: (header, justify)."""
    from rich import box

    def need(i: int) -> int:  # a header wraps at spaces; a cell never
        words = max((len(w) for w in columns[i][0].split()), default=1)
        return max([words, *(len(r[i]) for r in rows)]) + 3  # and its padding, with a margin

    out: Console = globals().get("console") or __getattr__("console")
    width = out.width - 4  # the table's edges
    kept = list(range(keep))
    groups: list[list[int]] = [[]]
    used = sum(need(i) for i in kept)
    for i in range(keep, len(columns)):
        if groups[-1] and used + need(i) > width:
            groups.append([])
            used = sum(need(i) for i in kept)
        groups[-1].append(i)
        used += need(i)
    for n, group in enumerate(groups):
        part = f" ({n + 1}/{len(groups)})" if len(groups) > 1 else ""
        t = table(title + part, box=box.SIMPLE_HEAD)
        for i in kept + group:
            # a fixed width: the header wraps into it, the cells fit it
            t.add_column(columns[i][0], justify=columns[i][1], width=need(i) - 3)  # type: ignore[arg-type]
        for row in rows:
            t.add_row(*(row[i] for i in kept + group))
        out.print(t)
