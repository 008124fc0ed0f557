"""REST endpoints: projects and their members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.api.params import PathRef, PathUsername
from aifactories.services.core.input_types import Reason
from aifactories.services.programme import projects as project_service

router = APIRouter(tags=["projects"])


class MemberOut(BaseModel):
    username: str
    full_name: str
    role: str = Field(description="pi or member")
    cap_gpu_hours: float | None = Field(description="the member's own cap, if any")


class ProjectOut(BaseModel):
    id: int
    code: str
    title: str
    organisation: str | None
    domain: str
    industrial: bool
    priority_weight: float
    proposal_id: int | None = Field(description="the proposal the project was awarded from")
    granted_gpu_hours: float
    used_gpu_hours: float
    members: list[MemberOut]


class RemovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(context: Ctx, who: Me) -> Any:
    return project_service.list_projects(context, who)


@router.get("/projects/{project}", response_model=ProjectOut)
def get_project(context: Ctx, who: Me, project: PathRef) -> Any:
    return project_service.get_project(context, who, project)


@router.post("/projects/{project}/members", response_model=ProjectOut, status_code=201)
def add_member(
    context: Ctx,
    who: Me,
    project: PathRef,
    body: project_service.MemberIn,
    key: IdempotencyKey = None,
) -> Any:
    return project_service.add_member(context, who, project, body, key)


@router.post("/projects/{project}/members/{username}/remove", response_model=ProjectOut)
def remove_member(
    context: Ctx, who: Me, project: PathRef, username: PathUsername, body: RemovalIn
) -> Any:
    return project_service.remove_member(context, who, project, username, body.reason)
