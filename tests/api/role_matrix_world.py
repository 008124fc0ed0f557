"""The fixed world the role matrix runs in (tests/api/test_role_matrix.py).

Everything targeted belongs to one party: the project ``aurora-vision`` of Aurora Robotics
(PI alice, member bob), alice's proposals and the review of one of them. Every other role
looks at that party's objects from outside (or, for the PI and the member, from inside).
Built through the API, as users would, except the few users and the second allocation the
API cannot make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from aifactories.db.accounts import new_token, organisation_by_name, project_by_ref
from aifactories.db.models import AllocationRow, UserRow
from aifactories.domain.units import SECONDS_PER_HOUR
from tests.api.harness import Harness
from tests.api.programme_helpers import DAY, draft, open_call, submit

PROJECT = "aurora-vision"  # the target project: Aurora Robotics, PI alice, member bob
# The columns of the matrix. Users fixed here; the two reviewers come from the assignment.
FIXED_USERS: dict[str, str | None] = {
    "anonymous": None,  # no token
    "programme_operator": "oscar",
    "site_operator": "sam",  # operates it4lia, where the Fast Lane proposal can run
    "pi": "alice",
    "member": "bob",  # member of aurora-vision and on the team of alice's proposals
    "other_pi": "carol",  # PI of kalevala-mri (Kalevala Health Imaging): another project
    "other_org": "kai",  # Kalevala Health Imaging, no project, not a reviewer
    "no_project": "nadia",  # Aurora Robotics (alice's own organisation), no project
}
ROLES = (
    "anonymous",
    "programme_operator",
    "site_operator",
    "reviewer_assigned",
    "reviewer_other",
    "pi",
    "member",
    "other_pi",
    "other_org",
    "no_project",
)
# kai and nadia are columns; mila joins aurora-vision as a second member, without jobs
EXTRA_USERS = (
    ("kai", "Kalevala Health Imaging"),
    ("nadia", "Aurora Robotics"),
    ("mila", "Aurora Robotics"),
)
LARGE = {"requested_gpu_hours": 60_000, "period_months": 6, "members": ["bob"]}
GOOD = {"excellence": 9, "impact": 8, "feasibility": 7}


@dataclass(frozen=True)
class World:
    users: dict[str, str | None]  # role -> username (None: no token)
    tokens: dict[str, str]  # username -> token
    now: float  # the clock when the world was made
    project: str
    peer_call: str  # "ls": open, alice's proposal under review until its cut-off
    decided_call: str  # "ls0": cut-off passed, alice's proposal accepted, an award run proposed
    fast_call: str  # "fl": alice's proposal waits for the technical check at it4lia
    proposal: int  # alice's, under review in "ls", team [bob], one reviewer assigned
    draft: int  # alice's draft in "ls", team [bob]
    checked: int  # alice's, in technical_check in "fl", at it4lia (sam's)
    elsewhere: int  # alice's, in technical_check in "fl", at brain-plus-plus (not sam's)
    accepted: int  # alice's, accepted in "ls0"
    review: int  # the assigned reviewer's review of ``proposal`` (assigned, not submitted)
    award_run: int  # proposed on "ls0"
    job: int  # alice's, pending in aurora-vision
    member_job: int  # bob's, pending in aurora-vision
    other_job: int  # carol's, pending in kalevala-mri
    allocation: int  # aurora-vision's pool allocation
    other_allocation: int  # kalevala-mri's first allocation (lumi-aif)
    request: int  # alice's pending extension of aurora-vision's second allocation (lumi-aif)
    token: int  # alice's second API token ("laptop"), not the one the matrix sends

    def ids(self) -> dict[str, Any]:
        """The values request templates may name: {proposal}, {review}, ..."""
        return {k: v for k, v in self.__dict__.items() if k not in ("users", "tokens")}


def _add_users(h: Harness) -> dict[str, str]:
    ctx = h.platform.ctx
    tokens: dict[str, str] = {}
    with ctx.sessions() as session, session.begin():
        for username, organisation in EXTRA_USERS:
            org = organisation_by_name(session, organisation)
            assert org is not None
            user = UserRow(
                username=username,
                full_name=username.title(),
                email=f"{username}@example.eu",
                organisation_id=org.id,
                is_operator=False,
            )
            session.add(user)
            session.flush()
            tokens[username] = new_token(session, user.id, "role matrix", ctx.clock.now())
        project = project_by_ref(session, PROJECT)
        assert project is not None
        session.add(  # a second allocation, so a transfer and a pending request have a home
            AllocationRow(
                project_id=project.id,
                site_id="lumi-aif",
                granted_gpu_seconds=1_000 * SECONDS_PER_HOUR,
                reserved_gpu_seconds=0,
                used_gpu_seconds=0,
                starts_at=ctx.clock.now() - DAY,
                ends_at=ctx.clock.now() + 365 * DAY,
                status="open",
            )
        )
    return tokens


def _allocations(h: Harness, code: str = PROJECT) -> list[int]:
    with h.platform.ctx.reads() as session:
        project = project_by_ref(session, code)
        assert project is not None
        return list(
            session.scalars(
                select(AllocationRow.id)
                .where(AllocationRow.project_id == project.id)
                .order_by(AllocationRow.id)
            )
        )


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


JOB_KEY = "role-matrix-1"  # alice's job was submitted with this Idempotency-Key


def _job(h: Harness, user: str, project: str, key: str | None = None) -> int:
    body = {"project": project, "gpus": 1, "time_limit": 600, "command": ["true"]}
    headers = {"Idempotency-Key": key} if key else {}
    return int(_ok(h.client(user).post("/jobs", json=body, headers=headers), 201)["id"])


def build_world(h: Harness) -> World:
    tokens = {**h.tokens, **_add_users(h)}
    rules = {"reviewers_per_proposal": 1, "min_average_score": 6}
    open_call(h, "ls0", "large_scale", cutoffs=[h.clock.now() + 10 * DAY], rules=rules)
    open_call(h, "ls", "large_scale", cutoffs=[h.clock.now() + 30 * DAY], rules=rules)
    fast_budget = {"it4lia": 40_000, "lumi-aif": 40_000, "pool": 40_000}
    open_call(h, "fl", "fast_lane", budget_gpu_hours=fast_budget)
    accepted = int(submit(h, "alice", draft(h, "alice", "ls0", **LARGE)["id"])["id"])
    proposal = int(submit(h, "alice", draft(h, "alice", "ls", **LARGE)["id"])["id"])
    theirs = draft(h, "carol", "ls", **{**LARGE, "members": [], "domain": "health"})
    submit(h, "carol", theirs["id"])
    fast = draft(h, "alice", "fl", requested_gpu_hours=20_000, gpu_model="A100", residency=["IT"])
    checked = submit(h, "alice", fast["id"])
    assert checked["status"] == "technical_check" and "it4lia" in checked["candidate_sites"]
    h200 = draft(h, "alice", "fl", requested_gpu_hours=20_000, gpu_model="H200")
    elsewhere = submit(h, "alice", h200["id"])  # only brain-plus-plus has H200: not sam's
    assert elsewhere["candidate_sites"] == ["brain-plus-plus"], elsewhere
    pending = draft(h, "alice", "ls", **LARGE)

    oscar = h.client("oscar")
    plans = [_ok(oscar.post(f"/calls/{c}/review-assignments", json={})) for c in ("ls0", "ls")]
    by_proposal = {a["proposal_id"]: a for plan in plans for a in plan["assigned"]}
    assigned = by_proposal[proposal]["reviewer"]
    # another reviewer in the pool, with reviews of their own (carol's proposal, if they can)
    pool = [r["username"] for r in _ok_list(oscar.get("/reviewers"))]
    others = [r for r in pool if r != assigned]
    theirs_reviewer = by_proposal[int(theirs["id"])]["reviewer"]
    other = theirs_reviewer if theirs_reviewer != assigned else others[0]

    scorer = h.client(by_proposal[accepted]["reviewer"])
    body = {"scores": GOOD, "comment": "Sound plan."}
    _ok(scorer.put(f"/reviews/{by_proposal[accepted]['review_id']}", json=body))
    h.clock.advance(11 * DAY)  # past ls0's cut-off, before ls's
    _ok(oscar.post("/calls/ls0/decisions", json={"rule": True}))
    run = _ok(oscar.post("/calls/ls0/award-runs", json={}), 201)

    _ok(h.client("alice").post(f"/projects/{PROJECT}/members", json={"username": "mila"}), 201)
    pool_allocation, site_allocation = _allocations(h)
    ask = {"kind": "extension", "gpu_hours": 100, "justification": "the pilot grew"}
    request = _ok(h.client("alice").post(f"/allocations/{site_allocation}/requests", json=ask), 201)
    return World(
        users={**FIXED_USERS, "reviewer_assigned": assigned, "reviewer_other": other},
        tokens=tokens,
        now=h.clock.now(),
        project=PROJECT,
        peer_call="ls",
        decided_call="ls0",
        fast_call="fl",
        proposal=proposal,
        draft=int(pending["id"]),
        checked=int(checked["id"]),
        elsewhere=int(elsewhere["id"]),
        accepted=accepted,
        review=int(by_proposal[proposal]["review_id"]),
        award_run=int(run["id"]),
        job=_job(h, "alice", PROJECT, key=JOB_KEY),
        member_job=_job(h, "bob", PROJECT),
        other_job=_job(h, "carol", "kalevala-mri"),
        allocation=pool_allocation,
        other_allocation=_allocations(h, "kalevala-mri")[0],
        request=int(request["id"]),
        token=int(_ok(h.client("alice").post("/tokens", json={"label": "laptop"}), 201)["id"]),
    )


def _ok_list(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json())
