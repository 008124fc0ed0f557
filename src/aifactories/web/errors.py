"""Errors on the portal's pages: a page in words, never the API's JSON. A page that needs a
signed-in user sends the browser to the login page and back."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from aifactories.web.render import render

TITLES = {
    400: "This request cannot be used",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    413: "Too large",
    422: "Please check what you sent",
    429: "Too many requests",
    503: "Unavailable for a moment",
}


def is_portal_request(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path == "/portal" or path.startswith("/portal/")


def portal_error(request: Request, status: int, message: str) -> Response:
    if status == 401 and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/portal/login?next={quote(target, safe='')}", status_code=303)
    return render(
        request,
        "error.html",
        status_code=status,
        title=TITLES.get(status, "Something went wrong"),
        message=message,
        status=status,
    )
