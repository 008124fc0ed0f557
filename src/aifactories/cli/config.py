"""The CLI profile: server URL and API token, from the environment or the profile file.

Precedence: AIFACTORIES_SERVER / AIFACTORIES_TOKEN, then the profile file
(AIFACTORIES_CONFIG, default ``$XDG_CONFIG_HOME/aifactories/profile.json``), then defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"


def profile_path() -> Path:
    explicit = os.environ.get("AIFACTORIES_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aifactories" / "profile.json"


@dataclass
class Profile:
    server: str = DEFAULT_SERVER
    token: str | None = None
    project: str | None = None  # default project for submit and balance


def load_profile() -> Profile:
    profile = Profile()
    path = profile_path()
    if path.exists():
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise SystemExit(
                f"error: cannot read the profile {path}: {exc}; "
                "fix or delete it, then run 'aif login'"
            ) from None
        profile = Profile(
            server=data.get("server", DEFAULT_SERVER),
            token=data.get("token"),
            project=data.get("project"),
        )
    profile.server = os.environ.get("AIFACTORIES_SERVER", profile.server)
    profile.token = os.environ.get("AIFACTORIES_TOKEN", profile.token)
    profile.project = os.environ.get("AIFACTORIES_PROJECT", profile.project)
    return profile


def save_profile(profile: Profile) -> Path:
    """Write the profile readable by its owner only: it holds a token."""
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(profile), handle, indent=2)
    os.replace(tmp, path)
    return path
