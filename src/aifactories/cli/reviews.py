"""``aif reviews``: peer review of Large Scale and AI for Science proposals. Programme
operators keep the reviewer pool, assign, read the ranking and decide; reviewers read their
assignments, score or decline them and declare conflicts of interest; applicants read their
proposal's reviews once it is decided."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.human import hours, local_day, plural
from aifactories.cli.remote import JsonOpt, call, client, fail

if TYPE_CHECKING:
    from rich.table import Table

reviews_app = typer.Typer(
    help="Peer review: the pool, assignments, scores, ranking, decisions.", no_args_is_help=True
)
pool_app = typer.Typer(help="The reviewer pool (programme operators).", no_args_is_help=True)
reviews_app.add_typer(pool_app, name="pool")

CallArg = Annotated[str, typer.Argument(metavar="CALL", help="the call's code or id")]
CutoffOpt = Annotated[
    str | None, typer.Option("--cutoff", help="one cut-off of the call (ISO date); default: all")
]


def _day(ts: float | None) -> str:
    return local_day(ts)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _out(data: Any, as_json: bool, table: Table | None) -> None:
    if as_json or table is None:
        render.print_json(data)
    else:
        render.console.print(table)


# --------------------------------------------------------------------------- the pool


def _pool_table(reviewers: list[dict[str, Any]]) -> Table:
    table = render.table("Reviewer pool")
    for column in ("reviewer", "organisation", "country", "expertise", "open", "done", "conflicts"):
        table.add_column(column, justify="right" if column in ("open", "done") else "left")
    for r in reviewers:
        conflicts = [c["organisation"] or f"proposal {c['proposal_id']}" for c in r["conflicts"]]
        table.add_row(
            r["username"] + ("" if r["active"] else " (removed)"),
            r["organisation"] or "-",
            r["country"] or "-",
            ", ".join(r["expertise"]),
            str(r["assigned"]),
            str(r["submitted"]),
            "; ".join(conflicts) or "-",
        )
    return table


@pool_app.command("add")
def pool_add(
    username: Annotated[str, typer.Argument(metavar="USER")],
    domain: Annotated[
        list[str], typer.Option("--domain", help="a domain of expertise (repeatable)")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Add a user to the reviewer pool with their domains (again: change the domains)."""
    data = call(client().post, "/reviewers", json={"username": username, "domains": domain})
    _out(data, as_json, _pool_table([data]))


@pool_app.command("remove")
def pool_remove(
    username: Annotated[str, typer.Argument(metavar="USER")],
    reason: Annotated[str, typer.Option(help="why they leave the pool")],
    as_json: JsonOpt = False,
) -> None:
    """Take a reviewer out of the pool; their unsubmitted reviews are declined."""
    data = call(client().delete, f"/reviewers/{username}", params={"reason": reason})
    _out(data, as_json, _pool_table([data]))


@pool_app.command("list")
def pool_list(
    show_all: Annotated[bool, typer.Option("--all", help="include removed reviewers")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The reviewer pool with each one's load and declared conflicts."""
    data = call(client().get, "/reviewers", params={"include_inactive": show_all})
    _out(data, as_json, _pool_table(data))


@reviews_app.command("conflict")
def conflict(
    reason: Annotated[str, typer.Option(help="what the conflict is")],
    organisation: Annotated[
        str | None, typer.Option("--organisation", help="an organisation's name")
    ] = None,
    proposal: Annotated[int | None, typer.Option("--proposal", help="a proposal's id")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Declare a conflict of interest (you are never assigned to it again)."""
    if (organisation is None) == (proposal is None):
        fail("give --organisation NAME or --proposal ID (one of them)", 2)
    body = {"organisation": organisation, "proposal_id": proposal, "reason": reason}
    data = call(client().post, "/reviewers/me/conflicts", json=body)
    if as_json:
        render.print_json(data)
        return
    what = data["organisation"] or f"proposal {data['proposal_id']}"
    render.console.print(f"conflict of interest declared with {what}")
    withdrawn = data["withdrawn_reviews"]
    if withdrawn:
        ids = ", ".join(str(i) for i in withdrawn)
        noun = "proposal" if len(withdrawn) == 1 else "proposals"
        render.console.print(f"your reviews of {noun} {ids} withdrawn")


# --------------------------------------------------------------------------- assignment


@reviews_app.command("assign")
def assign(call_ref: CallArg, cutoff: CutoffOpt = None, as_json: JsonOpt = False) -> None:
    """Give the call's proposals under review the reviewers they lack (no conflicts of
    interest, experts first, load spread evenly)."""
    data = call(client().post, f"/calls/{call_ref}/review-assignments", json={"cutoff_at": cutoff})
    if as_json:
        render.print_json(data)
        return
    table = render.table(
        f"Assigned for call {data['call']}: {plural(len(data['assigned']), 'review')}"
    )
    for column in ("review", "proposal", "reviewer", "expert"):
        table.add_column(column)
    for a in data["assigned"]:
        table.add_row(
            str(a["review_id"]), str(a["proposal_id"]), a["reviewer"], "yes" if a["expert"] else ""
        )
    render.console.print(table)
    loads = ", ".join(f"{name}: {n}" for name, n in data["loads"].items())
    render.console.print(f"open reviews per reviewer: {loads or '-'}")
    for s in data["shortfalls"]:
        render.err_console.print(f"[yellow]proposal {s['proposal_id']}:[/yellow] {s['reason']}")


# --------------------------------------------------------------------------- reviewing


def _reviews_table(reviews: list[dict[str, Any]]) -> Table:
    table = render.table("My reviews")
    for column in ("id", "status", "proposal", "call", "title", "domain", "GPU-hours", "score"):
        right = column in ("id", "GPU-hours", "score")
        table.add_column(column, justify="right" if right else "left")
    for r in reviews:
        p = r["proposal"]
        table.add_row(
            str(r["id"]),
            r["status"] + ("" if r["editable"] or r["status"] == "declined" else " (closed)"),
            str(p["id"]),
            p["call"],
            p["title"],
            p["domain"],
            hours(p["requested_gpu_hours"], 0),
            _num(r["score"]),
        )
    return table


def _review_details(r: dict[str, Any]) -> Table:
    p = r["proposal"]
    table = render.table(f"Review {r['id']}: proposal {p['id']} '{p['title']}'", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("status", r["status"] + ("" if r["editable"] else " (closed)")),
        ("call", f"{p['call']} ({p['mode']}), cut-off {_day(p['cutoff_at'])}"),
        ("applicant", f"{p['organisation']} ({p['country']})"),
        ("domain", p["domain"]),
        (
            "request",
            f"{p['requested_gpu_hours']:,.0f} GPU-hours over "
            f"{plural(p['period_months'], 'month')}, {p['gpu_model'] or 'any GPU'}, "
            f"largest job {plural(p['largest_job_gpus'], 'GPU')}",
        ),
        ("abstract", p["abstract"]),
        (
            "criteria",
            ", ".join(f"{c['name']} ({c['normalised_weight']:.0%})" for c in r["criteria"]),
        ),
    ]
    if r["reviewer"]:
        rows.insert(1, ("reviewer", r["reviewer"]))
    if r["status"] == "submitted":
        rows.append(("scores", ", ".join(f"{k} {v:g}" for k, v in r["scores"].items())))
        rows.append(("score", _num(r["score"])))
        rows.append(("comment", r["comment"]))
    if r["decline_reason"]:
        rows.append(("declined", r["decline_reason"]))
    for field, value in rows:
        table.add_row(field, str(value))
    return table


@reviews_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="assigned, submitted or declined")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Your review assignments."""
    params = {"status": status} if status else {}
    data = call(client().get, "/reviews", params=params)
    _out(data, as_json, _reviews_table(data))


@reviews_app.command("show")
def show(review_id: int, as_json: JsonOpt = False) -> None:
    """One of your reviews, with the proposal to read and the call's criteria."""
    data = call(client().get, f"/reviews/{review_id}")
    _out(data, as_json, _review_details(data))


def _parse_scores(items: list[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            scores[name.strip()] = float(value)
        except ValueError:
            fail(f"--score {item!r}: write CRITERION=VALUE, e.g. --score excellence=8", 2)
    return scores


@reviews_app.command("score")
def score(
    review_id: int,
    scores: Annotated[
        list[str],
        typer.Option("--score", help="CRITERION=VALUE, 0 to 10, for every criterion"),
    ],
    comment: Annotated[str, typer.Option(help="strengths and weaknesses: the applicant reads it")],
    as_json: JsonOpt = False,
) -> None:
    """Submit (or change, until the decision) your scores and comment."""
    body = {"scores": _parse_scores(scores), "comment": comment}
    data = call(client().request, "PUT", f"/reviews/{review_id}", json=body)
    _out(data, as_json, _review_details(data))


@reviews_app.command("decline")
def decline(
    review_id: int,
    reason: Annotated[str, typer.Option(help="why (programme operators read it)")],
    as_json: JsonOpt = False,
) -> None:
    """Decline a review you were assigned; an operator assigns another reviewer."""
    data = call(client().post, f"/reviews/{review_id}/decline", json={"reason": reason})
    _out(data, as_json, _review_details(data))


# --------------------------------------------------------------------------- the panel


@reviews_app.command("ranking")
def ranking(call_ref: CallArg, cutoff: CutoffOpt = None, as_json: JsonOpt = False) -> None:
    """The panel's ranking: scores, spread, reviews in and missing, and who reviews."""
    params = {"cutoff_at": cutoff} if cutoff else {}
    data = call(client().get, f"/calls/{call_ref}/ranking", params=params)
    if as_json:
        render.print_json(data)
        return
    minimum = data["min_average_score"]
    table = render.table(
        f"Ranking of call {data['call']}"
        + (f" (minimum average score {minimum:g})" if minimum is not None else "")
    )
    columns = ("cut-off", "rank", "proposal", "title", "organisation", "status", "score",
               "spread", "reviews", "missing", "reviewers")  # fmt: skip
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("rank", "proposal", "score", "spread") else "left",
        )
    n = data["reviewers_per_proposal"]
    for e in data["entries"]:
        reviewers = ", ".join(
            f"{r['reviewer']} {_num(r['score']) if r['status'] == 'submitted' else r['status']}"
            for r in e["reviewers"]
        )
        table.add_row(
            _day(e["cutoff_at"]),
            str(e["rank"] or "-"),
            str(e["proposal_id"]),
            e["title"],
            e["organisation"],
            e["status"],
            _num(e["score"]),
            _num(e["spread"]),
            f"{e['reviews']}/{n}",
            str(e["missing"]),
            reviewers or "-",
        )
    render.console.print(table)


@reviews_app.command("decide")
def decide(
    call_ref: CallArg,
    rule: Annotated[
        bool, typer.Option("--rule", help="apply the call's min_average_score")
    ] = False,
    accept: Annotated[list[int] | None, typer.Option("--accept", help="proposal id")] = None,
    reject: Annotated[list[int] | None, typer.Option("--reject", help="proposal id")] = None,
    reason: Annotated[str | None, typer.Option(help="why (the applicants read it)")] = None,
    cutoff: CutoffOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide: by the call's rule (--rule), or accept/reject proposals with a reason."""
    decisions = [
        {"proposal_id": pid, "outcome": outcome, "reason": reason or ""}
        for outcome, ids in (("accept", accept or []), ("reject", reject or []))
        for pid in ids
    ]
    if rule == bool(decisions):
        fail("give --rule, or --accept ID / --reject ID with --reason (not both)", 2)
    if decisions and not reason:
        fail("say why with --reason: the applicants read it", 2)
    body = {"rule": rule, "decisions": decisions, "cutoff_at": cutoff}
    data = call(client().post, f"/calls/{call_ref}/decisions", json=body)
    if as_json:
        render.print_json(data)
        return
    table = render.table(f"Decisions in call {data['call']}")
    for column in ("proposal", "outcome", "score", "rank", "reason"):
        table.add_column(column)
    for d in data["decided"]:
        style = "green" if d["outcome"] == "accept" else "red"
        table.add_row(
            str(d["proposal_id"]),
            f"[{style}]{d['outcome']}[/{style}]",
            _num(d["score"]),
            str(d["rank"] or "-"),
            d["reason"],
        )
    render.console.print(table)
    for s in data["skipped"]:
        render.err_console.print(
            f"[yellow]proposal {s['proposal_id']} waits:[/yellow] {s['reason']}"
        )


@reviews_app.command("proposal")
def proposal_reviews(proposal_id: int, as_json: JsonOpt = False) -> None:
    """A proposal's reviews: its applicant after the decision (without the reviewers'
    names), a reviewer their own, programme operators all."""
    data = call(client().get, f"/proposals/{proposal_id}/reviews")
    if as_json:
        render.print_json(data)
        return
    title = f"Reviews of proposal {data['proposal_id']} ({data['status']})"
    if data["score"] is not None:
        title += f": score {data['score']:.2f}" + (f", rank {data['rank']}" if data["rank"] else "")
    table = render.table(title)
    names = [c["name"] for c in data["criteria"]]
    for column in ("reviewer", "status", *names, "score", "comment"):
        table.add_column(column)
    for r in data["reviews"]:
        scores = r.get("scores") or {}
        table.add_row(
            r.get("reviewer") or "-",
            r["status"],
            *[f"{scores[n]:g}" if n in scores else "-" for n in names],
            _num(r.get("score")),
            r.get("comment") or r.get("decline_reason") or "",
        )
    render.console.print(table)
    if data["decision_reason"]:
        render.console.print(f"decision: {data['decision_reason']}")
