"""The demo's CLI profile: written when there is none, kept while it works, rewritten when the
demo's own is stale, and never written over a profile the user made (aif login)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.demo_profile import Action, Found, decide
from aifactories.cli.main import app as cli

SERVER = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("found", "server", "action"),
    [
        (None, SERVER, Action.WRITE),
        (Found(SERVER, "t", marked=True, kind="demo"), SERVER, Action.KEEP),
        (Found(SERVER, "t", marked=None, kind="demo"), SERVER, Action.KEEP),  # older demo
        (Found(SERVER, "t", marked=False, kind="demo"), SERVER, Action.LEAVE),  # aif login
        (Found(SERVER, "t", marked=True, kind="demo"), "http://127.0.0.1:9000", Action.REPLACE),
        (Found(SERVER, "t", marked=True, kind="dead"), SERVER, Action.REPLACE),  # wiped data
        (Found(SERVER, "t", marked=False, kind="dead"), SERVER, Action.LEAVE),
        (Found(SERVER, "t", marked=False, kind="other"), SERVER, Action.LEAVE),  # aif login
        (Found(None, None, marked=None, kind="dead"), SERVER, Action.LEAVE),  # unreadable
    ],
)
def test_decide(found: Found | None, server: str, action: Action) -> None:
    assert decide(found, server) is action


def _aif(tmp_path: Path, data: str, *args: str) -> str:
    env = {
        "AIFACTORIES_DATA_DIR": str(tmp_path / data),
        "AIFACTORIES_CONFIG": str(tmp_path / "config" / "profile.json"),
        "NO_COLOR": "1",
        "COLUMNS": "300",
    }
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _profile(tmp_path: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((tmp_path / "config" / "profile.json").read_text())
    return data


def test_demo_load_writes_keeps_and_replaces_its_own_profile(tmp_path: Path) -> None:
    out = _aif(tmp_path, "data", "demo", "load")
    assert "wrote a CLI profile for alice (PI of aurora-vision)" in out
    first = _profile(tmp_path)
    assert first["server"] == SERVER and first["project"] == "aurora-vision"
    assert str(tmp_path / "data" / "demo-tokens.txt") in out

    out = _aif(tmp_path, "data", "demo", "load")
    assert "left as it is" in out
    assert _profile(tmp_path) == first  # not rewritten on every start

    out = _aif(tmp_path, "data", "demo", "load", "--server", "http://127.0.0.1:9000")
    assert "was stale: rewritten" in out
    assert _profile(tmp_path)["server"] == "http://127.0.0.1:9000"

    # the data directory wiped: the profile's token is unknown to the new database, but the
    # marker says the demo wrote it
    out = _aif(tmp_path, "fresh-data", "demo", "load", "--server", "http://127.0.0.1:9000")
    assert "was stale: rewritten" in out
    assert _profile(tmp_path)["token"] != first["token"]


def test_demo_load_never_touches_the_users_profile(tmp_path: Path) -> None:
    _aif(tmp_path, "data", "demo", "load")
    secret = _aif(tmp_path, "data", "tokens", "issue", "carol").strip().splitlines()[-1]
    mine = {"server": SERVER, "token": secret, "project": "kalevala-mri"}
    path = tmp_path / "config" / "profile.json"
    path.write_text(json.dumps(mine))  # as 'aif login' writes it
    out = _aif(tmp_path, "data", "demo", "load")
    assert "(made with aif login) is left as it is" in out
    assert _profile(tmp_path) == mine

    path.write_text(json.dumps({"server": SERVER, "token": "a-token-of-another-platform"}))
    out = _aif(tmp_path, "data", "demo", "load")
    assert "left as it is" in out
    assert _profile(tmp_path)["token"] == "a-token-of-another-platform"

    # a demo user's token saved with 'aif login' (the README shows how) is the user's choice
    tokens = (tmp_path / "data" / "demo-tokens.txt").read_text().split()
    carol = {"server": "http://127.0.0.1:9000", "token": tokens[tokens.index("carol") + 1]}
    path.write_text(json.dumps(carol))
    out = _aif(tmp_path, "data", "demo", "load")
    assert "(made with aif login) is left as it is" in out
    assert _profile(tmp_path) == carol
