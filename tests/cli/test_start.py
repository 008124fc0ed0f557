"""The CLI starts without importing what a command does not need (cli/lazy.py), lists every
command from its static table, prints its version and completes in the shell. Figures are in
bench/bench_cli_start.py; here only what must hold whatever the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aifactories.cli.lazy import Lazy, LazyGroup, load
from aifactories.cli.main import COMMANDS, app
from tests.cli.fake_api import AIF

# What a command's start must not pay for: the server side and the heavy libraries.
HEAVY = (
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "alembic",
    "polars",
    "numpy",
    "plotly",
    "highspy",
    "httpx",
    "pydantic",  # Typer coerces values with it; --help has none to coerce
    "aifactories.services",
    "aifactories.db",
    "aifactories.api",
    "aifactories.broker",
    "aifactories.twin",
    "aifactories.executors",
    "aifactories.settings",
)
# Runs the CLI in a fresh interpreter, then reports which modules it had imported.
_PROBE = """
import json, sys
sys.argv = ["aif", *sys.argv[1:]]
from aifactories.cli.main import run
try:
    run()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"NO_COLOR": "1", "COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("submit", "--help"),
        ("jobs", "--help"),
        ("up", "--help"),
        ("simulate", "--help"),
        ("db", "--help"),
        ("calls", "--help"),
        ("accounts", "--help"),
    ],
)
def test_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    heavy = sorted(m for m in _imported(*args) if m.startswith(HEAVY))
    assert heavy == [], f"aif {' '.join(args)} imported {heavy}"


@pytest.mark.slow
def test_the_listing_imports_no_command() -> None:
    modules = _imported("--help")
    assert not {entry.module for entry in COMMANDS} & modules


@pytest.mark.slow
def test_version_as_a_process() -> None:
    done = subprocess.run([AIF, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"aif (aifactories) {version('aifactories')}"


@pytest.mark.slow
def test_help_as_a_process_lists_every_command_with_its_line() -> None:
    done = subprocess.run(
        [AIF, "--help"], capture_output=True, text=True, check=False, env={"COLUMNS": "200"}
    )
    assert done.returncode == 0, done.stderr
    for entry in COMMANDS:
        assert f" {entry.name} " in done.stdout and entry.help in done.stdout, entry.name


def test_the_tables_help_is_each_commands_own() -> None:
    """The listing reads the table; the command's --help its docstring: they must agree."""
    for entry in COMMANDS:
        try:
            command = load(entry)
        except Exception as exc:  # a command that another change has not landed yet
            if entry.name == "logs":
                pytest.skip(f"aif logs is not there yet: {exc}")
            raise
        first = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        assert first == entry.help, entry.name
        assert command.name == entry.name


def test_every_commands_help_works() -> None:
    for entry in COMMANDS:
        result = CliRunner().invoke(app, [entry.name, "--help"], env={"COLUMNS": "200"})
        if entry.name == "logs" and "not available" in result.output:
            continue  # cli/logs.py is written in another change
        assert result.exit_code == 0, (entry.name, result.output)
        assert entry.name in result.output


def test_a_missing_command_module_is_said_and_the_rest_works() -> None:
    class Group(LazyGroup):
        table = (
            Lazy("gone", "aifactories.cli.no_such_module", "app", "Not installed."),
            Lazy("jobs", "aifactories.cli.jobs", "app", "Your projects' jobs, newest first."),
        )

    cli = typer.Typer(cls=Group, add_completion=False)
    cli.callback()(lambda: None)
    listed = CliRunner().invoke(cli, ["--help"])
    assert listed.exit_code == 0 and "gone" in listed.output
    gone = CliRunner().invoke(cli, ["gone"])
    assert gone.exit_code == 2
    assert "'aif gone' is not available in this installation" in gone.output
    assert CliRunner().invoke(cli, ["jobs", "--help"]).exit_code == 0


def test_a_typo_gets_a_suggestion_without_loading_anything() -> None:
    result = CliRunner().invoke(app, ["sumbit"])
    assert result.exit_code == 2 and "submit" in result.output


def test_the_simulate_help_shows_the_twins_default_policies() -> None:
    from aifactories.cli.simulate import DEFAULT_POLICIES_SHOWN
    from aifactories.twin.scenario import DEFAULT_POLICIES

    assert ",".join(DEFAULT_POLICIES) == DEFAULT_POLICIES_SHOWN


@pytest.mark.slow
def test_shell_completion_script_and_completions(tmp_path: Path) -> None:
    # Typer's switch for tests: the shell is named, not detected from the process tree
    named = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1", "PATH": "/usr/bin:/bin"}
    script = subprocess.run(
        [AIF, "--show-completion", "bash"], capture_output=True, text=True, check=False, env=named
    )
    assert script.returncode == 0 and "_AIF_COMPLETE=complete_bash" in script.stdout

    def complete(words: str) -> list[str]:
        env = {
            "_AIF_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run([AIF], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("aif sub") == ["submit"]  # from the table: nothing imported
    assert complete("aif db ") == ["upgrade", "backup", "lease"]  # a lazy group's commands
    assert "--wait" in complete("aif submit --wa")
    assert complete("aif submit -N 2 --parti") == ["--partition"]  # sbatch's options too
