"""REST endpoints: projects and their members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.services import projects as project_service

router = APIRouter(tags=["projects"])


class RemovalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/projects")
def list_projects(context: Ctx, who: Me) -> Any:
    return project_service.list_projects(context, who)


@router.get("/projects/{project}")
def get_project(context: Ctx, who: Me, project: str) -> Any:
    return project_service.get_project(context, who, project)


@router.post("/projects/{project}/members", status_code=201)
def add_member(
    context: Ctx,
    who: Me,
    project: str,
    body: project_service.MemberIn,
    key: IdempotencyKey = None,
) -> Any:
    return project_service.add_member(context, who, project, body, key)


@router.post("/projects/{project}/members/{username}/remove")
def remove_member(context: Ctx, who: Me, project: str, username: str, body: RemovalIn) -> Any:
    return project_service.remove_member(context, who, project, username, body.reason)
