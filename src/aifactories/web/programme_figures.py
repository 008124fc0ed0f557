"""The programme's figures in the portal, for programme operators: a period [from, to) and
an optional as_of (only what was recorded by then counts), each section a chart and its table
(web/programme_figures_sections.py), and the long table as the CSV that ``aif programme
report`` writes. The figures are services/fund/programme_figures.py's, as the API's
``GET /programme/figures`` answers them. Dates and times in the form are UTC."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import InvalidInput
from aifactories.services.core.context import Principal
from aifactories.services.fund.programme_figures import programme_figures
from aifactories.services.fund.programme_figures_values import ProgrammeFigures
from aifactories.services.notifications.audit import parse_time
from aifactories.web.programme_common import FieldErrors, field_errors, operator, placed
from aifactories.web.programme_figures_sections import COLOURS, sections
from aifactories.web.render import render
from aifactories.web.session import SignedIn

router = APIRouter(include_in_schema=False)
FIELDS = ("from", "to", "as_of")
ACTION = "read the programme's figures"


@dataclass(frozen=True)
class Period:
    """The period asked for: what was typed (kept in the form and the CSV link), and the
    epoch seconds read from it (None where it could not be read)."""

    typed: dict[str, str]
    start: float | None
    end: float | None
    as_of: float | None

    def query(self) -> str:
        return urlencode({k: v for k, v in self.typed.items() if v})


def last_twelve_months(now: float) -> tuple[str, str]:
    """The default period: from the same day a year ago to tomorrow (exclusive), so that
    today counts."""
    to = to_datetime(now).date() + timedelta(days=1)
    try:
        start = to.replace(year=to.year - 1)
    except ValueError:  # 29 February
        start = date(to.year - 1, to.month, 28)
    return start.isoformat(), to.isoformat()


def read_period(params: Any, now: float) -> tuple[Period, FieldErrors]:
    """The period from the query string (the last twelve months where from or to is left
    empty), and the errors of the fields that cannot be read, keyed by field."""
    typed = {name: str(params.get(name) or "").strip()[:64] for name in FIELDS}
    start, to = last_twelve_months(now)
    typed["from"] = typed["from"] or start
    typed["to"] = typed["to"] or to
    errors: FieldErrors = {}
    times: dict[str, float | None] = {}
    for name in FIELDS:
        try:
            times[name] = parse_time(typed[name], name)
        except InvalidInput as invalid:
            errors[name] = invalid.beside_field()
            times[name] = None
    begin, end = times["from"], times["to"]
    if begin is not None and end is not None and not end > begin:
        errors["to"] = f"the period must end after it starts: give a date after {typed['from']}"
    return Period(typed, begin, end, times["as_of"]), errors


def _figures(
    request: Request, principal: Principal
) -> tuple[Period, FieldErrors, ProgrammeFigures | None]:
    ctx = operator(request, principal, ACTION)
    period, errors = read_period(request.query_params, ctx.clock.now())
    if errors or period.start is None or period.end is None:
        return period, errors, None
    try:
        found = programme_figures(
            ctx, principal, start=period.start, end=period.end, as_of=period.as_of
        )
    except InvalidInput as invalid:
        return period, placed(field_errors(invalid), FIELDS), None
    return period, {}, found


@router.get("/portal/programme/figures", response_class=HTMLResponse)
def figures_page(request: Request, principal: SignedIn) -> HTMLResponse:
    """The form, and below it every section of the figures for the period asked."""
    period, errors, found = _figures(request, principal)
    totals: dict[str, object] = {}
    if found is not None:
        totals = {
            "granted": next((r for r in found.granted if r.dimension == "total"), None),
            "used": next((r for r in found.used if r.dimension == "total"), None),
            "energy": next((e for e in found.energy if e.site_id == "total"), None),
        }
    return render(
        request,
        "programme/figures.html",
        page="programme",
        status_code=422 if errors else 200,
        period=period,
        errors=errors,
        figures=found,
        totals=totals,
        sections=sections(found) if found is not None else [],
        colours=COLOURS,
        unit_words={"GPU-h": "GPU-hours", "EUR": "euros", "ratio": "per cent"},
        csv=period.query(),
    )


def rows_of(figures: ProgrammeFigures) -> list[dict[str, Any]]:
    """The long table as ``GET /programme/figures`` answers it (no NaN: an empty value), the
    input of the report's CSV."""
    return [
        {
            "family": r.family,
            "key": r.key,
            "metric": r.metric,
            "value": r.value if math.isfinite(r.value) else None,
            "unit": r.unit,
        }
        for r in figures.rows()
    ]


@router.get("/portal/programme/figures/csv", response_model=None)
def figures_csv(request: Request, principal: SignedIn) -> Response:
    """The long table (family, key, metric, value, unit) as the ``figures.csv`` that
    ``aif programme report`` writes, for the same period."""
    period, _, found = _figures(request, principal)
    if found is None:
        return figures_page(request, principal)
    # the report's writer: plotly and polars load on the first download only
    from aifactories.services.fund.programme_figures_report import frame

    text = frame(rows_of(found)).write_csv()
    name = f"aifactories-programme-figures-{period.typed['from']}-{period.typed['to']}.csv"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
