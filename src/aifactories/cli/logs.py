"""``aif logs JOB``: a job's output from GET /jobs/{job}/output (docs/job-output.md).

Only typer at the top: ``aif`` registers this command lazily and imports the rest when it
runs (the CLI's start time).
"""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

# exit codes by HTTP status, as the other commands (cli/remote.py); 410: the output expired
_EXIT = {422: 2, 404: 3, 410: 3, 401: 4, 403: 4, 0: 6}
_WAITING = ("pending", "placed", "submitted")


def logs(
    job_id: Annotated[
        str, typer.Argument(metavar="JOB", help="the job's id, or an array task: 123_4")
    ],
    error: Annotated[
        bool, typer.Option("--error", help="standard error instead of standard output")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="keep printing what the job writes, until it ends (Ctrl-C)"
        ),
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="only the last N lines")
    ] = None,
) -> None:
    """A job's standard output (or error), as it is written."""
    import re
    import sys

    import httpx

    from aifactories.cli.config import load_profile

    job_id = job_id.strip()
    if not re.fullmatch(r"[0-9]{1,10}(_[0-9]{1,7})?", job_id):
        _fail(
            f"{job_id!r} is not a job id: give one such as 123, or an array task such as 123_4", 2
        )
    profile = load_profile()
    headers = {"Authorization": f"Bearer {profile.token}"} if profile.token else {}
    params: dict[str, str | int] = {}
    if follow:
        params["follow"] = "true"
    if tail is not None:
        params["tail"] = tail
    path = f"/jobs/{job_id}/{'error' if error else 'output'}"
    # a follower waits as long as the job writes nothing: no read timeout then
    timeout = httpx.Timeout(30.0, read=None if follow else 60.0)
    out = sys.stdout.buffer
    try:
        with (
            httpx.Client(base_url=profile.server, headers=headers, timeout=timeout) as http,
            http.stream("GET", path, params=params) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _fail(_message(response), _EXIT.get(response.status_code, 1))
            state = response.headers.get("x-job-state", "")
            if follow and state in _WAITING:
                _note(f"job {job_id} is {state}: waiting for it to start (Ctrl-C to stop)")
            wrote = False
            for chunk in response.iter_bytes():
                out.write(chunk)
                out.flush()  # a follower sees each line as it comes
                wrote = True
            if not wrote and not follow:
                what = "standard error" if error else "output"
                if state in _WAITING:
                    _note(f"job {job_id} is {state}: it has no {what} yet")
                elif tail != 0:
                    _note(f"job {job_id} ({state}) has written no {what} yet")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None  # Ctrl-C: the user asked to stop, nothing to report
    except BrokenPipeError:
        raise typer.Exit(0) from None  # aif logs 12 | head: the reader has what it wanted
    except httpx.HTTPError as exc:
        _fail(
            f"cannot read from the aifactories server at {profile.server} ({exc}); is "
            "'aif up' running? set AIFACTORIES_SERVER or run 'aif login'",
            _EXIT[0],
        )


def _message(response: object) -> str:
    import httpx

    assert isinstance(response, httpx.Response)
    try:
        body = response.json()
        return str(body.get("message") or response.text)
    except ValueError:
        return response.text or response.reason_phrase


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
