"""``aif audit``: read and export the audit log; read and deliver the notification outbox.

Every command talks to the REST API (``GET /audit``, ``GET /audit/export``,
``GET /notifications``, ``POST /notifications/deliver``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.config import load_profile
from aifactories.cli.human import details_text, local_time, plural
from aifactories.cli.remote import EXIT_CODES, JsonOpt, call, client, fail

if TYPE_CHECKING:
    import httpx

audit_app = typer.Typer(
    help="The audit log of the access programme, and the notification outbox.",
    no_args_is_help=True,
)

SubjectOpt = Annotated[
    str | None, typer.Option(help="e.g. proposal:12; a trailing * matches a prefix: proposal:*")
]
ActionOpt = Annotated[
    str | None,
    typer.Option(help="e.g. proposal.submitted; a trailing * matches a prefix"),
]
ActorOpt = Annotated[str | None, typer.Option(help="a username, or 'system'")]
SinceOpt = Annotated[
    str | None, typer.Option(help="from this ISO time (UTC unless an offset is given)")
]
UntilOpt = Annotated[str | None, typer.Option(help="before this ISO time")]


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@audit_app.command("list")
def list_command(
    subject: SubjectOpt = None,
    action: ActionOpt = None,
    actor: ActorOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    before: Annotated[int | None, typer.Option(help="entries older than this id")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit entries, newest first: who decided what, when and why."""
    params = _params(
        subject=subject,
        action=action,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        before=before,
    )
    entries = call(client().get, "/audit", params=params)
    if as_json:
        render.print_json(entries)
        return
    table = render.table("Audit log", show_lines=True)
    for column in ("id", "at", "actor", "action", "subject", "reason", "details"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for e in entries:
        table.add_row(
            str(e["id"]),
            local_time(e["at"]),
            e["actor"],
            e["action"],
            e["subject"],
            e["reason"],
            details_text(e["details"]),
        )
    render.console.print(table)
    if len(entries) == limit:
        render.console.print(f"  more: aif audit list --before {entries[-1]['id']}")


@audit_app.command("export")
def export_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="the file to write; - : stdout")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    subject: SubjectOpt = None,
    action: ActionOpt = None,
    actor: ActorOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Export every matching entry, oldest first, as CSV or JSON Lines (streamed)."""
    if fmt not in ("csv", "jsonl"):
        fail(f"unknown format {fmt!r}: csv or jsonl", 2)
    import httpx

    profile = load_profile()
    params = _params(
        format=fmt, subject=subject, action=action, actor=actor, since=since, until=until
    )
    headers = {"Authorization": f"Bearer {profile.token}"} if profile.token else {}
    to_stdout = str(output) == "-"
    partial = output.with_name(output.name + ".part")
    try:
        with (
            httpx.Client(base_url=profile.server, headers=headers, timeout=60.0) as http,
            http.stream("GET", "/audit/export", params=params) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _fail_response(response)
            total = int(response.headers.get("X-Aif-Rows", "0"))
            if to_stdout:
                for text in response.iter_text():
                    sys.stdout.write(text)
                return
            rows = _write(response, partial, fmt, total)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        fail(
            f"cannot read the export from {profile.server} ({exc}); is 'aif up' running?",
            EXIT_CODES[0],
        )
    partial.replace(output)
    render.err_console.print(f"{plural(rows, 'audit entry')} written to {output}")


class _RecordCounter:
    """Counts the records of a CSV or JSON Lines stream as chunks arrive. A CSV record ends
    with "\r\n" outside quotes (a field may hold line breaks, always inside quotes); a
    JSON Lines record with "\n" (never inside a record)."""

    def __init__(self, fmt: str) -> None:
        self._csv = fmt == "csv"
        self._quoted = False
        self._cr = False  # the previous chunk ended with an unquoted "\r"
        self.records = 0

    def feed(self, text: str) -> None:
        if not self._csv:
            self.records += text.count("\n")
            return
        for i, part in enumerate(text.split('"')):
            if i:
                self._quoted = not self._quoted
            if self._quoted or not part:
                if part:
                    self._cr = False
                continue
            if self._cr and part.startswith("\n"):
                self.records += 1
            self.records += part.count("\r\n")
            self._cr = part.endswith("\r")


def _write(response: httpx.Response, path: Path, fmt: str, total: int) -> int:
    """Write the stream to ``path``, counting entries as they arrive, with a progress bar."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    counter = _RecordCounter(fmt)
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("[bold]audit export[/bold]"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} entries"),
            TextColumn("{task.fields[kib]:,.0f} KiB"),
            console=render.err_console,
            transient=True,
        ) as progress,
        path.open("w", encoding="utf-8", newline="") as handle,
    ):
        task = progress.add_task("export", total=max(total, 1), kib=0.0)
        written = 0
        for text in response.iter_text():
            handle.write(text)
            counter.feed(text)
            written += len(text.encode())
            entries = counter.records - 1 if fmt == "csv" else counter.records  # CSV header
            progress.update(task, completed=max(entries, 0), kib=written / 1024)
    return max(counter.records - 1 if fmt == "csv" else counter.records, 0)


def _fail_response(response: httpx.Response) -> None:
    try:
        body = response.json()
        message = body.get("message", response.text)
    except ValueError:
        message = response.text or response.reason_phrase
    fail(message, EXIT_CODES.get(response.status_code, 1))


@audit_app.command("notifications")
def notifications_command(
    status: Annotated[str | None, typer.Option(help="pending, sending, sent or failed")] = None,
    recipient: Annotated[str | None, typer.Option(help="an e-mail address or URL")] = None,
    event: Annotated[str | None, typer.Option(help="e.g. proposal.rejected")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="operators: only your own")] = False,
    full: Annotated[bool, typer.Option("--full", help="print each message's text")] = False,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The notification outbox, newest first: all of it for programme operators, your own
    otherwise. Without an SMTP server configured, e-mails wait here as 'pending'."""
    params = _params(
        status=status,
        recipient=recipient,
        event=event,
        mine=mine or None,
        limit=limit,
    )
    items = call(client().get, "/notifications", params=params)
    if as_json:
        render.print_json(items)
        return
    if full:
        for n in items:
            render.console.print(
                f"[bold]#{n['id']}[/bold] {n['channel']} to {n['recipient']} "
                f"({n['status']}, {local_time(n['created_at'])})\n"
                f"Subject: {n['subject']}\n\n{n['body']}",
                highlight=False,
            )
            render.console.rule()
        return
    table = render.table("Notifications")
    for column in ("id", "created", "channel", "to", "event", "subject", "status", "tries"):
        table.add_column(column, justify="right" if column in ("id", "tries") else "left")
    styles = {"pending": "yellow", "sending": "cyan", "sent": "green", "failed": "red"}
    for n in items:
        status_text = f"[{styles.get(n['status'], '')}]{n['status']}[/]"
        if n["last_error"] and n["status"] != "sent":
            status_text += f" ({n['last_error'][:60]})"
        table.add_row(
            str(n["id"]),
            local_time(n["created_at"]),
            n["channel"],
            n["recipient"],
            n["event"],
            n["subject"],
            status_text,
            str(n["attempts"]),
        )
    render.console.print(table)


@audit_app.command("deliver")
def deliver_command(as_json: JsonOpt = False) -> None:
    """Deliver the due notifications now (programme operators), without waiting for the
    worker of 'aif up'."""
    report = call(client().post, "/notifications/deliver")
    if as_json:
        render.print_json(report)
        return
    render.console.print(
        f"{report['sent']} sent, {report['retrying']} to retry, {report['failed']} failed"
        + (f", {report['recovered']} interrupted taken back" if report["recovered"] else "")
        + (
            f"; {plural(report['held_emails'], 'e-mail')} "
            f"{'waits' if report['held_emails'] == 1 else 'wait'}: no SMTP host configured "
            "(AIFACTORIES_SMTP_HOST)"
            if report["held_emails"]
            else ""
        ),
        highlight=False,
    )
    for error in report["errors"]:
        render.console.print(f"  [red]{error}[/red]", highlight=False)
