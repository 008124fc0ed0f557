"""Authentication (API tokens) and the authorisation rules, in one place."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.accounts import hash_token, mark_token_used, memberships_of, token_and_user
from aifactories.db.models import ProjectRow, UserRow
from aifactories.db.programme_models import ReviewerRow, SiteOperatorRow
from aifactories.domain.clock import stopwatch, to_datetime
from aifactories.domain.errors import AuthenticationRequired, NotFound, PermissionDenied
from aifactories.domain.ids import ProjectId, UserId
from aifactories.domain.projects import Role
from aifactories.services.core.context import Principal, ServiceContext

# token hash -> (principal, cache expiry on the monotonic clock, token expiry in epoch
# seconds). A short cache: every request would otherwise pay two queries to learn what rarely
# changes; a token revoked in another process or a changed membership takes effect within
# TOKEN_CACHE_S (a revocation in this process clears the cache at once).
TOKEN_CACHE_S = 5.0
# last_used_at is written at most this often per token: not a write per request
LAST_USED_EVERY_S = 60.0
_cache: dict[str, tuple[Principal, float, float | None]] = {}
_cache_lock = threading.Lock()

_NO_TOKEN = (
    "an API token is required: send 'Authorization: Bearer <token>' "
    "(the CLI reads it from AIFACTORIES_TOKEN or the profile written by 'aif login')"
)
_NEW_TOKEN = (
    "make a new one with 'aif tokens create' while another of your tokens works, or ask a "
    "programme operator ('aif tokens create --user YOU', or 'aif tokens issue' on the server)"
)


def token_digest(token: str) -> str:
    """The key a token is cached and rate-limited under (its SHA-256, never the token)."""
    return hash_token(token)


def project_codes(ctx: ServiceContext, principal: Principal) -> dict[int, str]:
    """The codes of the principal's projects, by id (GET /me, the CLI's profile)."""
    if not principal.roles:
        return {}
    with ctx.reads() as session:
        found = session.execute(
            select(ProjectRow.id, ProjectRow.code).where(ProjectRow.id.in_(list(principal.roles)))
        )
        return {int(project_id): str(code) for project_id, code in found}


def forget_cached_principals() -> None:
    with _cache_lock:
        _cache.clear()


def cached_principal(ctx: ServiceContext, token: str | None) -> Principal | None:
    """The principal for ``token`` if it was authenticated in the last TOKEN_CACHE_S."""
    if not token:
        return None
    return cached_principal_by_digest(ctx, hash_token(token))


def cached_principal_by_digest(ctx: ServiceContext, digest: str) -> Principal | None:
    """As :func:`cached_principal`, for a caller that already has the token's hash."""
    with _cache_lock:
        hit = _cache.get(f"{id(ctx)}:{digest}")
    if hit is None or hit[1] <= stopwatch():
        return None
    if hit[2] is not None and hit[2] <= ctx.clock.now():
        return None  # expired since it was cached: the database lookup says so properly
    return hit[0]


def authenticate(ctx: ServiceContext, token: str | None) -> Principal:
    if not token:
        raise AuthenticationRequired(_NO_TOKEN)
    digest = hash_token(token)
    hit = cached_principal_by_digest(ctx, digest)
    if hit is not None:
        return hit
    principal, expires_at = _load_principal(ctx, token)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[f"{id(ctx)}:{digest}"] = (principal, stopwatch() + TOKEN_CACHE_S, expires_at)
    return principal


def _load_principal(ctx: ServiceContext, token: str) -> tuple[Principal, float | None]:
    now = ctx.clock.now()
    with ctx.reads() as session:
        found = token_and_user(session, token)
        if found is None:
            raise AuthenticationRequired(f"this API token is unknown; {_NEW_TOKEN}")
        row, user = found
        if row.revoked_at is not None:
            raise AuthenticationRequired(
                f"this API token ({row.label!r}) was revoked on {_date(row.revoked_at)}; "
                + _NEW_TOKEN
            )
        if row.expires_at is not None and row.expires_at <= now:
            raise AuthenticationRequired(
                f"this API token ({row.label!r}) expired on {_date(row.expires_at)}; " + _NEW_TOKEN
            )
        principal = principal_of_user(session, user)
        token_id, last_used_at, expires_at = row.id, row.last_used_at, row.expires_at
    if last_used_at is None or last_used_at < now - LAST_USED_EVERY_S:
        with ctx.write_engine.begin() as conn:
            mark_token_used(conn, token_id, now, now - LAST_USED_EVERY_S)
    return principal, expires_at


def principal_of_user(session: Session, user: UserRow) -> Principal:
    """Who ``user`` is to the platform now: project roles, reviewer, operated sites. The same
    for a token and a portal session, so that the portal shows what the API would."""
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


def _date(epoch: float) -> str:
    return to_datetime(epoch).strftime("%Y-%m-%d %H:%M UTC")


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
