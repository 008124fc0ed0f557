"""The programme operator's pages, one router per area, for web/routers.py to include."""

from __future__ import annotations

from fastapi import APIRouter

from aifactories.web import (
    programme_allocations,
    programme_audit,
    programme_awards,
    programme_call_edit,
    programme_calls,
    programme_proposals,
    programme_review,
)


def programme_routers() -> list[APIRouter]:
    return [
        programme_calls.router,
        programme_call_edit.router,
        programme_review.router,
        programme_proposals.router,
        programme_awards.router,
        programme_allocations.router,
        programme_audit.router,
    ]
