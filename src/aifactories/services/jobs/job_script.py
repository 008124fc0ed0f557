"""Read sbatch options the way sbatch does: ``#SBATCH`` (and ``#AIF``) lines at the top of a
job script, then the same options from the command line, which win.

Directives are read from the top of the script until the first line that is neither blank nor
a comment. Every option is looked up in the one table (domain/directives.py): an honoured
option is read into :class:`Directives`, a hint is accepted with a warning, anything else is
refused with a message that names it and the line it is on.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from aifactories.domain.batch import (
    MAIL_TYPES,
    ArraySpec,
    Dependencies,
    JobSignal,
    MailType,
    parse_array,
    parse_dependency,
    parse_signal,
)
from aifactories.domain.directives import BY_NAME, DIRECTIVES
from aifactories.domain.errors import InvalidInput, MalformedScript
from aifactories.domain.units import parse_time_limit
from aifactories.services.core.input_types import check_ref

MAX_PATTERN = 1024


@dataclass
class Directives:
    """What the options asked for; None where they said nothing (defaults apply later)."""

    gpus: int | None = None
    gpu_model: str | None = None
    gpus_per_node: int | None = None
    nodes: int | None = None
    time_limit_s: int | None = None
    name: str | None = None
    account: str | None = None
    partitions: list[str] = field(default_factory=list)
    ntasks: int | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_mb: int | None = None
    mem_per_gpu_mb: int | None = None
    exclusive: bool = False
    output: str | None = None
    error: str | None = None
    chdir: str | None = None
    array: ArraySpec | None = None
    dependency: Dependencies | None = None
    mail_types: set[MailType] = field(default_factory=set)
    mail_user: str | None = None
    requeue: bool | None = None
    signal: JobSignal | None = None
    countries: list[str] = field(default_factory=list)
    min_gpu_memory_gb: int | None = None
    runtime_s: int | None = None
    warnings: list[str] = field(default_factory=list)


def _known() -> str:
    return ", ".join(d.long for d in DIRECTIVES if d.kind == "honoured")


def _field(where: str) -> str:
    """The error's field: "script line 3" for a directive, "options" for the command line."""
    return f"script {where}" if where.startswith("line") else "options"


def _fail(where: str, message: str) -> MalformedScript:
    return MalformedScript(
        "script" if where.startswith("line") else "options", f"{where}: {message}"
    )


def _count(value: str, where: str, option: str, least: int = 1) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _fail(where, f"{option} wants a whole number, got {value!r}") from None
    if number < least or number > 1_000_000:
        raise _fail(where, f"{option}={value}: give a number from {least} to 1000000")
    return number


_MEMORY = re.compile(r"^(\d+)\s*([KMGT]?)B?$", re.IGNORECASE)
_MB_PER_UNIT = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def _megabytes(value: str, where: str, option: str) -> int:
    """Slurm's memory sizes: a number in MB, or with K, M, G or T."""
    match = _MEMORY.fullmatch(value.strip())
    if match is None:
        raise _fail(where, f"{option}={value!r}: write a size such as 4000, 64G or 1T")
    megabytes = int(match.group(1)) * _MB_PER_UNIT[match.group(2).upper()]
    if megabytes > 2**40:
        raise _fail(where, f"{option}={value}: more memory than any node has")
    return int(megabytes)


def _gpu_count(value: str, where: str, option: str, out: Directives) -> int:
    """``N`` or ``MODEL:N`` (as --gpus and --gpus-per-node take them)."""
    model, _, count = value.rpartition(":")
    if model:
        out.gpu_model = model.removeprefix("gpu:")
    return _count(count, where, option)


def _gres(value: str, where: str, out: Directives) -> None:
    """``gpu:N`` or ``gpu:MODEL:N`` per node; other generic resources are a site matter."""
    for item in value.split(","):
        parts = item.strip().split(":")
        if parts[0] != "gpu":
            out.warnings.append(f"{where}: --gres={item} is not brokered; only gpu counts are")
            continue
        if len(parts) not in (2, 3):
            raise _fail(where, f"--gres={item!r}; write gpu:N or gpu:MODEL:N")
        if len(parts) == 3:
            out.gpu_model = parts[1]
        out.gpus_per_node = _count(parts[-1], where, "--gres")


def _pattern(value: str, where: str, option: str) -> str:
    if not value or len(value) > MAX_PATTERN or "\x00" in value:
        raise _fail(where, f"{option}: give a file name pattern of 1 to {MAX_PATTERN} characters")
    return value


def _mail_types(value: str, where: str, out: Directives) -> None:
    for word in value.upper().split(","):
        word = word.strip()
        if word == "ALL":
            out.mail_types.update(MAIL_TYPES)
        elif word == "NONE":
            out.mail_types.clear()
        elif word in MAIL_TYPES:
            out.mail_types.add(word)
        elif word:
            out.warnings.append(
                f"{where}: --mail-type={word} is not sent; the platform mails BEGIN, END, FAIL "
                "and REQUEUE"
            )


def _invalid(exc: InvalidInput) -> MalformedScript:
    """A complaint of the shared parsers (time, array, dependency, signal), whose field
    already names the line and option, as a script error with the same field."""
    if isinstance(exc, MalformedScript):
        return exc
    message = str(exc).removeprefix(f"{exc.field}: ")
    return MalformedScript(exc.field, message, limit=exc.limit)


def _apply(option: str, value: str | None, where: str, out: Directives) -> None:
    directive = BY_NAME.get(option)
    if directive is None:
        raise _fail(
            where,
            f"unsupported option {option}; the platform honours {_known()} and accepts "
            "Slurm's hints with a warning (aif submit --help lists them)",
        )
    name = directive.long
    if directive.kind == "hint":
        shown = f"{name}={value}" if value is not None else name
        out.warnings.append(f"{where}: {shown} accepted but not acted on: {directive.meaning}")
        return
    if not directive.takes_value:
        if name == "--exclusive":
            out.exclusive = True  # --exclusive=user|mcs: whole nodes as well
        elif name == "--requeue":
            out.requeue = True
        elif name == "--no-requeue":
            out.requeue = False
        return
    if value is None or value == "":
        raise _fail(where, f"{name} needs a value")
    try:
        _apply_value(name, value, where, out)
    except InvalidInput as exc:
        raise _invalid(exc) from None


def _apply_value(name: str, value: str, where: str, out: Directives) -> None:
    match name:
        case "--job-name":
            out.name = value
        case "--account":
            try:
                out.account = check_ref(value)
            except ValueError as exc:
                raise _fail(where, f"--account: {exc}") from None
        case "--partition":
            out.partitions = [p.strip() for p in value.split(",") if p.strip()]
        case "--time":
            out.time_limit_s = parse_time_limit(value, field=f"{_field(where)} --time")
        case "--nodes":
            if "-" in value:
                raise _fail(where, f"--nodes={value}: give one node count, not a range")
            out.nodes = _count(value, where, name)
        case "--gpus":
            out.gpus = _gpu_count(value, where, name, out)
        case "--gpus-per-node":
            out.gpus_per_node = _gpu_count(value, where, name, out)
        case "--gres":
            _gres(value, where, out)
        case "--ntasks":
            out.ntasks = _count(value, where, name)
        case "--ntasks-per-node":
            out.ntasks_per_node = _count(value, where, name)
        case "--cpus-per-task":
            out.cpus_per_task = _count(value, where, name)
        case "--mem":
            out.mem_mb = _megabytes(value, where, name)
        case "--mem-per-gpu":
            out.mem_per_gpu_mb = _megabytes(value, where, name)
        case "--output":
            out.output = _pattern(value, where, name)
        case "--error":
            out.error = _pattern(value, where, name)
        case "--chdir":
            out.chdir = _pattern(value, where, name)
        case "--array":
            out.array = parse_array(value, field_name=f"{_field(where)} --array")
        case "--dependency":
            out.dependency = parse_dependency(value, field_name=f"{_field(where)} --dependency")
        case "--mail-type":
            _mail_types(value, where, out)
        case "--mail-user":
            out.mail_user = _pattern(value, where, name)
        case "--signal":
            out.signal = parse_signal(value, field_name=f"{_field(where)} --signal")
        case "--gpu-model":
            out.gpu_model = _pattern(value, where, name)
        case "--countries":
            out.countries = [c.strip().upper() for c in value.split(",") if c.strip()]
        case "--min-gpu-memory":
            out.min_gpu_memory_gb = _count(
                value.upper().removesuffix("B").removesuffix("G"), where, name, least=0
            )
        case "--runtime":
            out.runtime_s = parse_time_limit(value, field=f"{_field(where)} --runtime")
        case _:  # pragma: no cover - the table and the cases above list the same options
            raise AssertionError(name)


def _read_words(words: Sequence[str], where: str, out: Directives) -> None:
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("-") or word == "-":
            raise _fail(where, f"expected an option, got {word!r}")
        value: str | None = None
        if word.startswith("--") and "=" in word:
            option, value = word.split("=", 1)
        elif not word.startswith("--") and len(word) > 2:
            option, value = word[:2], word[2:].removeprefix("=")  # -N2, -t10:00
        else:
            option = word
            directive = BY_NAME.get(option)
            takes_value = directive is None or directive.takes_value
            if takes_value and index + 1 < len(words) and not words[index + 1].startswith("-"):
                value = words[index + 1]
                index += 1
        _apply(option, value, where, out)
        index += 1


def parse_script(text: str, out: Directives | None = None) -> Directives:
    """The directives of a job script (``#SBATCH`` and ``#AIF`` lines at its top)."""
    if not text.strip():
        raise MalformedScript("script", "the script is empty")
    out = out if out is not None else Directives()
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line_no == 1 and line.startswith("#!"):
            continue
        if not line:
            continue
        if not line.startswith("#"):
            break  # sbatch stops reading directives at the first command
        prefix = next((p for p in ("#SBATCH", "#AIF") if line.startswith(p + " ")), None)
        if prefix is None:
            continue
        try:
            words = shlex.split(line[len(prefix) :], comments=True)
        except ValueError as exc:
            raise MalformedScript(
                "script", f"line {line_no}: cannot read {line!r}: {exc}"
            ) from None
        _read_words(words, f"line {line_no}", out)
    return out


def parse_directives(script: str | None, options: Sequence[str] = ()) -> Directives:
    """The script's directives, then the command line's options over them (as sbatch)."""
    out = parse_script(script) if script is not None else Directives()
    if options:
        _read_words(list(options), "command line", out)
    if out.mem_mb is not None and out.mem_per_gpu_mb is not None:
        # as sbatch: "--mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive"
        raise MalformedScript(
            "mem", "--mem and --mem-per-gpu cannot both be given; keep one (as with sbatch)"
        )
    return out
