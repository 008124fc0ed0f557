"""Settings, from AIFACTORIES_* environment variables (pydantic-settings), never read at import.

Examples::

    AIFACTORIES_DATABASE_URL=postgresql+psycopg://aif@localhost/aif
    AIFACTORIES_DATA_DIR=/var/lib/aifactories
    AIFACTORIES_CATALOGUE=/etc/aifactories/catalogue.yaml
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aifactories"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIFACTORIES_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None  # default: SQLite file in data_dir
    catalogue: Path | None = None  # default: the embedded catalogue
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    api_threads: Annotated[int, Field(ge=1, le=256)] = 8  # worker threads per API process
    # Run hot-path database calls on the API's event loop: None = when the database is local
    # (SQLite, or a server on loopback or a Unix socket).
    api_inline_database: bool | None = None
    # the broker
    policy: str = "earliest_start"
    broker_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    run_broker: bool = True
    executor: str = "emulated"
    emulated_time_factor: Annotated[float, Field(gt=0, le=1_000_000)] = 1.0
    # how emulated sites keep jobs away from the platform (docs/job-isolation.md): auto,
    # sandbox (bubblewrap), user (root: per-project unprivileged users), none
    job_isolation: Literal["auto", "sandbox", "user", "none"] = "auto"
    job_uid_base: Annotated[int, Field(ge=1000, le=4_000_000_000)] = 1_950_000_000
    job_uid_count: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    job_scratch_dir: Path | None = None  # user mode's job folders; default /var/tmp/...
    fair_share_half_life_s: Annotated[float, Field(gt=0)] = 7 * 86400
    # how long a site may stay unreachable before its queued jobs move to other sites
    site_failover_grace_s: Annotated[float, Field(ge=0)] = 0.0
    # how long the broker leaves an unreachable site alone before asking it again
    site_retry_interval_s: Annotated[float, Field(ge=0)] = 15.0
    # accounts sync and usage import at the Slurm sites, every so often (0: never)
    site_sync_interval_s: Annotated[float, Field(ge=0)] = 300.0
    # several instances on one PostgreSQL (docs/operations.md): one broker leads at a time.
    # This instance's name in the lease (default "<hostname>:<port>"): unique per instance.
    instance_name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    # a leader that stops renewing is replaced after this long; renewals (and a standby's
    # attempts to take over) every renew interval, well under the period
    lease_period_s: Annotated[float, Field(ge=1, le=3600)] = 10.0
    lease_renew_interval_s: Annotated[float, Field(gt=0, le=1200)] = 2.0
    # admission limits
    max_time_limit_s: Annotated[int, Field(gt=0)] = 7 * 86400
    # a job's output is served (and kept by emulated sites) this long after it ended
    # (docs/job-output.md); then GET /jobs/{id}/output answers 410
    job_output_retention_s: Annotated[float, Field(gt=0)] = 30 * 86400
    # API limits (docs/api-access.md). Request bodies: a job script is the largest there is
    # (up to 500,000 characters), and JSON escapes may grow it to about four times that.
    max_body_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 2 << 20
    # per client address; then 429 until the bucket refills (0: no limit)
    auth_failures_per_minute: Annotated[int, Field(ge=0)] = 20
    # per token, in bursts of up to a minute's worth (0: no limit)
    token_requests_per_minute: Annotated[int, Field(ge=0)] = 60_000
    token_lifetime_days: Annotated[int, Field(ge=1, le=3650)] = 90
    idempotency_keep_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    # the programme's visible priority weights
    critical_domain_weight: Annotated[float, Field(gt=0)] = 1.5
    industrial_weight: Annotated[float, Field(gt=0)] = 1.25
    # notifications (the outbox is delivered by a thread of 'aif up'); no SMTP host: e-mails
    # stay in the outbox as "pending" and can be read with "aif audit notifications"
    smtp_host: str | None = None
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_from: str = "aifactories <noreply@aifactories.localhost>"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    # webhook bodies are signed with HMAC-SHA256 of this secret (X-Aif-Signature), if set
    webhook_secret: str | None = None
    notify_interval_s: Annotated[float, Field(gt=0)] = 2.0
    notify_max_attempts: Annotated[int, Field(ge=1)] = 8
    # the portal (web/, docs/portal.md): its signed session cookie, and the institutional login
    session_secret: str | None = None  # default: a random key kept in data_dir/portal-session.key
    session_lifetime_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0
    # a user with a valid API token may sign in to the portal with it (the demo's users do)
    portal_token_login: bool = True
    # the portal's address as browsers reach it (redirect URIs); default: the request's own
    public_url: str | None = None
    # OpenID Connect (authorization code with PKCE; device grant for 'aif login')
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_provider_name: str = "your institution"  # shown on the login button
    oidc_scopes: str = "openid profile email"
    # the ID token claim naming the user's organisation, if the provider sends one
    oidc_organisation_claim: str | None = None
    # observability (docs/observability.md)
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True  # one line per API request (logger aifactories.access)
    # if set, GET /metrics wants 'Authorization: Bearer <this>'; unset, firewall /metrics
    metrics_token: str | None = None
    # /readyz fails when the broker's last completed cycle is older than this many intervals
    readyz_broker_intervals: Annotated[int, Field(ge=1)] = 10

    @model_validator(mode="after")
    def _lease_renewed_in_time(self) -> Settings:
        if self.lease_renew_interval_s * 2 > self.lease_period_s:
            raise ValueError(
                f"AIFACTORIES_LEASE_RENEW_INTERVAL_S ({self.lease_renew_interval_s:g}) must be "
                f"at most half of AIFACTORIES_LEASE_PERIOD_S ({self.lease_period_s:g}), or one "
                "late renewal loses the broker lease"
            )
        return self

    @property
    def embedded_database_path(self) -> Path:
        """The embedded (SQLite) database's file, used when no database URL is given."""
        return self.data_dir / "aifactories.db"

    @property
    def embedded_database_missing(self) -> bool:
        """No database URL and no embedded database file yet: reading would create one."""
        return self.database_url is None and not self.embedded_database_path.exists()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.embedded_database_path}"

    def inline_database_calls(self, url: URL) -> bool:
        if self.api_inline_database is not None:
            return self.api_inline_database
        host = url.host or ""
        return url.get_backend_name() == "sqlite" or host in ("", "localhost", "127.0.0.1", "::1")

    @property
    def sites_state_dir(self) -> Path:
        return self.data_dir / "sites"
