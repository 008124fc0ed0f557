"""The demo data set: one organisation of each kind, projects with allocations, users with
API tokens. Loading it twice changes nothing but issues fresh tokens."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from aifactories.db.accounts import (
    new_token,
    organisation_by_name,
    project_by_ref,
    token_and_user,
    user_by_username,
)
from aifactories.db.models import (
    AllocationRow,
    MembershipRow,
    OrganisationRow,
    ProjectRow,
    UserRow,
)
from aifactories.db.programme_models import ReviewerRow, SiteOperatorRow
from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.services.core.context import ServiceContext

YEAR_S = 365 * 86400
TOKEN_LABEL = "demo"  # the label of every token the demo issues

ORGANISATIONS = [
    ("Aurora Robotics", OrganisationKind.STARTUP, "DE"),
    ("Kalevala Health Imaging", OrganisationKind.SME, "FI"),
    ("Officine Meccaniche Po", OrganisationKind.INDUSTRY, "IT"),
    ("Universidad de Ejemplo", OrganisationKind.ACADEMIA, "ES"),
    ("Agence Publique du Climat", OrganisationKind.PUBLIC, "FR"),
    ("Technische Hochschule Beispiel", OrganisationKind.ACADEMIA, "DE"),
    ("Politecnico di Esempio", OrganisationKind.ACADEMIA, "IT"),
    ("Norsk Forskningsinstitutt", OrganisationKind.PUBLIC, "NO"),
    ("Sdruzeni Prikladu", OrganisationKind.ACADEMIA, "CZ"),
]

# username, full name, organisation, operator?
USERS = [
    ("alice", "Alice Andersen", "Aurora Robotics", False),
    ("bob", "Bob Brandt", "Aurora Robotics", False),
    ("carol", "Carol Koskinen", "Kalevala Health Imaging", False),
    ("dario", "Dario Rossi", "Officine Meccaniche Po", False),
    ("elena", "Elena García", "Universidad de Ejemplo", False),
    ("fabien", "Fabien Martin", "Agence Publique du Climat", False),
    ("oscar", "Oscar Operator", None, True),
    ("rita", "Rita Reviewer", "Universidad de Ejemplo", False),
    ("ravi", "Ravi Reviewer", "Technische Hochschule Beispiel", False),
    ("rosa", "Rosa Reviewer", "Politecnico di Esempio", False),
    ("rune", "Rune Reviewer", "Norsk Forskningsinstitutt", False),
    ("radka", "Radka Reviewer", "Sdruzeni Prikladu", False),
    ("sam", "Sam Siteoperator", None, False),
]

# the reviewer pool: username -> expertise domains
REVIEWERS: dict[str, list[Domain]] = {
    "rita": [Domain.HEALTH, Domain.LANGUAGE, Domain.SCIENCE],
    "ravi": [Domain.MANUFACTURING, Domain.MOBILITY, Domain.CLIMATE, Domain.ENERGY],
    "rosa": [Domain.HEALTH, Domain.CLIMATE, Domain.ENERGY, Domain.MANUFACTURING],
    "rune": list(Domain),
    "radka": [Domain.LANGUAGE, Domain.MANUFACTURING, Domain.HEALTH, Domain.SCIENCE],
}
# site operators: username -> the sites whose technical checks they run
SITE_OPERATORS: dict[str, list[str]] = {
    "sam": ["bsc-aif", "it4lia", "lumi-aif", "meluxina-ai", "jaif", "slaif", "czai"],
    "oscar": ["brain-plus-plus"],
}

# code, title, organisation, domain, industrial, members {user: role},
# allocations [(site or None for the pool, GPU-hours)]
DemoProject = tuple[str, str, str, Domain, bool, dict[str, str], list[tuple[str | None, int]]]
PROJECTS: list[DemoProject] = [
    (
        "aurora-vision",
        "Vision models for warehouse robots",
        "Aurora Robotics",
        Domain.MANUFACTURING,
        True,
        {"alice": "pi", "bob": "member"},
        [(None, 20_000)],
    ),
    (
        "kalevala-mri",
        "Foundation model for MRI segmentation",
        "Kalevala Health Imaging",
        Domain.HEALTH,
        True,
        {"carol": "pi"},
        [("lumi-aif", 8_000), (None, 2_000)],
    ),
    (
        "po-twin",
        "Digital twin of a machining line",
        "Officine Meccaniche Po",
        Domain.MANUFACTURING,
        True,
        {"dario": "pi"},
        [("it4lia", 5_000)],
    ),
    (
        "ejemplo-llm",
        "Spanish-Catalan language model",
        "Universidad de Ejemplo",
        Domain.LANGUAGE,
        False,
        {"elena": "pi"},
        [(None, 50_000)],
    ),
    (
        "climat-downscale",
        "Regional climate downscaling",
        "Agence Publique du Climat",
        Domain.CLIMATE,
        False,
        {"fabien": "pi"},
        [(None, 1_000)],
    ),
]


@dataclass(frozen=True)
class DemoTokens:
    tokens: dict[str, str]  # username -> plaintext token


def _ensure(session: Session, ctx: ServiceContext) -> None:
    now = ctx.clock.now()
    orgs = {}
    for name, kind, country in ORGANISATIONS:
        row = organisation_by_name(session, name)
        if row is None:
            row = OrganisationRow(name=name, kind=kind.value, country=country)
            session.add(row)
            session.flush()
        orgs[name] = row
    users = {}
    for username, full_name, org, operator in USERS:
        user = user_by_username(session, username)
        if user is None:
            user = UserRow(
                username=username,
                full_name=full_name,
                email=f"{username}@example.eu",
                organisation_id=orgs[org].id if org else None,
                is_operator=operator,
            )
            session.add(user)
            session.flush()
        users[username] = user
    for username, domains in REVIEWERS.items():
        if session.get(ReviewerRow, users[username].id) is None:
            session.add(
                ReviewerRow(user_id=users[username].id, expertise=[d.value for d in domains])
            )
    for username, operated in SITE_OPERATORS.items():
        for operated_site in operated:
            if session.get(SiteOperatorRow, (users[username].id, operated_site)) is None:
                session.add(SiteOperatorRow(user_id=users[username].id, site_id=operated_site))
    weights = ctx.priority_weights
    for code, title, org, domain, industrial, members, allocations in PROJECTS:
        if project_by_ref(session, code) is not None:
            continue
        project = ProjectRow(
            code=code,
            title=title,
            organisation_id=orgs[org].id,
            domain=domain.value,
            industrial=industrial,
            priority_weight=weights.for_project(domain, industrial),
        )
        session.add(project)
        session.flush()
        for username, role in members.items():
            session.add(MembershipRow(project_id=project.id, user_id=users[username].id, role=role))
        for site_id, hours in allocations:
            session.add(
                AllocationRow(
                    project_id=project.id,
                    site_id=site_id,
                    granted_gpu_seconds=hours * SECONDS_PER_HOUR,
                    reserved_gpu_seconds=0,
                    used_gpu_seconds=0,
                    starts_at=now - 86400,
                    ends_at=now + YEAR_S,
                    status="open",
                    created_at=now,
                )
            )


def load_demo(ctx: ServiceContext) -> DemoTokens:
    with ctx.sessions() as session, session.begin():
        _ensure(session, ctx)
        tokens = {}
        for username, *_ in USERS:
            user = user_by_username(session, username)
            assert user is not None
            now = ctx.clock.now()
            expires_at = now + ctx.settings.token_lifetime_days * 86400.0
            tokens[username] = new_token(session, user.id, TOKEN_LABEL, now, expires_at)
    return DemoTokens(tokens)


class TokenKind(StrEnum):
    """What this platform's database says of a token a CLI profile holds."""

    DEMO = "demo"  # a working token the demo issued
    OTHER = "other"  # a working token made otherwise (aif tokens create, aif login)
    DEAD = "dead"  # unknown here, expired or revoked


def token_kind(ctx: ServiceContext, token: str) -> TokenKind:
    with ctx.reads() as session:
        found = token_and_user(session, token)
        if found is None:
            return TokenKind.DEAD
        row = found[0]
        expired = row.expires_at is not None and row.expires_at <= ctx.clock.now()
        if row.revoked_at is not None or expired:
            return TokenKind.DEAD
        return TokenKind.DEMO if row.label == TOKEN_LABEL else TokenKind.OTHER
