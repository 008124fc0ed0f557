"""Jinja2 for the portal's pages, and the filters every page uses for units and times.

Times are rendered as ``<time datetime=ISO>`` with the UTC text; ``portal.js`` rewrites them
in the reader's own time zone (the server does not know it), so a page without JavaScript
still shows a correct, labelled time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup


def plural(count: int | float, word: str) -> str:
    shown = f"{count:,}" if isinstance(count, int) else f"{count:,.2f}"
    return f"{shown} {word}" + ("" if count == 1 else "s")


def hours(value: float) -> str:
    return f"{value:,.2f} h"


def gpu_hours(value: float) -> str:
    """GPU-hours as a person reads them: whole hours without decimals (50,000), else two."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def eur(value: float | None) -> str:
    """Euros as a person reads them: ``EUR 12,345`` (cents below a thousand); ``-`` when
    not valued (docs/fund.md, "The books in euros")."""
    if value is None:
        return "-"
    return f"EUR {value:,.0f}" if abs(value) >= 1000 else f"EUR {value:,.2f}"


def when(epoch: float | None) -> Markup:
    if epoch is None:
        return Markup("-")
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M UTC")
    )


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("aifactories.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(plural=plural, hours=hours, gpu_hours=gpu_hours, when=when, eur=eur)
    return env
