"""Read ``#SBATCH`` (and ``#AIF``) directives from a job script, the way sbatch does.

Directives are read from the top of the script until the first line that is neither blank nor
a comment. Options the platform does not act on (output files, mail, CPUs, memory, ...) are
accepted and ignored, as a user moving from Slurm expects; an option it cannot honour is an
error that names the line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from aifactories.domain.errors import MalformedScript
from aifactories.domain.units import parse_time_limit
from aifactories.services.core.input_types import check_ref

# Accepted and ignored: they change nothing about placement or accounting here.
_IGNORED = {
    "--output",
    "-o",
    "--error",
    "-e",
    "--mail-type",
    "--mail-user",
    "--cpus-per-task",
    "-c",
    "--mem",
    "--mem-per-cpu",
    "--mem-per-gpu",
    "--ntasks",
    "-n",
    "--ntasks-per-node",
    "--partition",
    "-p",
    "--qos",
    "-q",
    "--exclusive",
    "--constraint",
    "-C",
    "--chdir",
    "-D",
    "--export",
    "--open-mode",
    "--requeue",
    "--no-requeue",
    "--signal",
    "--array",
    "-a",
    "--cpus-per-gpu",
    "--hint",
    "--distribution",
    "--comment",
}
_ACTED_ON = {
    "--gpus",
    "--gres",
    "--gpus-per-node",
    "--nodes",
    "--time",
    "--job-name",
    "--account",
    "--countries",
    "--min-gpu-memory",
    "--runtime",
}
_SHORT = {"-G": "--gpus", "-t": "--time", "-J": "--job-name", "-N": "--nodes", "-A": "--account"}


@dataclass
class ScriptDirectives:
    gpus: int | None = None
    gpu_model: str | None = None
    gpus_per_node: int | None = None
    nodes: int | None = None
    time_limit_s: int | None = None
    name: str | None = None
    account: str | None = None
    countries: list[str] = field(default_factory=list)
    min_gpu_memory_gb: int | None = None
    runtime_s: int | None = None
    ignored: list[str] = field(default_factory=list)


def _int(value: str, line_no: int, option: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise MalformedScript(
            "script", f"line {line_no}: {option} wants a whole number, got {value!r}"
        ) from None
    if number < 1:
        raise MalformedScript("script", f"line {line_no}: {option} must be at least 1")
    return number


def _gres(value: str, line_no: int, out: ScriptDirectives) -> None:
    # gpu:N or gpu:MODEL:N (per node, as in Slurm)
    parts = value.split(":")
    if parts[0] != "gpu" or len(parts) not in (2, 3):
        raise MalformedScript(
            "script", f"line {line_no}: --gres={value!r}; write gpu:N or gpu:MODEL:N"
        )
    if len(parts) == 3:
        out.gpu_model = parts[1]
    out.gpus_per_node = _int(parts[-1], line_no, "--gres")


def _apply(option: str, value: str | None, line_no: int, out: ScriptDirectives) -> None:
    option = _SHORT.get(option, option)
    if option in _IGNORED:
        out.ignored.append(option)
        return
    if option not in _ACTED_ON:
        raise MalformedScript(
            "script",
            f"line {line_no}: unsupported directive {option}; supported: --gpus, --gres, "
            "--gpus-per-node, --nodes, --time, --job-name, --account (and #AIF --countries, "
            "--min-gpu-memory, --runtime)",
        )
    if value is None:
        raise MalformedScript("script", f"line {line_no}: {option} needs a value")
    match option:
        case "--gpus":
            model, _, count = value.rpartition(":")
            if model:
                out.gpu_model = model
            out.gpus = _int(count, line_no, option)
        case "--gres":
            _gres(value, line_no, out)
        case "--gpus-per-node":
            model, _, count = value.rpartition(":")
            if model:
                out.gpu_model = model
            out.gpus_per_node = _int(count, line_no, option)
        case "--nodes":
            if "-" in value:
                raise MalformedScript(
                    "script", f"line {line_no}: --nodes={value}: give one node count, not a range"
                )
            out.nodes = _int(value, line_no, option)
        case "--time":
            out.time_limit_s = parse_time_limit(value, field=f"script line {line_no} --time")
        case "--job-name":
            out.name = value
        case "--account":
            try:
                out.account = check_ref(value)  # an id SQLite can hold, no control character
            except ValueError as exc:
                raise MalformedScript("script", f"line {line_no}: --account: {exc}") from None
        case "--countries":
            out.countries = [c.strip().upper() for c in value.split(",") if c.strip()]
        case "--min-gpu-memory":
            out.min_gpu_memory_gb = _int(
                value.removesuffix("G").removesuffix("GB"), line_no, option
            )
        case "--runtime":
            out.runtime_s = parse_time_limit(value, field=f"script line {line_no} --runtime")
        case _:  # pragma: no cover - _ACTED_ON and the cases above list the same options
            raise AssertionError(option)


def parse_script(text: str) -> ScriptDirectives:
    if not text.strip():
        raise MalformedScript("script", "the script is empty")
    out = ScriptDirectives()
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
        index = 0
        while index < len(words):
            word = words[index]
            if not word.startswith("-"):
                raise MalformedScript("script", f"line {line_no}: expected an option, got {word!r}")
            if "=" in word:
                option, value = word.split("=", 1)
            elif index + 1 < len(words) and not words[index + 1].startswith("-"):
                option, value = word, words[index + 1]
                index += 1
            else:
                option, value = word, None
            _apply(option, value, line_no, out)
            index += 1
    return out
