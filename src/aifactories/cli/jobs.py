"""The user's job commands besides submit: sites, jobs, job, cancel, balance.

Job ids are Slurm's: ``123`` for a job, ``123_4`` for task 4 of job array 123. They go to the
API as they are, in the path (``/jobs/123_4``).
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.client import Client
from aifactories.cli.config import load_profile
from aifactories.cli.remote import JsonOpt, call, client, fail

app = typer.Typer(add_completion=False)

FINAL_STATES = frozenset({"completed", "failed", "cancelled", "timeout"})
_JOB_ID = re.compile(r"[0-9]{1,18}(_[0-9]{1,9})?")

JobIdArg = Annotated[
    str,
    typer.Argument(metavar="JOB", help="a job id, or ARRAY_TASK (123_4) for one array task"),
]


def job_path(job_id: str) -> str:
    """``/jobs/{id}`` for a Slurm-style id; anything else is refused before any request."""
    if not _JOB_ID.fullmatch(job_id):
        fail(f"{job_id!r} is not a job id; write 123, or 123_4 for task 4 of job array 123", 2)
    return f"/jobs/{job_id}"


@app.command()
def sites(
    show_all: Annotated[bool, typer.Option("--all", help="include planned sites")] = False,
    costs: Annotated[
        bool,
        typer.Option(
            "--costs", help="each partition's cost per GPU-hour in parts, with its sources"
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The catalogue: sites, partitions, billing weights, free GPUs now and EUR per GPU-hour."""
    if costs:
        from aifactories.cli import cost_render

        breakdown = call(client().get, "/fund/costs")
        if as_json:
            render.print_json(breakdown)
        else:
            render.console.print(cost_render.costs_table(breakdown))
            render.console.print(cost_render.sources_table(breakdown))
        return
    data = call(client().get, "/sites")
    if as_json:
        render.print_json(data)
    else:
        render.console.print(render.sites_table(data, show_all))


@app.command()
def jobs(
    project: Annotated[str | None, typer.Option("--project", "-A")] = None,
    state: Annotated[list[str] | None, typer.Option(help="only these states")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """Your projects' jobs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if project:
        params["project"] = project
    if state:
        params["state"] = state
    data = call(client().get, "/jobs", params=params)
    if as_json:
        render.print_json(data)
    else:
        render.console.print(render.jobs_table(data))


@app.command()
def job(job_id: JobIdArg, as_json: JsonOpt = False) -> None:
    """One job: state, site, partition, times, charge and why it waits."""
    data = call(client().get, job_path(job_id))
    if as_json:
        render.print_json(data)
    else:
        render.console.print(render.job_details(data))


@app.command()
def cancel(job_id: JobIdArg, as_json: JsonOpt = False) -> None:
    """Cancel a job, a job array or one array task.

    A job array's id cancels every task of it; ARRAY_TASK (123_4) cancels that task only.
    """
    data = call(client().delete, job_path(job_id))
    if as_json:
        render.print_json(data)
        return
    sent = data.get("cancel_requested") and data.get("state") != "cancelled"
    render.console.print(
        f"job {job_id}: {data['state']}" + (" (cancel sent to its site)" if sent else "")
    )


@app.command()
def balance(
    project: Annotated[str | None, typer.Option("--project", "-A")] = None,
    as_json: JsonOpt = False,
) -> None:
    """GPU-hours granted, reserved, used and left, per allocation."""
    profile = load_profile()
    project = project or profile.project
    if not project:
        fail("say which project: aif balance --project CODE", 2)
    data = call(Client(profile).get, f"/projects/{project}/balance")
    if as_json:
        render.print_json(data)
    else:
        render.console.print(render.balance_table(data))


def follow(api: Client, job_id: str, quiet: bool) -> dict[str, Any]:
    """Poll a job until it ends, showing its state; its details at the end unless ``quiet``."""
    job: dict[str, Any] = call(api.get, job_path(job_id))
    with render.console.status(f"job {job_id}: {job['state']}") as status:
        while job["state"] not in FINAL_STATES:
            time.sleep(0.5)
            job = call(api.get, job_path(job_id))
            where = f" at {job['partition_id']}" if job.get("partition_id") else ""
            status.update(f"job {job_id}: {job['state']}{where} {job.get('reason') or ''}")
    if not quiet:
        render.console.print(render.job_details(job))
    return job
