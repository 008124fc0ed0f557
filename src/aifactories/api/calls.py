"""REST endpoints: calls (programme operators open and close them; everyone reads them)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.api.params import PathRef
from aifactories.db.programme_models import CallRow
from aifactories.services.core.input_types import Reason
from aifactories.services.programme import calls as call_service

router = APIRouter(tags=["calls"])


def _finite(value: Any) -> Any:
    """A stored JSON value with NaN and infinities as null: no such value can be written any
    more (services.input_types), but a database from before may hold one, and JSON cannot
    carry it: one such call made every list of calls answer 500."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class CallOut(BaseModel):
    id: int
    code: str
    title: str
    mode: str
    status: str
    rules: dict[str, Any]
    budget_gpu_hours: dict[str, float | None] = Field(
        description="site id or 'pool' -> GPU-hours (null: an unreadable stored value)"
    )
    budget_left_gpu_hours: dict[str, float] | None = None
    opens_at: float
    closes_at: float
    cutoffs: list[float]
    course_ends_at: float | None

    @classmethod
    def of(cls, row: CallRow, left: dict[str, int] | None = None) -> CallOut:
        return cls(
            id=row.id,
            code=row.code,
            title=row.title,
            mode=row.mode,
            status=row.status,
            rules=_finite(row.rules),
            budget_gpu_hours=_finite(row.budget_gpu_hours),
            budget_left_gpu_hours={k: v / 3600 for k, v in left.items()} if left else None,
            opens_at=row.opens_at,
            closes_at=row.closes_at,
            cutoffs=row.cutoffs,
            course_ends_at=row.course_ends_at,
        )


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


@router.post("/calls", response_model=CallOut, status_code=201)
def open_call(
    context: Ctx, who: Me, body: call_service.CallIn, key: IdempotencyKey = None
) -> CallOut:
    return CallOut.of(call_service.open_call(context, who, body, key))


@router.get("/calls", response_model=list[CallOut])
def list_calls(context: Ctx, who: Me, include_closed: bool = False) -> list[CallOut]:
    rows = call_service.list_calls(context, who, include_closed=include_closed)
    return [CallOut.of(r) for r in rows]


@router.get("/calls/{call}", response_model=CallOut)
def get_call(context: Ctx, who: Me, call: PathRef) -> CallOut:
    row, left = call_service.get_call(context, who, call)
    return CallOut.of(row, left)


@router.post("/calls/{call}/close", response_model=CallOut)
def close_call(context: Ctx, who: Me, call: PathRef, body: ReasonIn) -> CallOut:
    return CallOut.of(call_service.close_call(context, who, call, body.reason))
