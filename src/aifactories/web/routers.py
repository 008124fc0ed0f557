"""Every router of the portal, in one list for the application to include."""

from __future__ import annotations

from fastapi import APIRouter

from aifactories.web import login, pages


def web_routers() -> list[APIRouter]:
    return [pages.router, login.router]
