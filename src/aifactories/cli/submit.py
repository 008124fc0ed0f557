"""``aif submit``: a batch script or a command, with sbatch's options, to the broker.

The command line is read by cli/submit_line.py, not by Click: sbatch's options come in
spellings Click would misread (``-N2``, an option's value that starts with "-"), and the
script or ``--`` ends the options. What it read is handed to Click as the declared options
below (visible ones for --help, hidden ones for the rest), so the function gets plain values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import Context  # Typer's own copy of Click (typer >= 0.29)
from typer._click.exceptions import UsageError
from typer._click.shell_completion import CompletionItem
from typer.core import TyperCommand

from aifactories.cli.submit_line import SubmitLine, SubmitLineError, parse_submit_line
from aifactories.domain.directives import DIRECTIVES, directives_help

app = typer.Typer(add_completion=False)

OUTPUT = (
    "Output: the job's standard output and error are kept by the platform; read them with "
    "`aif logs JOB` (--error, --follow, --tail N); --output/--error name the files at the site."
)
USAGE = (
    "aif submit [OPTIONS] SCRIPT      a batch script; #SBATCH lines as sbatch reads them\n"
    "aif submit [OPTIONS] -- COMMAND  a command and its arguments, after --"
)


def _rich_text(text: str) -> str:
    # Typer prints help through Rich markup: "[@SECONDS]" would be taken for a tag.
    return text.replace("[", r"\[")


class SubmitCommand(TyperCommand):
    """Reads the line with sbatch's rules, then lets Click fill the function's parameters."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            line = parse_submit_line(args)
        except SubmitLineError as exc:
            if ctx.resilient_parsing:  # shell completion of a line being written: no error
                line = SubmitLine()
            else:
                raise UsageError(str(exc), ctx) from None
        words = ["--help"] if line.help else []
        words += ["--wait"] if line.wait else []
        words += ["--json"] if line.as_json else []
        words += [f"--account={line.account}"] if line.account is not None else []
        words += [f"--sbatch-option={option}" for option in line.options]
        words += [f"--script={line.script}"] if line.script is not None else []
        words += ["--", *line.command] if line.command else []
        return super().parse_args(ctx, words)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        """The CLI's options, and sbatch's that the platform knows."""
        items = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            items += [
                CompletionItem(d.long, help=d.meaning)
                for d in DIRECTIVES
                if d.long.startswith(incomplete) and d.long != "--account"
            ]
        return items


@app.command(
    "submit",
    cls=SubmitCommand,
    epilog=_rich_text(f"{USAGE}\n\n{directives_help()}\n\n{OUTPUT}"),
)
def submit(
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SCRIPT | -- COMMAND",
            help="a batch script, or a command after --",
            show_default=False,
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            "-A",
            "--project",
            help="the project that pays (its code); else the script's, else your profile's",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    options: Annotated[list[str] | None, typer.Option("--sbatch-option", hidden=True)] = None,
    script: Annotated[str | None, typer.Option("--script", hidden=True)] = None,
) -> None:
    """Submit a batch script or a command, with sbatch's options.

    Options go before the script (or before --), as with sbatch; they win over the script's
    #SBATCH lines.
    """
    # Imported here, not at the top: --help and a refused line need neither HTTP nor Rich.
    from aifactories.cli import render
    from aifactories.cli.client import Client
    from aifactories.cli.config import load_profile
    from aifactories.cli.jobs import follow
    from aifactories.cli.remote import call, fail, warn

    words = list(options or [])
    if account is not None:
        words.append(f"--account={account}")
    # sbatch runs a job where it was submitted from (SLURM_SUBMIT_DIR), unless --chdir
    body: dict[str, Any] = {"workdir": os.getcwd(), "options": words}
    if script is not None:
        body["script"] = _read_script(Path(script))
    elif command:
        body["command"] = list(command)
    elif not any(word.startswith("--runtime=") for word in words):
        fail("give a batch script, or a command after --: aif submit -G 1 -- python train.py", 2)
    profile = load_profile()
    if account is None and profile.project:
        # the script's --account, if it has one, wins: the server decides
        body["default_project"] = profile.project
    api = Client(profile)
    job = call(api.post, "/jobs", json=body, idempotent=True)  # a retry makes no second job
    for message in job.get("warnings") or []:
        warn(message)
    if as_json and not wait:
        render.print_json(job)
        return
    if not as_json:
        render.console.print(_submitted(job), highlight=False)
    if wait:
        job = follow(api, str(job["id"]), quiet=as_json)
        if as_json:
            render.print_json(job)
        if job["state"] != "completed":
            raise typer.Exit(1)


def _read_script(path: Path) -> str:
    from aifactories.cli.remote import fail

    if not path.exists():
        fail(
            f"no such script: {path}; to run a command, put it after --: "
            f"aif submit [OPTIONS] -- {path} ...",
            2,
        )
    if not path.is_file():
        fail(f"{path} is not a file; give a batch script, or a command after --", 2)
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the script {path}: {exc}", 2)


def _submitted(job: dict[str, Any]) -> str:
    if job.get("array_job_id") is not None:
        count = job.get("array_task_count")
        tasks = f" ({count} task{'' if count == 1 else 's'})" if count else ""
        return f"submitted job array {job['array_job_id']}{tasks}"
    return f"submitted job {job['id']} ({job['state']})"
