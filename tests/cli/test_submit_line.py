"""``aif submit``'s command line read with sbatch's rules (unit tests of cli/submit_line.py)."""

from __future__ import annotations

import pytest

from aifactories.cli.submit_line import SubmitLine, SubmitLineError, parse_submit_line
from aifactories.domain.directives import DIRECTIVES


def parse(line: str) -> SubmitLine:
    return parse_submit_line(line.split())


def test_every_spelling_of_an_option_becomes_one_long_word() -> None:
    got = parse("--partition=standard-g --nodes 2 -N2 -n 8 -c8 --exclusive -J train job.sh")
    assert got.options == (
        "--partition=standard-g",
        "--nodes=2",
        "--nodes=2",
        "--ntasks=8",
        "--cpus-per-task=8",
        "--exclusive",
        "--job-name=train",
    )
    assert got.script == "job.sh" and got.command == ()


def test_a_command_comes_after_the_double_dash_with_its_own_options() -> None:
    got = parse("-G 1 --time 10:00 -- python train.py --nodes 3 -N 4")
    assert got.options == ("--gpus=1", "--time=10:00")
    assert got.command == ("python", "train.py", "--nodes", "3", "-N", "4")
    assert got.script is None


def test_an_options_value_is_the_next_word_whatever_it_looks_like() -> None:
    # as getopt: --job-name takes a value, so "-x" is the name, not an option
    assert parse("--job-name -x -- true").options == ("--job-name=-x",)


def test_the_platforms_own_options_too() -> None:
    got = parse("--gpu-model any --countries=DE,FI --min-gpu-memory 80 -- true")
    assert got.options == ("--gpu-model=any", "--countries=DE,FI", "--min-gpu-memory=80")


def test_the_clis_own_options_are_not_passed_on() -> None:
    got = parse("--wait --json -A p1 --mem=0 job.sh")
    assert (got.wait, got.as_json, got.account) == (True, True, "p1")
    assert got.options == ("--mem=0",)


@pytest.mark.parametrize(
    "spelling", ["-A p9", "-Ap9", "--account p9", "--account=p9", "--project=p9"]
)
def test_every_spelling_of_the_account(spelling: str) -> None:
    assert parse(f"{spelling} job.sh").account == "p9"


def test_the_last_account_wins_as_in_sbatch() -> None:
    assert parse("-A first --project second job.sh").account == "second"


def test_help_before_the_job_asks_for_help_after_it_is_the_jobs() -> None:
    assert parse("--nodes=2 --help").help
    assert parse("-h").help
    assert not parse("-- prog --help").help
    assert parse("-- prog --help").command == ("prog", "--help")


def test_no_job_at_all_is_left_to_the_command() -> None:
    got = parse("--runtime=5m")
    assert got.script is None and got.command == () and got.options == ("--runtime=5m",)


def test_every_directive_of_the_table_is_understood() -> None:
    for d in DIRECTIVES:
        if d.long == "--account":
            continue  # kept apart: the account is the CLI's own option too (test above)
        word = f"{d.long}=1" if d.takes_value else d.long
        assert parse(f"{word} job.sh").options == (word,)
        if d.short:
            assert parse(f"{d.short} 1 job.sh").options == (f"{d.long}=1",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--nodse=2 job.sh", "unknown option --nodse (did you mean --nodes?)"),
        ("--gpu-modle any -- true", "(did you mean --gpu-model?)"),
        ("--frobnicate job.sh", "unknown option --frobnicate; 'aif submit --help' lists"),
        ("-Z 3 job.sh", "unknown option -Z"),
        ("--nodes", "--nodes needs a value"),
        ("--exclusive=yes job.sh", "--exclusive takes no value"),
        ("--wait=1 job.sh", "--wait takes no value"),
        ("-N 2 --", "no command after --"),
        ("job.sh one two", "passes no arguments to a script"),
    ],
)
def test_a_line_it_cannot_honour_is_refused_with_the_reason(line: str, message: str) -> None:
    with pytest.raises(SubmitLineError, match=None) as caught:
        parse(line)
    assert message in str(caught.value)
