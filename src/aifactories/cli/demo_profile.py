"""The demo's CLI profile: written when there is none, or when the one there is the demo's own
and no longer works here (another server, or a token this database does not know); never over
a profile the user made with ``aif login``. Says what it did.

A profile the demo wrote is recognised by a marker file next to it holding its token's hash
(so that it is still known after the database was wiped); a profile from before the marker, by
its token, labelled "demo" in this database. A demo user's token saved with ``aif login``
(the marker no longer matches) is the user's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from aifactories.cli.config import Profile, profile_path, save_profile

if TYPE_CHECKING:
    from aifactories.services.platform import Platform


class Action(StrEnum):
    WRITE = "write"  # there was no profile
    KEEP = "keep"  # the demo's own profile, still working here
    REPLACE = "replace"  # the demo's own profile, stale
    LEAVE = "leave"  # the user's profile: never touched


@dataclass(frozen=True)
class Found:
    """The profile on disk, as far as the decision needs it."""

    server: str | None
    token: str | None
    marked: bool | None  # the marker matches its token; None: there is no marker
    kind: str  # services.demo.TokenKind of its token in this database


def decide(found: Found | None, server: str) -> Action:
    if found is None:
        return Action.WRITE
    demo_made = found.marked is True or (found.marked is None and found.kind == "demo")
    if not demo_made:
        return Action.LEAVE
    if found.kind == "demo" and found.server == server:
        return Action.KEEP
    return Action.REPLACE


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".demo")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read(path: Path, platform: Platform) -> Found | None:
    from aifactories.services.demo import token_kind

    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        data = {}  # unreadable: the user's to fix, so it counts as theirs
    token = data.get("token") if isinstance(data, dict) else None
    server = data.get("server") if isinstance(data, dict) else None
    marker = _marker(path)
    marked = None
    if marker.exists():
        marked = isinstance(token, str) and marker.read_text("utf-8").strip() == _digest(token)
    kind = token_kind(platform.ctx, token) if isinstance(token, str) else "dead"
    return Found(server=server, token=token, marked=marked, kind=kind)


def write_demo_profile(
    platform: Platform, server: str, user: str, project: str, token: str, tokens_file: Path
) -> str:
    """Write, keep or leave the profile; return the sentence that says which."""
    path = profile_path()
    action = decide(_read(path, platform), server)
    if action in (Action.WRITE, Action.REPLACE):
        save_profile(Profile(server=server, token=token, project=project))
        _marker(path).write_text(_digest(token) + "\n", "utf-8")
    who = f"{user} (PI of {project})"
    if action is Action.WRITE:
        return f"wrote a CLI profile for {who} to {path}"
    if action is Action.REPLACE:
        return f"the demo's CLI profile {path} was stale: rewritten for {who} at {server}"
    if action is Action.KEEP:
        return f"the CLI profile {path} already logs {who} in here: left as it is"
    return (
        f"your CLI profile {path} (made with aif login) is left as it is; to act as a demo "
        f"user, take their token from {tokens_file}"
    )
