"""What a batch job asks for beyond its resources: output files, arrays, dependencies, mail,
signals and requeue -- the sbatch options that do not change where a job can run.

Pure values and the small parsers of Slurm's own notations (``--array=0-99%10``,
``--dependency=afterok:12:13``, ``--signal=B:USR1@90``, ``--output=%x-%j.out``); the script
parser (services/jobs/job_script.py) turns directives into these.
"""

from __future__ import annotations

import re
import signal as _signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aifactories.domain.errors import InvalidInput

MAX_ARRAY_TASKS = 10_000  # Slurm's default MaxArraySize is 1001; sites raise it
MAX_ARRAY_INDEX = 4_000_000

MailType = Literal["BEGIN", "END", "FAIL", "REQUEUE"]
MAIL_TYPES: tuple[MailType, ...] = ("BEGIN", "END", "FAIL", "REQUEUE")

DependencyKind = Literal["afterok", "afterany", "afternotok", "singleton"]


@dataclass(frozen=True, slots=True)
class JobSignal:
    """``--signal=[B:]NAME[@SECONDS]``: send NAME that long before the time limit (default 60 s);
    ``batch_only`` (B:) sends it to the batch shell alone, not to its tasks."""

    name: str  # "USR1", without "SIG"
    seconds_before: int = 60
    batch_only: bool = False

    @property
    def number(self) -> int:
        return int(_signal.Signals["SIG" + self.name])

    def as_option(self) -> str:
        return f"{'B:' if self.batch_only else ''}{self.name}@{self.seconds_before}"


@dataclass(frozen=True, slots=True)
class ArrayTask:
    """One task of a job array, as its ``SLURM_ARRAY_*`` variables say it."""

    array_job_id: int
    task_id: int
    task_count: int
    task_min: int
    task_max: int
    task_step: int = 1

    def environment(self) -> dict[str, str]:
        return {
            "SLURM_ARRAY_JOB_ID": str(self.array_job_id),
            "SLURM_ARRAY_TASK_ID": str(self.task_id),
            "SLURM_ARRAY_TASK_COUNT": str(self.task_count),
            "SLURM_ARRAY_TASK_MIN": str(self.task_min),
            "SLURM_ARRAY_TASK_MAX": str(self.task_max),
            "SLURM_ARRAY_TASK_STEP": str(self.task_step),
        }


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """The job's batch options; ``None``/empty means Slurm's default."""

    output: str | None = None  # pattern, relative to the working folder
    error: str | None = None  # pattern; None: with the output
    signal: JobSignal | None = None
    requeue: bool | None = None
    mail_types: frozenset[MailType] = frozenset()
    mail_user: str | None = None
    array: ArrayTask | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON for the database (see :func:`batch_options_from_dict`)."""
        out: dict[str, object] = {}
        if self.output is not None:
            out["output"] = self.output
        if self.error is not None:
            out["error"] = self.error
        if self.signal is not None:
            out["signal"] = self.signal.as_option()
        if self.requeue is not None:
            out["requeue"] = self.requeue
        if self.mail_types:
            out["mail_types"] = sorted(self.mail_types)
        if self.mail_user is not None:
            out["mail_user"] = self.mail_user
        if self.array is not None:
            a = self.array
            out["array"] = [
                a.array_job_id,
                a.task_id,
                a.task_count,
                a.task_min,
                a.task_max,
                a.task_step,
            ]
        return out


def batch_options_from_dict(data: dict[str, object] | None) -> BatchOptions:
    if not data:
        return BatchOptions()
    array = data.get("array")
    signal_text = data.get("signal")
    requeue = data.get("requeue")
    mail_types = data.get("mail_types")
    return BatchOptions(
        output=str(data["output"]) if data.get("output") is not None else None,
        error=str(data["error"]) if data.get("error") is not None else None,
        signal=parse_signal(str(signal_text)) if signal_text else None,
        requeue=bool(requeue) if requeue is not None else None,
        mail_types=frozenset(
            m for m in (mail_types if isinstance(mail_types, list) else []) if m in MAIL_TYPES
        ),
        mail_user=str(data["mail_user"]) if data.get("mail_user") is not None else None,
        array=ArrayTask(*(int(x) for x in array)) if isinstance(array, list) else None,
    )


# -- --array ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """``--array``: the task ids in order, the step of a single stepped range, the throttle."""

    task_ids: tuple[int, ...]
    step: int = 1
    throttle: int | None = None  # %N: at most N tasks at once


_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


def parse_array(text: str, field_name: str = "array") -> ArraySpec:
    """Slurm's ``--array`` notation: ``0-99``, ``1,3,5-7``, ``0-15:4``, ``0-99%10``."""
    value = text.strip()
    body, _, throttle_text = value.partition("%")
    throttle = None
    if throttle_text:
        if not throttle_text.isdigit() or int(throttle_text) < 1:
            raise InvalidInput(
                field_name,
                f"{text!r}: %{throttle_text} is not a task count",
                limit="%N with N at least 1, e.g. 0-99%10",
            )
        throttle = int(throttle_text)
    ids: list[int] = []
    steps: set[int] = set()
    for part in body.split(","):
        match = _RANGE.fullmatch(part.strip())
        if match is None:
            raise InvalidInput(
                field_name,
                f"{text!r}: cannot read {part!r}",
                limit="indexes and ranges such as 0-99, 1,3,5-7, 0-15:4; %N to throttle",
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        if last < first or step < 1:
            raise InvalidInput(
                field_name,
                f"{text!r}: {part!r} is an empty range",
                limit="FIRST-LAST with FIRST <= LAST and a step of at least 1",
            )
        if last > MAX_ARRAY_INDEX:
            raise InvalidInput(
                field_name,
                f"{text!r}: index {last} is too large",
                limit=f"indexes up to {MAX_ARRAY_INDEX}",
            )
        count = (last - first) // step + 1
        if len(ids) + count > MAX_ARRAY_TASKS:
            raise InvalidInput(
                field_name,
                f"{text!r} makes more than {MAX_ARRAY_TASKS} tasks",
                limit=f"at most {MAX_ARRAY_TASKS} tasks per array",
            )
        ids.extend(range(first, last + 1, step))
        steps.add(step)
    unique = tuple(sorted(set(ids)))
    return ArraySpec(unique, step=steps.pop() if len(steps) == 1 else 1, throttle=throttle)


# -- --dependency ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dependency:
    """One condition of ``--dependency``; ``job_refs`` as written: "12" or "12_3"."""

    kind: DependencyKind
    job_refs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dependencies:
    """All conditions, and whether all must hold (``,``) or any (``?``)."""

    conditions: tuple[Dependency, ...]
    any_of: bool = False


_JOB_REF = re.compile(r"^\d{1,10}(?:_\d{1,7})?$")
_KNOWN_KINDS = ("afterok", "afterany", "afternotok", "singleton")


def parse_dependency(text: str, field_name: str = "dependency") -> Dependencies:
    value = text.strip()
    if "," in value and "?" in value:
        raise InvalidInput(
            field_name, f"{text!r} mixes ',' and '?'", limit="all of: a,b; any of: a?b"
        )
    any_of = "?" in value
    conditions = []
    for part in value.split("?" if any_of else ","):
        kind, _, refs = part.strip().partition(":")
        kind = kind.strip().lower()
        if kind == "singleton":
            if refs:
                raise InvalidInput(field_name, f"{part!r}: singleton takes no job ids")
            conditions.append(Dependency("singleton"))
            continue
        if kind not in _KNOWN_KINDS:
            extra = (
                " (after and aftercorr are not supported)"
                if kind in ("after", "aftercorr", "afterburstbuffer")
                else ""
            )
            raise InvalidInput(
                field_name,
                f"{part!r}: unknown dependency type {kind!r}{extra}",
                limit="afterok:JOB[:JOB...], afterany:JOB, afternotok:JOB or singleton",
            )
        job_refs = tuple(r.strip() for r in refs.split(":") if r.strip())
        if not job_refs:
            raise InvalidInput(field_name, f"{part!r} names no job", limit=f"{kind}:JOB[:JOB...]")
        for ref in job_refs:
            if not _JOB_REF.fullmatch(ref):
                raise InvalidInput(
                    field_name,
                    f"{part!r}: {ref!r} is not a job id",
                    limit="a job id such as 123 or an array task such as 123_4",
                )
        conditions.append(Dependency(kind, job_refs))  # type: ignore[arg-type]
    return Dependencies(tuple(conditions), any_of=any_of)


# -- --signal ------------------------------------------------------------------------------


def parse_signal(text: str, field_name: str = "signal") -> JobSignal:
    value = text.strip()
    batch_only = False
    if value.upper().startswith(("B:", "R:")):
        batch_only = value.upper().startswith("B:")
        value = value[2:]
    name, _, seconds_text = value.partition("@")
    name = name.strip().upper()
    if name.isdigit():
        try:
            name = _signal.Signals(int(name)).name
        except ValueError:
            raise InvalidInput(field_name, f"{text!r}: no signal number {name}") from None
    name = name.removeprefix("SIG")
    if "SIG" + name not in _signal.Signals.__members__:
        raise InvalidInput(
            field_name,
            f"{text!r}: unknown signal {name!r}",
            limit="a name such as USR1, TERM, INT, or its number",
        )
    seconds = 60
    if seconds_text:
        if not seconds_text.isdigit() or not 0 <= int(seconds_text) <= 65535:
            raise InvalidInput(
                field_name,
                f"{text!r}: {seconds_text!r} is not a number of seconds",
                limit="[B:]SIGNAL[@SECONDS], seconds 0 to 65535",
            )
        seconds = int(seconds_text)
    return JobSignal(name, seconds, batch_only)


# -- --output / --error patterns ------------------------------------------------------------

_PATTERN = re.compile(r"%(%|[0-9]*[AajxuNnst])")


def expand_output_pattern(
    pattern: str,
    *,
    job_id: int | str,
    name: str,
    user: str,
    node: str = "",
    array: ArrayTask | None = None,
) -> str:
    """Slurm's filename pattern: ``%j`` job id, ``%x`` name, ``%u`` user, ``%A`` array job id,
    ``%a`` task id, ``%N`` first node, ``%%`` a percent sign; ``%5j`` pads with zeros. An array
    task's ``%j`` is its own job id, as in Slurm."""

    def one(match: re.Match[str]) -> str:
        spec = match.group(1)
        if spec == "%":
            return "%"
        width_text, letter = spec[:-1], spec[-1]
        value: str
        if letter == "j":
            value = str(job_id)
        elif letter == "x":
            value = name
        elif letter == "u":
            value = user
        elif letter == "N" or letter == "n":
            value = node if letter == "N" else "0"
        elif letter == "A":
            value = str(array.array_job_id) if array else str(job_id)
        elif letter == "a":
            value = str(array.task_id) if array else "4294967294"  # Slurm's NO_VAL for %a
        else:  # %s step, %t task: the batch step's
            value = "batch" if letter == "s" else "0"
        if width_text and value.isdigit():
            value = value.zfill(min(int(width_text), 10))
        return value

    return _PATTERN.sub(one, pattern)


def dependency_text(dependency: Mapping[str, Any] | None) -> str | None:
    """A job's stored dependency (``{"conditions": [[kind, [ids]], ...], "any": bool}``) as
    sbatch writes it, the ids resolved: ``afterok:12:13,singleton``."""
    if not dependency:
        return None
    parts = [
        kind if kind == "singleton" else f"{kind}:{':'.join(str(i) for i in ids)}"
        for kind, ids in dependency.get("conditions", [])
    ]
    return ("?" if dependency.get("any") else ",").join(parts)
