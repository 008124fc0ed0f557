"""Helpers for access-programme API tests: open calls, draft and submit proposals."""

from __future__ import annotations

from typing import Any

from tests.api.harness import Harness

DAY = 86400.0


def open_call(h: Harness, code: str, mode: str, **extra: Any) -> dict[str, Any]:
    now = h.clock.now()
    body: dict[str, Any] = {
        "code": code,
        "title": f"{mode} call {code}",
        "mode": mode,
        "closes_at": now + 60 * DAY,
        "budget_gpu_hours": {"pool": 100_000.0},
    }
    body.update(extra)
    response = h.client("oscar").post("/calls", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def proposal_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Vision models for warehouse robots",
        "abstract": "We fine-tune vision transformers on warehouse images for picking robots.",
        "domain": "manufacturing",
        "industrial": True,
        "requested_gpu_hours": 500,
        "gpu_model": "any",
        "largest_job_gpus": 8,
        "period_months": 2,
    }
    body.update(extra)
    return body


def draft(h: Harness, user: str, call: str, **extra: Any) -> dict[str, Any]:
    response = h.client(user).post(f"/calls/{call}/proposals", json=proposal_body(**extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


def submit(h: Harness, user: str, proposal_id: int) -> dict[str, Any]:
    response = h.client(user).post(f"/proposals/{proposal_id}/submit")
    assert response.status_code == 200, response.text
    return dict(response.json())
