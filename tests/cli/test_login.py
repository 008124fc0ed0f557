"""``aif login`` takes the token from standard input or a file, never needs it on the command
line, and warns when it is given there anyway."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from tests.cli.fake_api import AIF, FakeApi, fake_api, run_aif

SECRET = "aif_carols_secret"
ME = {"username": "carol", "is_operator": False, "projects": {"kalevala-mri": "pi"}}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as fake:
        fake.answer("GET", "/me", ME)
        yield fake


def _env(api: FakeApi, home: Path) -> dict[str, str]:
    env = api.env(home)
    del env["AIFACTORIES_TOKEN"], env["AIFACTORIES_SERVER"]  # login's own, not the profile's
    return env


def _saved(home: Path) -> dict[str, str]:
    path = home / "profile.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds a token
    saved: dict[str, str] = json.loads(path.read_text())
    return saved


@pytest.mark.slow
def test_a_piped_token_as_a_process(api: FakeApi, tmp_path: Path) -> None:
    done = run_aif(
        _env(api, tmp_path),
        *("login", "--server", api.url, "--project", "kalevala-mri"),
        stdin=f"{SECRET}\n",
    )
    assert done.returncode == 0, done.stderr
    assert "logged in as carol" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert api.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    saved = _saved(tmp_path)
    assert (saved["token"], saved["server"], saved["project"]) == (SECRET, api.url, "kalevala-mri")


def test_a_token_file(api: FakeApi, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {SECRET}\n")
    result = CliRunner().invoke(
        app,
        ["login", "--server", api.url, "--token-file", str(token_file)],
        env=_env(api, tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert _saved(tmp_path)["token"] == SECRET
    assert "warning" not in result.stderr


def test_no_token_on_standard_input_is_an_error(api: FakeApi, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["login", "--server", api.url], input="\n", env=_env(api, tmp_path)
    )
    assert result.exit_code == 2
    assert "no token in standard input" in result.stderr
    assert api.requests == [] and not (tmp_path / "profile.json").exists()


def test_an_unreadable_token_file_is_an_error(api: FakeApi, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["login", "--server", api.url, "--token-file", str(tmp_path / "missing")],
        env=_env(api, tmp_path),
    )
    assert result.exit_code == 2 and "cannot read the token file" in result.stderr


def test_a_token_on_the_command_line_works_with_a_warning(api: FakeApi, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["login", "--server", api.url, "--token", SECRET], env=_env(api, tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "warning: --token puts the token in your shell's history" in result.stderr
    assert _saved(tmp_path)["token"] == SECRET


def test_the_token_option_is_not_advertised(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["login", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--token-file" in result.output and "--token " not in result.output


def test_a_wrong_token_saves_nothing(api: FakeApi, tmp_path: Path) -> None:
    api.answer("GET", "/me", {"error": "unauthenticated", "message": "bad token"}, status=401)
    result = CliRunner().invoke(
        app, ["login", "--server", api.url], input="aif_wrong\n", env=_env(api, tmp_path)
    )
    assert result.exit_code == 4 and "bad token" in result.stderr
    assert not (tmp_path / "profile.json").exists()


@pytest.mark.slow
def test_on_a_terminal_the_token_is_asked_for_and_not_echoed(api: FakeApi, tmp_path: Path) -> None:
    env = _env(api, tmp_path)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: aif on a terminal, as a user types it
        try:
            os.execve(AIF, ["aif", "login", "--server", api.url], env)
        finally:
            os._exit(127)  # never back into the test runner
    shown = b""
    deadline = time.monotonic() + 20
    typed = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            chunk = os.read(terminal, 1024)
        except OSError:  # the child ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        # Click writes "API token:", then getpass turns echo off and writes " ": type then
        if b"API token: " in shown and not typed:
            os.write(terminal, SECRET.encode() + b"\n")
            typed = True
    done, status = os.waitpid(pid, os.WNOHANG)
    while done == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError(f"aif login did not end; it showed {shown!r}")
    assert os.waitstatus_to_exitcode(status) == 0, shown
    assert typed and b"logged in as" in shown
    assert SECRET.encode() not in shown  # a hidden prompt: what is typed is not echoed
    assert _saved(tmp_path)["token"] == SECRET
