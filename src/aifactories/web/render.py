"""Render a portal page: the template, the signed-in principal, the navigation for the roles
they hold, the CSRF field for forms, and the one-time message left by the last action.

After a form's POST the route redirects (303) to a page and calls `flash` with what happened;
the next page shows it once (a short signed cookie, so a reload or the back button does not
send the form again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import BadSignature
from markupsafe import Markup

from aifactories.services.core.context import Principal
from aifactories.web.session import _PRINCIPAL, CSRF_FIELD, csrf_token, signer
from aifactories.web.templating import make_environment

STATIC_URL = "/static/portal"
_FLASH = "aif_flash"
_templates = make_environment()

Tone = Literal["done", "error"]
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str


def navigation(principal: Principal | None) -> list[NavItem]:
    """What the signed-in principal may open; the pages check again, this only hides links."""
    items = [
        NavItem("federation", "Federation", "/"),
        NavItem("calls", "Open calls", "/portal/calls"),
        NavItem("figures", "Figures", "/portal/figures"),
    ]
    if principal is None:
        return items
    items += [
        NavItem("proposals", "My proposals", "/portal/proposals"),
        NavItem("projects", "Projects", "/portal/projects"),
        NavItem("jobs", "Jobs", "/portal/jobs"),
        NavItem("notifications", "Notifications", "/portal/notifications"),
    ]
    if principal.is_reviewer:
        items.append(NavItem("reviews", "Reviews", "/portal/reviews"))
    if principal.operated_sites:
        items.append(NavItem("site", "My sites", "/portal/site"))
    if principal.is_operator:
        items.append(NavItem("programme", "Programme", "/portal/programme"))
    return items


def flash(response: Response, request: Request, text: str, tone: Tone = "done") -> None:
    response.set_cookie(
        _FLASH,
        signer(request, "flash").dumps([tone, text]),
        max_age=120,
        httponly=True,
        samesite="lax",
        path="/",
    )


def redirect(
    request: Request, to: str, message: str | None = None, tone: Tone = "done"
) -> RedirectResponse:
    """See other (303): after a POST the browser GETs ``to``; ``message`` shows there once."""
    response = RedirectResponse(to, status_code=303)
    if message:
        flash(response, request, message, tone)
    return response


def _take_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(_FLASH)
    if not raw:
        return None
    try:
        tone, text = signer(request, "flash").loads(raw, max_age=120)
    except (BadSignature, ValueError, TypeError):
        return None
    return str(tone), str(text)


def render(
    request: Request, template: str, *, page: str = "", status_code: int = 200, **values: object
) -> HTMLResponse:
    """The page ``template`` (under web/templates) with ``values``; ``page`` marks the
    navigation entry as the current one."""
    principal: Principal | None = getattr(request.state, _PRINCIPAL, None)
    token = csrf_token(request) if principal is not None else ""
    message = _take_flash(request)
    html = _templates.get_template(template).render(
        static=STATIC_URL,
        page=page,
        principal=principal,
        nav=navigation(principal),
        csrf=token,
        csrf_field=lambda: Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, token
        ),
        flash=message,
        **values,
    )
    response = HTMLResponse(html, status_code=status_code)
    if message is not None:
        response.delete_cookie(_FLASH, path="/")
    # pages carry personal data: never from a shared cache, never framed by another site,
    # scripts and styles from the platform only (inline styles allowed for gauges' widths)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
