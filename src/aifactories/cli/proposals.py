"""``aif proposals``: draft, edit, submit and follow proposals; site operators' checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.programme_render import proposal_details, proposals_table
from aifactories.cli.remote import JsonOpt, call, client, fail

proposals_app = typer.Typer(help="Proposals to calls.", no_args_is_help=True)

FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="the proposal's fields as YAML")]
TitleOpt = Annotated[str | None, typer.Option()]
AbstractOpt = Annotated[str | None, typer.Option()]
DomainOpt = Annotated[str | None, typer.Option(help="health, energy, climate, ... or other")]
IndustrialOpt = Annotated[bool | None, typer.Option("--industrial/--not-industrial")]
HoursOpt = Annotated[float | None, typer.Option("--gpu-hours", help="GPU-hours requested")]
ModelOpt = Annotated[str | None, typer.Option(help="GPU model, or 'any'")]
MemoryOpt = Annotated[int | None, typer.Option("--min-gpu-memory", help="GB per GPU")]
LargestOpt = Annotated[int | None, typer.Option("--largest-job-gpus")]
SiteOpt = Annotated[list[str] | None, typer.Option("--site", help="preferred site (repeatable)")]
ResidencyOpt = Annotated[str | None, typer.Option(help="countries the data must stay in: DE,FI")]
MonthsOpt = Annotated[int | None, typer.Option("--months", help="period in months")]
StartOpt = Annotated[str | None, typer.Option("--start", help="wished start, ISO date")]
MemberOpt = Annotated[list[str] | None, typer.Option("--member", help="team member (repeatable)")]


def _body(
    file: Path | None,
    title: str | None,
    abstract: str | None,
    domain: str | None,
    industrial: bool | None,
    gpu_hours: float | None,
    gpu_model: str | None,
    min_gpu_memory: int | None,
    largest_job_gpus: int | None,
    site: list[str] | None,
    residency: str | None,
    months: int | None,
    start: str | None,
    member: list[str] | None,
) -> dict[str, Any]:
    import yaml

    body: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            fail(f"cannot read {file}: {exc}", 2)
        if not isinstance(loaded, dict):
            fail(f"{file} must hold a mapping of the proposal's fields", 2)
        body.update(loaded)
    options = {
        "title": title,
        "abstract": abstract,
        "domain": domain,
        "industrial": industrial,
        "requested_gpu_hours": gpu_hours,
        "gpu_model": gpu_model,
        "min_gpu_memory_gb": min_gpu_memory,
        "largest_job_gpus": largest_job_gpus,
        "preferred_sites": site,
        "residency": [c.strip() for c in residency.split(",")] if residency else None,
        "period_months": months,
        "starts_at": start,
        "members": member,
    }
    body.update({k: v for k, v in options.items() if v is not None})
    return body


def _show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        render.print_json(data)
    else:
        render.console.print(proposal_details(data))


@proposals_app.command("list")
def list_command(
    call_code: Annotated[str | None, typer.Option("--call", help="only this call")] = None,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The proposals you may see: yours and your teams'; operators see the submitted ones."""
    params = {k: v for k, v in {"call": call_code, "status": status}.items() if v}
    data = call(client().get, "/proposals", params=params)
    if as_json:
        render.print_json(data)
    else:
        render.console.print(proposals_table(data))


@proposals_app.command("show")
def show(proposal_id: int, as_json: JsonOpt = False) -> None:
    """One proposal with its checks and, once decided, its outcome."""
    _show(call(client().get, f"/proposals/{proposal_id}"), as_json)


@proposals_app.command("draft")
def draft(
    call_code: Annotated[str, typer.Argument(metavar="CALL", help="the call's code")],
    file: FileOpt = None,
    title: TitleOpt = None,
    abstract: AbstractOpt = None,
    domain: DomainOpt = None,
    industrial: IndustrialOpt = None,
    gpu_hours: HoursOpt = None,
    gpu_model: ModelOpt = None,
    min_gpu_memory: MemoryOpt = None,
    largest_job_gpus: LargestOpt = None,
    site: SiteOpt = None,
    residency: ResidencyOpt = None,
    months: MonthsOpt = None,
    start: StartOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Draft a proposal to a call (only you see it until you submit)."""
    body = _body(
        file, title, abstract, domain, industrial, gpu_hours, gpu_model, min_gpu_memory,
        largest_job_gpus, site, residency, months, start, member,
    )  # fmt: skip
    _show(call(client().post, f"/calls/{call_code}/proposals", json=body), as_json)


@proposals_app.command("edit")
def edit(
    proposal_id: int,
    file: FileOpt = None,
    title: TitleOpt = None,
    abstract: AbstractOpt = None,
    domain: DomainOpt = None,
    industrial: IndustrialOpt = None,
    gpu_hours: HoursOpt = None,
    gpu_model: ModelOpt = None,
    min_gpu_memory: MemoryOpt = None,
    largest_job_gpus: LargestOpt = None,
    site: SiteOpt = None,
    residency: ResidencyOpt = None,
    months: MonthsOpt = None,
    start: StartOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change fields of a draft (or of a proposal sent back for revision)."""
    body = _body(
        file, title, abstract, domain, industrial, gpu_hours, gpu_model, min_gpu_memory,
        largest_job_gpus, site, residency, months, start, member,
    )  # fmt: skip
    if not body:
        fail("say what to change, e.g. --gpu-hours 800", 2)
    _show(call(client().patch, f"/proposals/{proposal_id}", json=body), as_json)


@proposals_app.command("submit")
def submit(proposal_id: int, as_json: JsonOpt = False) -> None:
    """Submit: the automated checks run now; a Playground proposal that passes is awarded."""
    data = call(client().post, f"/proposals/{proposal_id}/submit")
    _show(data, as_json)
    if data["status"] == "checks_failed":
        if not as_json:
            render.err_console.print("the automated checks failed: edit and submit again")
        raise typer.Exit(1)


@proposals_app.command("withdraw")
def withdraw(
    proposal_id: int,
    reason: Annotated[str, typer.Option(help="why")],
    as_json: JsonOpt = False,
) -> None:
    """Withdraw a proposal before its decision."""
    _show(
        call(client().post, f"/proposals/{proposal_id}/withdraw", json={"reason": reason}), as_json
    )


@proposals_app.command("check")
def check(
    proposal_id: int,
    reason: Annotated[str, typer.Option(help="what the applicant reads")],
    accept: Annotated[bool, typer.Option("--accept", help="accept (awarded at once)")] = False,
    reject: Annotated[bool, typer.Option("--reject")] = False,
    revise: Annotated[bool, typer.Option("--revise", help="ask for a revision")] = False,
    site: Annotated[str | None, typer.Option(help="the site you check for")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A site operator's technical check (Fast Lane, Education)."""
    chosen = [
        name for name, on in (("accept", accept), ("reject", reject), ("revise", revise)) if on
    ]
    if len(chosen) != 1:
        fail("give exactly one of --accept, --reject, --revise", 2)
    body = {"outcome": chosen[0], "reason": reason, "site_id": site}
    _show(call(client().post, f"/proposals/{proposal_id}/technical-check", json=body), as_json)
