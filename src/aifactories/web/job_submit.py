"""Submit a job from the portal: a batch script with #SBATCH directives (typed or uploaded)
or a command, under one of the caller's projects, with sbatch's common options.

The form is turned into the request ``aif submit`` sends (services/jobs/job_spec.py
JobRequest): the fields become sbatch options on the "command line", so they win over the
script's directives as with sbatch; the chosen project is the default that a script's
``--account`` overrides, as the CLI profile's project is. Every refusal (a field out of
range, a refused directive, an unknown partition, the budget) comes back next to the field
it names, the values kept. A random key in the form makes a double click one job.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from aifactories.domain.errors import AifError, InvalidInput
from aifactories.services.core.context import Principal
from aifactories.services.jobs.job_pages import project_choices
from aifactories.services.jobs.job_spec import JobRequest
from aifactories.services.jobs.jobs import submit_job
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn, context

router = APIRouter(include_in_schema=False)

MAX_UPLOAD = 500_000  # bytes: the API's limit on a script
FIELDS: tuple[str, ...] = ("project", "script", "command", "name", "gpus", "nodes", "time")
FIELDS += ("partition", "gpu_model", "array", "options")
# the service's field names for the form's
_FIELD_OF = {
    "time_limit": "time",
    "default_project": "project",
    "job_name": "name",
    "mem": "options",
    "cpus_per_task": "options",
    "countries": "options",
    "min_gpu_memory_gb": "options",
    "runtime": "options",
}
Text = Annotated[str, Form(max_length=10_000)]
_STATUS = {"not_found": 404, "permission_denied": 403}


@dataclass
class SubmitForm:
    """What the person typed, kept when the form comes back with an error."""

    values: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FIELDS, ""))
    errors: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None  # not about one field: the budget, the project's rules
    key: str = field(default_factory=lambda: secrets.token_urlsafe(18))


def _field(exc: InvalidInput) -> str:
    name = exc.field.split(" ")[0]  # "script line 3" -> script
    name = _FIELD_OF.get(name, name)
    if name == "options" and "--array" in exc.message:
        return "array"
    return name if name in FIELDS else "options"


def _message(exc: InvalidInput) -> str:
    return f"{exc.detail} (allowed: {exc.limit})" if exc.limit else exc.detail


def _page(request: Request, principal: Principal, form: SubmitForm, status: int = 200) -> Response:
    ctx = context(request)
    projects = [p for p in project_choices(ctx, principal) if p.member]
    partitions = sorted({p.name for p in ctx.catalogue.operational_partitions})
    return render(
        request,
        "jobs/submit.html",
        page="jobs",
        status_code=status,
        form=form,
        projects=projects,
        partitions=partitions,
        gpu_models=ctx.catalogue.gpu_models,
    )


@router.get("/portal/submit", response_class=HTMLResponse)
def submit_page(
    request: Request, principal: SignedIn, project: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    form = SubmitForm()
    form.values["project"] = project
    return _page(request, principal, form)


def _words(text: str, name: str, form: SubmitForm) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        form.errors[name] = f"cannot be split into words: {exc}; close every quote"
        return []


def _options(values: dict[str, str], form: SubmitForm) -> list[str]:
    """The form's fields as sbatch options, as ``aif submit`` passes its command line."""
    words: list[str] = []
    for name, option in (
        ("gpus", "--gpus"),
        ("nodes", "--nodes"),
        ("time", "--time"),
        ("partition", "--partition"),
        ("name", "--job-name"),
        ("array", "--array"),
    ):
        if values[name]:
            words.append(f"{option}={values[name]}")
    return words + _words(values["options"], "options", form)


@router.post("/portal/submit", response_class=HTMLResponse, dependencies=[CsrfChecked])
def submit(
    request: Request,
    principal: SignedIn,
    project: Text = "",
    script: Annotated[str, Form(max_length=MAX_UPLOAD)] = "",
    script_file: UploadFile | None = None,
    command: Text = "",
    name: Text = "",
    gpus: Text = "",
    nodes: Text = "",
    time: Text = "",
    partition: Text = "",
    gpu_model: Text = "",
    array: Text = "",
    options: Text = "",
    key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    form = SubmitForm(key=key or secrets.token_urlsafe(18))
    given = dict(project=project, script=script, command=command, name=name, gpus=gpus)
    given |= dict(nodes=nodes, time=time, partition=partition, gpu_model=gpu_model)
    given |= dict(array=array, options=options)
    form.values = {k: v.strip() for k, v in given.items() if k != "script"}
    # browsers send a text area's lines with CRLF: bash would read "done\r"
    form.values["script"] = _unix(script)
    if script_file is not None and script_file.filename:
        data = script_file.file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            form.errors["script"] = f"the file is larger than {MAX_UPLOAD:,} bytes"
        else:
            try:
                form.values["script"] = _unix(data.decode("utf-8"))  # kept in the text area
            except UnicodeDecodeError:
                form.errors["script"] = "the file is not UTF-8 text: upload a batch script"
    return _submit(request, principal, form)


def _unix(text: str) -> str:
    return text.replace("\r\n", "\n")


def _submit(request: Request, principal: Principal, form: SubmitForm) -> Response:
    values = form.values
    if not values["project"]:
        form.errors["project"] = "choose the project that pays for the job"
    if values["script"].strip() and values["command"]:
        form.errors["command"] = "give a batch script or a command, not both"
    elif not values["script"].strip() and not values["command"]:
        form.errors["script"] = "give a batch script (type it or upload it) or a command"
    command = _words(values["command"], "command", form)
    words = _options(values, form)
    if form.errors:
        return _page(request, principal, form, 422)
    try:
        body = JobRequest(
            default_project=values["project"],
            script=values["script"] if values["script"].strip() else None,
            command=command,
            options=words,
            gpu_model=values["gpu_model"] or None,
        )
        row = submit_job(context(request), principal, body, form.key)
    except InvalidInput as invalid:
        form.errors[_field(invalid)] = _message(invalid)
        return _page(request, principal, form, 422)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else "options"
        form.errors[_FIELD_OF.get(where, where if where in FIELDS else "options")] = first["msg"]
        return _page(request, principal, form, 422)
    except AifError as refused:  # the budget, a project the caller is not in, a key reused
        form.refusal = refused.message
        return _page(request, principal, form, _STATUS.get(refused.code, 409))
    if row.array_job_id is not None:
        message = f"Submitted job array {row.array_job_id}."
    else:
        message = f"Submitted job {row.id} ({row.state})."
    if row.warnings:
        message += " Some options were accepted with a warning: see below."
    return redirect(request, f"/portal/jobs/{row.id}", message)
