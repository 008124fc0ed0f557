"""``aif submit``'s command line, read the way sbatch reads its own.

    aif submit [OPTIONS] SCRIPT
    aif submit [OPTIONS] -- COMMAND [ARGS...]

OPTIONS are sbatch's (the table in domain/directives.py), in any of sbatch's spellings
(``--nodes=2``, ``--nodes 2``, ``-N 2``, ``-N2``, ``--exclusive``), plus the CLI's own
``--wait``, ``--json`` and ``--project`` (another name of ``-A``/``--account``). Every sbatch
option is passed on as one word, ``--long-name=value`` or ``--flag``, for the server to read
with the parser of ``#SBATCH`` lines: there is one reading of an option, the server's, and the
command line wins over the script as with sbatch. An option the table does not have is
refused here, before any request. Standard library only: this runs at every submission.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from aifactories.domain.directives import BY_NAME, DIRECTIVES

HELP = frozenset({"--help", "-h"})
ACCOUNT = frozenset({"-A", "--account", "--project"})


class SubmitLineError(ValueError):
    """What is wrong with the command line, and how to write it."""


@dataclass(frozen=True, slots=True)
class SubmitLine:
    options: tuple[str, ...] = ()  # sbatch options, one word each, in the order written
    account: str | None = None  # -A/--account/--project, the last one given
    script: str | None = None
    command: tuple[str, ...] = ()
    wait: bool = False
    as_json: bool = False
    help: bool = False


def _unknown(name: str) -> SubmitLineError:
    close = difflib.get_close_matches(name, [d.long for d in DIRECTIVES], n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return SubmitLineError(
        f"unknown option {name}{hint}; 'aif submit --help' lists the sbatch options "
        "the platform knows"
    )


def parse_submit_line(words: Sequence[str]) -> SubmitLine:
    """Split ``aif submit``'s words into the CLI's options, sbatch's options and the job."""
    options: list[str] = []
    account: str | None = None
    wait = as_json = False
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            command = tuple(words[index:])
            if not command:
                raise SubmitLineError("no command after --; e.g. aif submit -G 1 -- python x.py")
            return SubmitLine(tuple(options), account, None, command, wait, as_json)
        if word in HELP:
            return SubmitLine(help=True)
        if word == "--wait":
            wait = True
            continue
        if word == "--json":
            as_json = True
            continue
        if word.startswith(("--wait=", "--json=")):
            raise SubmitLineError(f"{word.partition('=')[0]} takes no value (got {word!r})")
        if not word.startswith("-") or word == "-":
            rest = words[index:]
            if rest:
                raise SubmitLineError(
                    f"aif submit passes no arguments to a script (got {' '.join(rest)!r} after "
                    f"{word}); put them in the script, or run a command: aif submit [OPTIONS] "
                    f"-- {word} {' '.join(rest)}"
                )
            return SubmitLine(tuple(options), account, word, (), wait, as_json)
        if word.startswith("--"):
            name, has_value, value = word.partition("=")
        else:  # a short option: -N 2 or -N2, as getopt reads it
            name, value = word[:2], word[2:]
            has_value = "=" if value else ""
        if name in ACCOUNT or (name in BY_NAME and BY_NAME[name].takes_value):
            if not has_value:
                if index >= len(words):
                    raise SubmitLineError(f"{name} needs a value, e.g. {name}=VALUE")
                value = words[index]  # as getopt: the next word, whatever it looks like
                index += 1
            if name in ACCOUNT:
                account = value
            else:
                options.append(f"{BY_NAME[name].long}={value}")
        elif name in BY_NAME:
            if has_value:
                raise SubmitLineError(f"{name} takes no value (got {word!r})")
            options.append(BY_NAME[name].long)
        else:
            raise _unknown(name)
    return SubmitLine(tuple(options), account, None, (), wait, as_json)
