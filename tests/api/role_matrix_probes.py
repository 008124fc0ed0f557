"""The role matrix's requests: for each row of tests/api/role_matrix.py, one valid request at
the target party's object (tests/api/role_matrix_world.py), so that a refusal measures
access, not validation, and for lists how to tell whether the target is in the answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.api.role_matrix_world import JOB_KEY, World

REASON = {"reason": "checked by the role matrix"}
JUSTIFIED = {"justification": "more training runs"}
PROPOSAL = {
    "title": "Robot arms that learn from video",
    "abstract": "Imitation learning for industrial robot arms from operator videos.",
    "domain": "manufacturing",
    "requested_gpu_hours": 60_000,
    "period_months": 6,
}


Finds = Callable[[httpx.Response, World], bool]


def _has(key: str, attr: str) -> Finds:
    """The answer (a list, or one object) holds the target: an item whose ``key`` is the
    world's ``attr``."""

    def finds(r: httpx.Response, w: World) -> bool:
        body = r.json()
        items = body if isinstance(body, list) else [body]
        return any(item.get(key) == w.ids()[attr] for item in items)

    return finds


def _audits_proposal(r: httpx.Response, w: World) -> bool:
    return any(entry["subject"] == f"proposal:{w.proposal}" for entry in r.json())


def _exports_proposal(r: httpx.Response, w: World) -> bool:
    entries = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return any(entry["subject"] == f"proposal:{w.proposal}" for entry in entries)


def _tells_pi(r: httpx.Response, w: World) -> bool:
    return any(n["recipient"] == f"{w.users['pi']}@example.eu" for n in r.json())


@dataclass(frozen=True)
class Probe:
    """One valid request at the target party's object. ``{name}`` in the path and the body
    take the world's ids (World.ids) and the users ({user_ROLE})."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    finds: Finds | None = None  # lists: is the target in the answer?
    headers: dict[str, str] = field(default_factory=dict)


# key: "METHOD /path" as in the OpenAPI with its parameters unnamed ({}), and a variant after
# " ?" when the same operation is asked a second way (another object, a filter)
PROBES: dict[str, Probe] = {
    "GET /health": Probe("GET", "/health"),
    "GET /livez": Probe("GET", "/livez"),
    "GET /": Probe("GET", "/"),
    "GET /portal/calls": Probe("GET", "/portal/calls"),
    "POST /auth/device": Probe("POST", "/auth/device"),
    "POST /auth/device/token": Probe(
        "POST", "/auth/device/token", json={"device_code": "not-a-code-of-this-platform"}
    ),
    "GET /readyz": Probe("GET", "/readyz"),
    "GET /metrics": Probe("GET", "/metrics"),
    "GET /me": Probe("GET", "/me"),
    "GET /sites": Probe("GET", "/sites"),
    "GET /fund/costs": Probe("GET", "/fund/costs"),
    "GET /programme/figures": Probe(
        "GET", "/programme/figures", params={"from": "2026-01-01", "to": "2026-12-31"}
    ),
    "POST /fund/invest": Probe(
        "POST",
        "/fund/invest",
        {
            "name": "one site",
            "years": [2027],
            "budget_eur": 1e6,
            "priorities": {"other": 1.0},
            "accelerator_models": {"B200": {"speed": 3.5, "capital_eur": 1e5, "kw": 1.0}},
            "demand": [{"country": "DE", "priority": "other", "gpu_hours_per_year": 1e5}],
            "candidates": [
                {
                    "id": "gf",
                    "country": "DE",
                    "gpu_model": "B200",
                    "accelerators": 8,
                    "from_year": 2027,
                }
            ],
        },
    ),
    "POST /jobs": Probe(
        "POST",
        "/jobs",
        {"project": "{project}", "gpus": 1, "time_limit": 600, "command": ["true"]},
    ),
    # alice's own request again, with her key: her job back; anyone else's is their own
    "POST /jobs ?alice's key": Probe(
        "POST",
        "/jobs",
        {"project": "{project}", "gpus": 1, "time_limit": 600, "command": ["true"]},
        finds=_has("id", "job"),
        headers={"Idempotency-Key": JOB_KEY},
    ),
    "GET /jobs": Probe("GET", "/jobs", finds=_has("id", "job")),
    "GET /jobs ?project": Probe(
        "GET", "/jobs", params={"project": "{project}"}, finds=_has("id", "job")
    ),
    "GET /jobs/{}": Probe("GET", "/jobs/{job}"),
    "GET /jobs/{}/output": Probe("GET", "/jobs/{job}/output"),
    "GET /jobs/{}/error": Probe("GET", "/jobs/{job}/error"),
    "DELETE /jobs/{}": Probe("DELETE", "/jobs/{job}"),
    "DELETE /jobs/{} ?member's": Probe("DELETE", "/jobs/{member_job}"),
    "GET /projects/{}/balance": Probe("GET", "/projects/{project}/balance"),
    "POST /calls": Probe(
        "POST",
        "/calls",
        {
            "code": "matrix",
            "title": "A call opened by the role matrix",
            "mode": "fast_lane",
            "closes_at": "2027-06-30",
            "budget_gpu_hours": {"pool": 10_000},
        },
    ),
    "GET /calls": Probe("GET", "/calls", finds=_has("code", "peer_call")),
    "GET /calls/{}": Probe("GET", "/calls/{peer_call}"),
    "POST /calls/{}/close": Probe("POST", "/calls/{peer_call}/close", REASON),
    "POST /calls/{}/proposals": Probe("POST", "/calls/{peer_call}/proposals", PROPOSAL),
    "GET /proposals": Probe("GET", "/proposals", finds=_has("id", "proposal")),
    "GET /proposals ?draft": Probe("GET", "/proposals", finds=_has("id", "draft")),
    "GET /proposals/{}": Probe("GET", "/proposals/{proposal}"),
    "GET /proposals/{} ?draft": Probe("GET", "/proposals/{draft}"),
    "PATCH /proposals/{}": Probe(
        "PATCH", "/proposals/{draft}", {"title": "Vision models for picking robots"}
    ),
    "POST /proposals/{}/submit": Probe("POST", "/proposals/{draft}/submit"),
    "POST /proposals/{}/withdraw": Probe("POST", "/proposals/{proposal}/withdraw", REASON),
    "POST /proposals/{}/technical-check": Probe(
        "POST", "/proposals/{checked}/technical-check", {"outcome": "accept", **REASON}
    ),
    "GET /proposals/{} ?elsewhere": Probe("GET", "/proposals/{elsewhere}"),
    "POST /proposals/{}/technical-check ?elsewhere": Probe(
        "POST", "/proposals/{elsewhere}/technical-check", {"outcome": "accept", **REASON}
    ),
    "POST /proposals/{}/technical-check ?draft": Probe(
        "POST", "/proposals/{draft}/technical-check", {"outcome": "accept", **REASON}
    ),
    "POST /reviewers": Probe("POST", "/reviewers", {"username": "nadia", "domains": ["health"]}),
    "GET /reviewers": Probe("GET", "/reviewers"),
    "DELETE /reviewers/{}": Probe("DELETE", "/reviewers/{user_reviewer_assigned}", params=REASON),
    "GET /reviewers/me/conflicts": Probe("GET", "/reviewers/me/conflicts"),
    "POST /reviewers/me/conflicts": Probe(
        "POST", "/reviewers/me/conflicts", {"proposal_id": "{proposal}", **REASON}
    ),
    "POST /calls/{}/review-assignments": Probe("POST", "/calls/{peer_call}/review-assignments", {}),
    "GET /reviews": Probe("GET", "/reviews", finds=_has("id", "review")),
    "GET /reviews/{}": Probe("GET", "/reviews/{review}"),
    "PUT /reviews/{}": Probe(
        "PUT",
        "/reviews/{review}",
        {"scores": {"excellence": 7, "impact": 7, "feasibility": 7}, "comment": "Fine."},
    ),
    "POST /reviews/{}/decline": Probe("POST", "/reviews/{review}/decline", REASON),
    "GET /calls/{}/ranking": Probe("GET", "/calls/{peer_call}/ranking"),
    "POST /calls/{}/decisions": Probe(
        "POST",
        "/calls/{peer_call}/decisions",
        {"decisions": [{"proposal_id": "{proposal}", "outcome": "reject", **REASON}]},
    ),
    "GET /proposals/{}/reviews": Probe("GET", "/proposals/{proposal}/reviews"),
    "GET /proposals/{}/reviews ?decided": Probe("GET", "/proposals/{accepted}/reviews"),
    "POST /calls/{}/award-runs": Probe("POST", "/calls/{decided_call}/award-runs", {}),
    "GET /calls/{}/award-runs": Probe("GET", "/calls/{decided_call}/award-runs"),
    "GET /award-runs/{}": Probe("GET", "/award-runs/{award_run}"),
    "POST /award-runs/{}/apply": Probe("POST", "/award-runs/{award_run}/apply", REASON),
    "GET /projects": Probe("GET", "/projects", finds=_has("code", "project")),
    "GET /projects/{}": Probe("GET", "/projects/{project}"),
    "POST /projects/{}/members": Probe(
        "POST", "/projects/{project}/members", {"username": "nadia"}
    ),
    "POST /projects/{}/members/{}/remove": Probe(
        "POST", "/projects/{project}/members/mila/remove", REASON
    ),
    "POST /projects/{}/members/{}/remove ?bob": Probe(
        "POST", "/projects/{project}/members/{user_member}/remove", REASON
    ),
    "GET /projects/{}/allocations": Probe("GET", "/projects/{project}/allocations"),
    "GET /allocations/{}/alerts": Probe("GET", "/allocations/{allocation}/alerts"),
    "POST /allocations/sweep": Probe("POST", "/allocations/sweep"),
    "POST /allocations/{}/close": Probe("POST", "/allocations/{allocation}/close", REASON),
    "POST /allocations/{}/requests": Probe(
        "POST",
        "/allocations/{allocation}/requests",
        {"kind": "extension", "gpu_hours": 50, **JUSTIFIED},
    ),
    "POST /allocations/{}/requests ?transfer-in": Probe(
        "POST",
        "/allocations/{other_allocation}/requests",
        {"kind": "transfer", "gpu_hours": 10, "to_allocation": "{allocation}", **JUSTIFIED},
    ),
    "GET /allocation-requests": Probe("GET", "/allocation-requests", finds=_has("id", "request")),
    "GET /allocation-requests ?project": Probe(
        "GET", "/allocation-requests", params={"project": "{project}"}, finds=_has("id", "request")
    ),
    "POST /allocation-requests/{}/decision": Probe(
        "POST", "/allocation-requests/{request}/decision", {"decision": "approve", **REASON}
    ),
    "GET /audit": Probe("GET", "/audit", finds=_audits_proposal),
    "GET /audit/export": Probe(
        "GET", "/audit/export", params={"format": "jsonl"}, finds=_exports_proposal
    ),
    "GET /notifications": Probe("GET", "/notifications", finds=_tells_pi),
    "GET /notifications ?recipient": Probe(
        "GET", "/notifications", params={"recipient": "alice@example.eu"}, finds=_tells_pi
    ),
    "POST /notifications/deliver": Probe("POST", "/notifications/deliver"),
    "GET /tokens": Probe("GET", "/tokens", finds=_has("id", "token")),
    "GET /tokens ?user": Probe(
        "GET", "/tokens", params={"user": "{user_pi}"}, finds=_has("id", "token")
    ),
    "POST /tokens": Probe("POST", "/tokens", {"label": "for alice", "user": "{user_pi}"}),
    "POST /tokens ?own": Probe("POST", "/tokens", {"label": "my own"}),
    "DELETE /tokens/{}": Probe("DELETE", "/tokens/{token}"),
}
