"""Authentication (API tokens) and the authorisation rules, in one place."""

from __future__ import annotations

import threading

from sqlalchemy import select

from aifactories.db.accounts import hash_token, memberships_of, user_for_token
from aifactories.db.programme_models import ReviewerRow, SiteOperatorRow
from aifactories.domain.clock import stopwatch
from aifactories.domain.errors import AuthenticationRequired, NotFound, PermissionDenied
from aifactories.domain.ids import ProjectId, UserId
from aifactories.domain.projects import Role
from aifactories.services.context import Principal, ServiceContext

# token hash -> (principal, expiry on the monotonic clock). A short cache: every request
# would otherwise pay two queries to learn what rarely changes; a revoked token or a changed
# membership takes effect within TOKEN_CACHE_S.
TOKEN_CACHE_S = 5.0
_cache: dict[str, tuple[Principal, float]] = {}
_cache_lock = threading.Lock()


def forget_cached_principals() -> None:
    with _cache_lock:
        _cache.clear()


def cached_principal(ctx: ServiceContext, token: str | None) -> Principal | None:
    """The principal for ``token`` if it was authenticated in the last TOKEN_CACHE_S."""
    if not token:
        return None
    with _cache_lock:
        hit = _cache.get(f"{id(ctx)}:{hash_token(token)}")
    return hit[0] if hit is not None and hit[1] > stopwatch() else None


def authenticate(ctx: ServiceContext, token: str | None) -> Principal:
    if not token:
        raise AuthenticationRequired(
            "an API token is required: send 'Authorization: Bearer <token>' "
            "(the CLI reads it from AIFACTORIES_TOKEN or the profile written by 'aif login')"
        )
    key = f"{id(ctx)}:{hash_token(token)}"
    now = stopwatch()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    principal = _load_principal(ctx, token)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (principal, now + TOKEN_CACHE_S)
    return principal


def _load_principal(ctx: ServiceContext, token: str | None) -> Principal:
    if not token:
        raise AuthenticationRequired(
            "an API token is required: send 'Authorization: Bearer <token>' "
            "(the CLI reads it from AIFACTORIES_TOKEN or the profile written by 'aif login')"
        )
    with ctx.reads() as session:
        user = user_for_token(session, token)
        if user is None:
            raise AuthenticationRequired("this API token is unknown or revoked; ask for a new one")
        roles = {ProjectId(p): Role(r) for p, r in memberships_of(session, user.id).items()}
        reviewer = session.get(ReviewerRow, user.id)
        sites = session.scalars(
            select(SiteOperatorRow.site_id).where(SiteOperatorRow.user_id == user.id)
        ).all()
        return Principal(
            UserId(user.id),
            user.username,
            user.is_operator,
            roles,
            organisation_id=user.organisation_id,
            is_reviewer=reviewer is not None and reviewer.active,
            operated_sites=frozenset(sites),
        )


def require_project_access(principal: Principal, project_id: int, project_ref: str) -> Role | None:
    """Members and operators may look at a project; anyone else learns nothing about it
    (the same 404 as for a project that does not exist)."""
    role = principal.role_in(project_id)
    if role is None and not principal.is_operator:
        raise NotFound(f"project {project_ref!r} does not exist or you are not a member of it")
    return role


def require_can_cancel(principal: Principal, project_id: int, owner_id: int, job_id: int) -> None:
    if principal.is_operator or principal.role_in(project_id) is Role.PI:
        return
    if owner_id != principal.user_id:
        raise PermissionDenied(
            f"job {job_id} belongs to another member; only its owner or the project's PI "
            "can cancel it"
        )


def require_programme_operator(principal: Principal, action: str) -> None:
    if not principal.is_operator:
        raise PermissionDenied(f"only a programme operator can {action}")
