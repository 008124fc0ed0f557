"""Users who sign in through an OpenID provider (docs/portal-login.md).

A provider's ``sub`` is unique per issuer only, so (issuer, sub) is the key: the first login
with a new key creates a user from the claims, every later one finds the same user. The
provider is the source of a user's name and e-mail: both are updated at each login. The
organisation comes from the configured claim when it names one of the platform's
organisations (by name, in any case); otherwise the user chooses it once in the portal
(:func:`choose_organisation`). The username, made once from ``preferred_username`` or the
e-mail's local part, never changes: projects, site accounts and the audit log name users by it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactories.db.models import OrganisationRow, UserRow
from aifactories.db.security_models import UserIdentityRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound
from aifactories.services.core.auth import forget_cached_principals
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications import audit

# Usernames made here are also the users' names at the sites (Slurm accounts, POSIX users):
# lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, 32 at most.
USERNAME_MAX = 32
_NOT_IN_USERNAME = re.compile(r"[^a-z0-9._-]+")
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
NAME_MAX = 200  # users.full_name
EMAIL_MAX = 254  # users.email


@dataclass(frozen=True)
class IdentityClaims:
    """What the platform takes from a validated ID token (and the provider's userinfo)."""

    issuer: str
    subject: str
    name: str | None = None
    email: str | None = None
    preferred_username: str | None = None
    organisation: str | None = None

    @classmethod
    def of(
        cls, issuer: str, claims: Mapping[str, Any], organisation_claim: str | None
    ) -> IdentityClaims:
        """From the claims as the provider sent them; ``organisation_claim`` names the claim
        that holds the organisation (a list counts by its first entry)."""
        organisation = claims.get(organisation_claim) if organisation_claim else None
        if isinstance(organisation, list):
            organisation = organisation[0] if organisation else None
        return cls(
            issuer=issuer,
            subject=str(claims["sub"]),
            name=_text(claims.get("name"), NAME_MAX),
            email=_text(claims.get("email"), EMAIL_MAX),
            preferred_username=_text(claims.get("preferred_username"), 200),
            organisation=_text(organisation, 200),
        )


@dataclass(frozen=True)
class SignedInUser:
    user_id: int
    username: str
    created: bool  # this login created the user
    organisation_id: int | None  # None: the user must choose one (choose_organisation)


@dataclass(frozen=True)
class OrganisationView:
    id: int
    name: str
    kind: str
    country: str


def user_for_identity(ctx: ServiceContext, claims: IdentityClaims) -> SignedInUser:
    """The user who signs in with ``claims``: found by (issuer, sub) and brought up to date,
    or created. Two first logins of one person at once make one user: the second
    transaction's insert fails on the unique key, and the retry finds the first's user."""
    try:
        return _sign_in(ctx, claims)
    except IntegrityError:
        return _sign_in(ctx, claims)


def _sign_in(ctx: ServiceContext, claims: IdentityClaims) -> SignedInUser:
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        identity = session.scalars(
            select(UserIdentityRow).where(
                UserIdentityRow.issuer == claims.issuer,
                UserIdentityRow.subject == claims.subject,
            )
        ).first()
        created = identity is None
        if identity is None:
            user = _new_user(session, claims)
            identity = UserIdentityRow(
                user_id=user.id,
                issuer=claims.issuer,
                subject=claims.subject,
                created_at=now,
                last_login_at=now,
            )
            session.add(identity)
            audit.record(
                session,
                at=now,
                actor=None,
                action="user.create",
                subject=f"user:{user.username}",
                details={"via": "oidc", "issuer": claims.issuer, "subject": claims.subject},
            )
        else:
            user = session.get_one(UserRow, identity.user_id)
            identity.last_login_at = now
            # the provider is the source of these: a change there shows here at the next login
            if claims.email:
                user.email = claims.email
            if claims.name:
                user.full_name = claims.name
        if user.organisation_id is None and claims.organisation:
            found = _organisation_named(session, claims.organisation)
            user.organisation_id = found.id if found is not None else None
        session.flush()
        signed_in = SignedInUser(user.id, user.username, created, user.organisation_id)
    if not created:
        forget_cached_principals()  # a token's cached principal may hold the old organisation
    return signed_in


def _new_user(session: Session, claims: IdentityClaims) -> UserRow:
    email = claims.email or ""
    wanted = claims.preferred_username or email.partition("@")[0] or claims.name or "user"
    username = _free_username(session, username_from(wanted))
    user = UserRow(
        username=username,
        full_name=claims.name or username,
        email=email,
        organisation_id=None,
        is_operator=False,
    )
    session.add(user)
    session.flush()
    return user


def username_from(wanted: str) -> str:
    """A username for the sites from whatever the provider calls the user: accents dropped,
    lower case, other characters as '-' ("Jörg Müller" -> "jorg-muller")."""
    ascii_text = unicodedata.normalize("NFKD", wanted).encode("ascii", "ignore").decode()
    name = _NOT_IN_USERNAME.sub("-", ascii_text.lower()).strip("-._")
    return name[:USERNAME_MAX].rstrip("-._") or "user"


def _free_username(session: Session, base: str) -> str:
    """``base``, or ``base`` with the smallest number from 2 that nobody has yet."""
    taken = set(
        session.scalars(
            select(UserRow.username).where(func.lower(UserRow.username).like(f"{base}%"))
        )
    )
    taken_lower = {t.lower() for t in taken}
    if base not in taken_lower:
        return base
    number = 2
    while True:
        suffix = str(number)
        candidate = base[: USERNAME_MAX - len(suffix)] + suffix
        if candidate not in taken_lower:
            return candidate
        number += 1


def _organisation_named(session: Session, name: str) -> OrganisationRow | None:
    return session.scalars(
        select(OrganisationRow).where(func.lower(OrganisationRow.name) == name.strip().lower())
    ).first()


def _text(value: object, limit: int) -> str | None:
    """A claim as one line of at most ``limit`` characters (None if absent or empty):
    the provider's text is stored as it is shown, without control characters."""
    if not isinstance(value, str):
        return None
    line = _CONTROL.sub(" ", value).strip()[:limit].strip()
    return line or None


def list_organisations(ctx: ServiceContext) -> list[OrganisationView]:
    """Every organisation, by name: the list a new user chooses from."""
    with ctx.reads() as session:
        rows = session.scalars(select(OrganisationRow).order_by(OrganisationRow.name))
        return [OrganisationView(r.id, r.name, r.kind, r.country) for r in rows]


def choose_organisation(
    ctx: ServiceContext, principal: Principal, organisation_id: int
) -> OrganisationView:
    """Set the caller's organisation, once: proposals and eligibility rest on it, so a
    change afterwards is a programme operator's decision, not the user's."""
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        user = session.get(UserRow, int(principal.user_id))
        if user is None:
            raise NotFound(f"user {principal.username!r} does not exist")
        if user.organisation_id is not None:
            current = session.get(OrganisationRow, user.organisation_id)
            raise Conflict(
                f"your organisation is already {current.name if current else 'set'}; "
                "to change it, ask a programme operator"
            )
        org = session.get(OrganisationRow, organisation_id)
        if org is None:
            raise InvalidInput("organisation", "choose an organisation from the list")
        user.organisation_id = org.id
        audit.record(
            session,
            at=now,
            actor=principal,
            action="user.organisation",
            subject=f"user:{user.username}",
            details={"organisation_id": org.id, "organisation": org.name},
        )
        view = OrganisationView(org.id, org.name, org.kind, org.country)
    forget_cached_principals()
    return view
