"""Users from an OpenID provider's claims (services/core/identities.py), on SQLite and
PostgreSQL: created once per (issuer, sub), found again, kept up to date by the provider,
the organisation from a claim or chosen once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from aifactories.db.models import UserRow
from aifactories.db.programme_models import AuditRow
from aifactories.db.security_models import UserIdentityRow
from aifactories.domain.errors import Conflict, InvalidInput
from aifactories.services.core.auth import authenticate
from aifactories.services.core.context import Principal
from aifactories.services.core.identities import (
    IdentityClaims,
    choose_organisation,
    list_organisations,
    user_for_identity,
    username_from,
)
from aifactories.services.core.tokens import issue_token
from aifactories.services.platform import Platform
from tests.api.harness import Harness, make_harness

ISSUER = "https://login.uni.example"


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def claims(sub: str = "s-1", **values: object) -> IdentityClaims:
    base: dict[str, object] = {
        "sub": sub,
        "name": "Nora Example",
        "email": "nora@uni.example",
        "preferred_username": "nora",
    }
    base.update(values)
    return IdentityClaims.of(ISSUER, base, "organisation")


def user_row(platform: Platform, user_id: int) -> UserRow:
    with platform.ctx.reads() as session:
        row = session.get(UserRow, user_id)
        assert row is not None
        session.expunge(row)
        return row


def test_first_login_creates_the_user_from_the_claims(h: Harness) -> None:
    signed_in = user_for_identity(h.platform.ctx, claims())
    assert signed_in.created and signed_in.username == "nora"
    user = user_row(h.platform, signed_in.user_id)
    assert (user.full_name, user.email, user.is_operator) == (
        "Nora Example",
        "nora@uni.example",
        False,
    )
    with h.platform.ctx.reads() as session:
        identity = session.scalars(select(UserIdentityRow)).one()
        assert (identity.issuer, identity.subject, identity.user_id) == (ISSUER, "s-1", user.id)
        entry = session.scalars(select(AuditRow).where(AuditRow.action == "user.create")).one()
        assert entry.subject == "user:nora" and entry.details["subject"] == "s-1"


def test_later_logins_find_the_same_user_and_follow_the_provider(h: Harness) -> None:
    ctx = h.platform.ctx
    first = user_for_identity(ctx, claims())
    h.clock.advance(60)
    again = user_for_identity(
        ctx, claims(email="nora.new@uni.example", name="Nora Renamed", preferred_username="nn")
    )
    assert again.user_id == first.user_id and not again.created
    user = user_row(h.platform, first.user_id)
    # e-mail and name follow the provider; the username stays what it was
    assert (user.username, user.email, user.full_name) == (
        "nora",
        "nora.new@uni.example",
        "Nora Renamed",
    )
    with ctx.reads() as session:
        identity = session.scalars(select(UserIdentityRow)).one()
        assert identity.last_login_at == identity.created_at + 60


def test_the_key_is_issuer_and_subject(h: Harness) -> None:
    ctx = h.platform.ctx
    one = user_for_identity(ctx, claims())
    other_sub = user_for_identity(ctx, claims(sub="s-2"))
    other_issuer = user_for_identity(
        ctx,
        IdentityClaims.of("https://other.example", {"sub": "s-1", "email": "x@o.example"}, None),
    )
    assert len({one.user_id, other_sub.user_id, other_issuer.user_id}) == 3
    # a taken username gets the smallest free number; the e-mail's local part serves too
    assert (one.username, other_sub.username, other_issuer.username) == ("nora", "nora2", "x")


def test_a_demo_username_is_never_taken_over(h: Harness) -> None:
    signed_in = user_for_identity(h.platform.ctx, claims(preferred_username="Alice"))
    assert signed_in.username == "alice2"
    assert authenticate(h.platform.ctx, h.tokens["alice"]).username == "alice"


@pytest.mark.parametrize(
    ("wanted", "username"),
    [
        ("Jörg Müller", "jorg-muller"),
        ("ÉLODIE.dupont", "elodie.dupont"),
        ("--__--", "user"),
        ("李", "user"),
        ("a" * 80, "a" * 32),
        ("x@y", "x-y"),
    ],
)
def test_usernames_suit_the_sites(wanted: str, username: str) -> None:
    assert username_from(wanted) == username


def test_claims_without_names_or_with_control_characters(h: Harness) -> None:
    bare = IdentityClaims.of(ISSUER, {"sub": 42, "name": "Evil\x00\nName", "email": ""}, None)
    assert (bare.subject, bare.name, bare.email) == ("42", "Evil  Name", None)
    signed_in = user_for_identity(h.platform.ctx, bare)
    assert signed_in.username == "evil-name"


def test_organisation_from_the_claim_in_any_case(h: Harness) -> None:
    signed_in = user_for_identity(h.platform.ctx, claims(organisation=" aurora ROBOTICS "))
    names = {o.id: o.name for o in list_organisations(h.platform.ctx)}
    assert signed_in.organisation_id is not None
    assert names[signed_in.organisation_id] == "Aurora Robotics"


def test_an_unknown_organisation_is_chosen_once(h: Harness) -> None:
    ctx = h.platform.ctx
    signed_in = user_for_identity(ctx, claims(organisation="Nowhere Institute"))
    assert signed_in.organisation_id is None
    principal = authenticate_as(h, signed_in.user_id)
    orgs = list_organisations(ctx)
    assert [o.name for o in orgs] == sorted(o.name for o in orgs)
    with pytest.raises(InvalidInput, match="choose an organisation"):
        choose_organisation(ctx, principal, 999_999)
    chosen = choose_organisation(ctx, principal, orgs[0].id)
    assert user_row(h.platform, signed_in.user_id).organisation_id == chosen.id
    with pytest.raises(Conflict, match="already"):
        choose_organisation(ctx, principal, orgs[1].id)
    # the next login does not undo the choice, even with a claim naming another organisation
    again = user_for_identity(ctx, claims(organisation="Aurora Robotics"))
    assert again.organisation_id == chosen.id


def authenticate_as(h: Harness, user_id: int) -> Principal:
    username = user_row(h.platform, user_id).username
    secret = issue_token(h.platform.ctx, username, "test", 1).secret
    assert secret is not None
    return authenticate(h.platform.ctx, secret)
