"""REST endpoints: awards."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["awards"])
