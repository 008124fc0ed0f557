"""REST endpoints: peer review (the reviewer pool, conflicts of interest, assignments, scores,
the panel's ranking and decisions). Thin: the rules live in services.review_pool,
review_assignments, reviews and review_decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat

from aifactories.api.deps import Ctx, Me
from aifactories.api.params import PathId, PathRef, PathUsername, ReasonQ, WordQ
from aifactories.services.core.input_types import Code, Comment, Id, Instant, Name, Username
from aifactories.services.programme import review_assignments, review_decisions, review_pool
from aifactories.services.programme import reviews as review_service

router = APIRouter(tags=["reviews"])


# --------------------------------------------------------------------------- requests


class ReviewerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    domains: Annotated[
        list[Code],
        Field(max_length=20, description="domains of expertise: health, energy, climate, ..."),
    ]


class ConflictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation: Annotated[Name | None, Field(description="an organisation's name")] = None
    proposal_id: Id | None = None
    reason: Comment = ""


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cutoff_at: Annotated[
        Instant | None,
        Field(description="one cut-off of the call (ISO date or time); default: all"),
    ] = None


Score = Annotated[StrictFloat, Field(ge=0, le=10, allow_inf_nan=False)]


class ScoresIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scores: Annotated[
        dict[Code, Score],
        Field(max_length=20, description="every criterion of the call, 0 to 10"),
    ]
    comment: Comment = ""


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Comment = ""


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal_id: Id
    outcome: Annotated[Code, Field(description="accept or reject")]
    reason: Comment = ""


class DecisionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: StrictBool = Field(default=False, description="apply the call's min_average_score")
    decisions: Annotated[list[DecisionIn], Field(max_length=10_000)] = []
    cutoff_at: Annotated[Instant | None, Field(description="the rule at one cut-off")] = None


# --------------------------------------------------------------------------- responses


class ConflictOut(BaseModel):
    id: int
    organisation: str | None
    proposal_id: int | None
    reason: str
    declared_at: float
    withdrawn_reviews: list[int] = Field(
        default_factory=list, description="proposals whose review of yours was withdrawn"
    )


class ReviewerOut(BaseModel):
    username: str
    full_name: str
    organisation: str | None
    country: str | None
    expertise: list[str]
    active: bool
    assigned: int
    submitted: int
    declined: int
    conflicts: list[ConflictOut]


class AssignedOut(BaseModel):
    review_id: int
    proposal_id: int
    reviewer: str
    expert: bool


class ShortfallOut(BaseModel):
    proposal_id: int
    wanted: int
    reviewers: int
    missing: int
    reason: str
    excluded: dict[str, int]


class AssignmentOut(BaseModel):
    call: str
    cutoff_at: float | None
    reviewers_per_proposal: int
    proposals: int
    assigned: list[AssignedOut]
    shortfalls: list[ShortfallOut]
    loads: dict[str, int]


class ProposalBrief(BaseModel):
    id: int
    call: str
    mode: str
    status: str
    title: str
    abstract: str
    domain: str
    organisation: str
    country: str
    requested_gpu_hours: float
    period_months: int
    gpu_model: str | None
    largest_job_gpus: int
    cutoff_at: float | None


class CriterionOut(BaseModel):
    name: str
    weight: float
    normalised_weight: float


class ReviewOut(BaseModel):
    id: int
    status: str
    reviewer: str | None
    proposal: ProposalBrief
    criteria: list[CriterionOut]
    scores: dict[str, float]
    score: float | None
    comment: str
    decline_reason: str | None
    assigned_at: float
    submitted_at: float | None
    editable: bool


class PanelReviewerOut(BaseModel):
    review_id: int
    reviewer: str
    status: str
    score: float | None


class RankingEntry(BaseModel):
    proposal_id: int
    title: str
    organisation: str
    domain: str
    status: str
    cutoff_at: float | None
    submitted_at: float | None
    rank: int | None
    score: float | None
    spread: float | None
    reviews: int
    assigned: int
    declined: int
    missing: int
    reviewers: list[PanelReviewerOut]


class RankingOut(BaseModel):
    call: str
    cutoff_at: float | None
    criteria: list[CriterionOut]
    reviewers_per_proposal: int
    min_average_score: float | None
    entries: list[RankingEntry]


class DecidedOut(BaseModel):
    proposal_id: int
    outcome: str
    status: str
    score: float | None
    rank: int | None
    reviews: int
    reason: str


class SkippedOut(BaseModel):
    proposal_id: int
    reason: str


class DecisionsOut(BaseModel):
    call: str
    cutoff_at: float | None
    decided: list[DecidedOut]
    skipped: list[SkippedOut]


class ProposalReviewsOut(BaseModel):
    """``reviews`` holds full reviews for operators and a reviewer's own; for the applicant,
    anonymised ones (reviewer "Reviewer 1", ..., scores, score, comment)."""

    proposal_id: int
    call: str
    status: str
    score: float | None
    rank: int | None
    decision_reason: str | None
    criteria: list[CriterionOut]
    reviews: list[dict[str, Any]]


# --------------------------------------------------------------------------- the pool


@router.post("/reviewers", response_model=ReviewerOut, status_code=201)
def add_reviewer(context: Ctx, who: Me, body: ReviewerIn) -> Any:
    return review_pool.add_reviewer(context, who, body.username, body.domains)


@router.get("/reviewers", response_model=list[ReviewerOut])
def list_reviewers(context: Ctx, who: Me, include_inactive: bool = False) -> Any:
    return review_pool.list_reviewers(context, who, include_inactive=include_inactive)


@router.delete("/reviewers/{username}", response_model=ReviewerOut)
def remove_reviewer(context: Ctx, who: Me, username: PathUsername, reason: ReasonQ = "") -> Any:
    return review_pool.remove_reviewer(context, who, username, reason)


@router.post("/reviewers/me/conflicts", response_model=ConflictOut, status_code=201)
def declare_conflict(context: Ctx, who: Me, body: ConflictIn) -> Any:
    return review_pool.declare_conflict(
        context, who, organisation=body.organisation, proposal_id=body.proposal_id,
        reason=body.reason,
    )  # fmt: skip


@router.get("/reviewers/me/conflicts", response_model=list[ConflictOut])
def my_conflicts(context: Ctx, who: Me) -> Any:
    return review_pool.my_conflicts(context, who)


# --------------------------------------------------------------------------- assignment, reviews


@router.post("/calls/{call}/review-assignments", response_model=AssignmentOut)
def assign(context: Ctx, who: Me, call: PathRef, body: AssignIn | None = None) -> Any:
    cutoff = body.cutoff_at if body else None
    return review_assignments.assign_reviewers(context, who, call, cutoff)


@router.get("/reviews", response_model=list[ReviewOut])
def my_reviews(context: Ctx, who: Me, status: WordQ = None) -> Any:
    return review_service.my_reviews(context, who, status=status)


@router.get("/reviews/{review_id}", response_model=ReviewOut)
def get_review(context: Ctx, who: Me, review_id: PathId) -> Any:
    return review_service.get_review(context, who, review_id)


@router.put("/reviews/{review_id}", response_model=ReviewOut)
def submit_review(context: Ctx, who: Me, review_id: PathId, body: ScoresIn) -> Any:
    return review_service.submit_review(context, who, review_id, body.scores, body.comment)


@router.post("/reviews/{review_id}/decline", response_model=ReviewOut)
def decline_review(context: Ctx, who: Me, review_id: PathId, body: DeclineIn) -> Any:
    return review_service.decline_review(context, who, review_id, body.reason)


# --------------------------------------------------------------------------- the panel


@router.get("/calls/{call}/ranking", response_model=RankingOut)
def ranking(context: Ctx, who: Me, call: PathRef, cutoff_at: WordQ = None) -> Any:
    return review_decisions.panel_ranking(context, who, call, cutoff_at)


@router.post("/calls/{call}/decisions", response_model=DecisionsOut)
def decide(context: Ctx, who: Me, call: PathRef, body: DecisionsIn) -> Any:
    decisions = [
        review_decisions.Decision(d.proposal_id, d.outcome, d.reason) for d in body.decisions
    ]
    return review_decisions.decide(
        context, who, call, rule=body.rule, decisions=decisions, cutoff_at=body.cutoff_at
    )


@router.get("/proposals/{proposal_id}/reviews", response_model=ProposalReviewsOut)
def proposal_reviews(context: Ctx, who: Me, proposal_id: PathId) -> Any:
    return review_service.proposal_reviews(context, who, proposal_id)
