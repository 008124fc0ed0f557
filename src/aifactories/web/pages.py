"""The pages anyone may read: the federation (every site of the catalogue, its GPUs and what
is free now) and the open calls. Signed-in pages come with the institutional login.

The portal's pages live under ``/portal/`` (the landing page at ``/``), so that they never
shadow an API path (``GET /calls`` is the API's list of calls)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from aifactories.services.jobs.sites import SiteView, list_sites
from aifactories.services.programme.public import open_calls
from aifactories.web.render import STATIC_URL, render
from aifactories.web.session import MaybeSignedIn, context

__all__ = ["STATIC_URL", "router", "static_files"]
router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=Path(__file__).parent / "static")


@dataclass(frozen=True)
class _Totals:
    sites: int
    planned: int
    gpus: int
    free_gpus: int | None  # None: no partition has reported yet (the broker just started)
    models: tuple[str, ...]


def _totals(views: list[SiteView]) -> _Totals:
    operational = [v for v in views if v.site.operational]
    partitions = [p for v in operational for p in v.partitions]
    return _Totals(
        sites=len(operational),
        planned=len(views) - len(operational),
        gpus=sum(p.total_gpus for p in partitions),
        free_gpus=sum(p.free_gpus or 0 for p in partitions if p.available)
        if any(p.free_gpus is not None for p in partitions)
        else None,
        models=tuple(sorted({p.gpu_model for p in partitions})),
    )


@router.get("/", response_class=HTMLResponse)
def federation(request: Request, _principal: MaybeSignedIn) -> HTMLResponse:
    """The federation at a glance: sites, GPUs, free GPUs now, open calls."""
    ctx = context(request)
    views = list_sites(ctx)
    calls = open_calls(ctx)
    return render(request, "federation.html", sites=views, totals=_totals(views), calls=calls)


@router.get("/portal/calls", response_class=HTMLResponse)
def calls_page(request: Request, _principal: MaybeSignedIn) -> HTMLResponse:
    """The open calls: access mode, deadline, what one proposal may ask for."""
    return render(request, "calls.html", calls=open_calls(context(request)))
