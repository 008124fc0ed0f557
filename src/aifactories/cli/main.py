"""``aif``: submit and follow jobs, see sites and balances; ``aif up`` starts the platform.

Every user command talks to the REST API; only administration (``up``, ``db``, ``demo``)
acts on the database directly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from aifactories.cli import admin, render
from aifactories.cli.accounts import accounts_app
from aifactories.cli.allocations import allocations_app
from aifactories.cli.audit import audit_app
from aifactories.cli.awards import awards_app
from aifactories.cli.calls import calls_app
from aifactories.cli.client import Client
from aifactories.cli.config import Profile, load_profile, save_profile
from aifactories.cli.projects import projects_app
from aifactories.cli.proposals import proposals_app
from aifactories.cli.remote import JsonOpt, call, client, fail
from aifactories.cli.reviews import reviews_app
from aifactories.cli.simulate import simulate_command
from aifactories.cli.tokens import tokens_app
from aifactories.cli.usage import usage_app

app = typer.Typer(
    name="aif",
    help="aifactories: Europe's AI factories as one federation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.demo_app, name="demo")
app.command("up")(admin.up)
app.command("simulate")(simulate_command)
app.add_typer(usage_app, name="usage")
app.add_typer(accounts_app, name="accounts")
app.add_typer(calls_app, name="calls")
app.add_typer(proposals_app, name="proposals")
app.add_typer(reviews_app, name="reviews")
app.add_typer(awards_app, name="awards")
app.add_typer(projects_app, name="projects")
app.add_typer(allocations_app, name="allocations")
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")


@app.command()
def login(
    token: Annotated[str, typer.Option(prompt=True, hide_input=True, help="your API token")],
    server: Annotated[str, typer.Option(help="API URL")] = "http://127.0.0.1:8000",
    project: Annotated[str | None, typer.Option(help="default project")] = None,
) -> None:
    """Check a token against the server and save it in your profile."""
    me = call(Client(Profile(server=server, token=token)).get, "/me")
    path = save_profile(Profile(server=server, token=token, project=project))
    render.console.print(
        f"logged in as [bold]{me['username']}[/bold] at {server}; profile saved to {path}"
    )


@app.command()
def whoami(as_json: JsonOpt = False) -> None:
    """Who the saved token belongs to, and its projects."""
    me = call(client().get, "/me")
    if as_json:
        render.print_json(me)
        return
    roles = ", ".join(f"project {p}: {r}" for p, r in me["projects"].items()) or "no projects"
    render.console.print(f"{me['username']} ({'operator; ' if me['is_operator'] else ''}{roles})")


@app.command()
def sites(
    show_all: Annotated[bool, typer.Option("--all", help="include planned sites")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The catalogue: sites, partitions, billing weights and free GPUs now."""
    data = call(client().get, "/sites")
    if as_json:
        render.print_json(data)
    else:
        render.console.print(render.sites_table(data, show_all))


def _script_path(args: list[str]) -> Path | None:
    if len(args) != 1:
        return None
    path = Path(args[0])
    if not path.is_file():
        return None
    try:
        head = path.read_text("utf-8", errors="replace")[:4096]
    except OSError:
        return None
    return path if head.startswith("#!") or "#SBATCH" in head or "#AIF" in head else None


@app.command(context_settings={"allow_interspersed_args": False})
def submit(
    args: Annotated[
        list[str] | None,
        typer.Argument(help="a job script with #SBATCH directives, or -- a command to run"),
    ] = None,
    project: Annotated[str | None, typer.Option("--project", "-A", help="project code")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", "-G", help="GPUs in all")] = None,
    nodes: Annotated[int | None, typer.Option("--nodes", "-N")] = None,
    gpu_model: Annotated[str | None, typer.Option(help="GPU model, or 'any'")] = None,
    min_gpu_memory: Annotated[int | None, typer.Option(help="GB per GPU at least")] = None,
    time_limit: Annotated[str | None, typer.Option("--time", "-t", help="HH:MM:SS")] = None,
    name: Annotated[str | None, typer.Option("--job-name", "-J")] = None,
    countries: Annotated[str | None, typer.Option(help="data residency, e.g. DE,FI")] = None,
    runtime: Annotated[str | None, typer.Option(help="emulated sites: how long it runs")] = None,
    wait: Annotated[bool, typer.Option(help="follow the job until it ends")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Submit a job once; the broker places it on the best site."""
    args = args or []
    body: dict[str, Any] = {"workdir": os.getcwd()}
    script = _script_path(args)
    if script is not None:
        body["script"] = script.read_text("utf-8")
        body["workdir"] = str(script.resolve().parent)
    elif args:
        body["command"] = args
    elif not runtime:
        fail("give a job script or a command after --, e.g. aif submit -- python train.py", 2)
    profile = load_profile()
    options = {
        "project": project or (None if script else profile.project),
        "gpus": gpus,
        "nodes": nodes,
        "gpu_model": gpu_model,
        "min_gpu_memory_gb": min_gpu_memory,
        "time_limit": time_limit,
        "name": name,
        "runtime": runtime,
        "countries": [c.strip() for c in countries.split(",")] if countries else None,
    }
    body.update({k: v for k, v in options.items() if v is not None})
    if "project" not in body and profile.project and script is not None:
        body["project"] = profile.project  # the script's --account, if any, is used first
    api = Client(profile)
    job = call(api.post, "/jobs", json=body, idempotent=True)  # a retry makes no second job
    if as_json and not wait:
        render.print_json(job)
        return
    if not as_json:
        render.console.print(f"submitted job [bold]{job['id']}[/bold] ({job['state']})")
    if wait:
        job = _follow(api, job["id"], quiet=as_json)
        if as_json:
            render.print_json(job)
        if job["state"] != "completed":
            raise typer.Exit(1)


def _follow(api: Client, job_id: int, quiet: bool) -> dict[str, Any]:
    job: dict[str, Any] = call(api.get, f"/jobs/{job_id}")
    with render.console.status(f"job {job_id}: {job['state']}") as status:
        while job["state"] not in {"completed", "failed", "cancelled", "timeout"}:
            time.sleep(0.5)
            job = call(api.get, f"/jobs/{job_id}")
            where = f" at {job['partition_id']}" if job["partition_id"] else ""
            status.update(f"job {job_id}: {job['state']}{where} {job['reason'] or ''}")
    if not quiet:
        render.console.print(render.job_details(job))
    return job


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
def job(job_id: int, as_json: JsonOpt = False) -> None:
    """One job: state, site, partition, times, charge and why it waits."""
    data = call(client().get, f"/jobs/{job_id}")
    if as_json:
        render.print_json(data)
    else:
        render.console.print(render.job_details(data))


@app.command()
def cancel(job_id: int, as_json: JsonOpt = False) -> None:
    """Cancel a job (at its site if it is already there)."""
    data = call(client().delete, f"/jobs/{job_id}")
    if as_json:
        render.print_json(data)
    else:
        render.console.print(
            f"job {job_id}: {data['state']}"
            + (
                " (cancel sent to its site)"
                if data["cancel_requested"] and data["state"] not in {"cancelled"}
                else ""
            )
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


def run() -> None:
    """Console-script entry point."""
    app()
