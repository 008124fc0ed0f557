"""Shared reading machinery: open a file (plain or gzip), walk its rows with line numbers, parse
typed fields with errors that name file, line and field, and collect the accepted jobs into a
sorted :class:`~aifactories.twin.traces.model.Trace`.

Everything streams: rows are parsed one at a time and only the accepted jobs are kept.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces.errors import TraceError
from aifactories.twin.traces.model import Trace, TraceJob

_GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def open_text(path: Path) -> Iterator[TextIO]:
    """Open ``path`` as UTF-8 text, decompressing it if it is gzip (by content, not by name)."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
    except FileNotFoundError:
        raise InvalidInput("path", f"no such trace file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput("path", f"{path} is a directory, not a trace file") from None
    if magic == _GZIP_MAGIC:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as unzipped:
            yield unzipped
    else:
        with path.open("r", encoding="utf-8", newline="") as plain:
            yield plain


def parse_time(text: str) -> float | None:
    """Seconds since the Unix epoch from a number or an ISO 8601 date-time; None if neither.

    Date-times without a zone are read as UTC: traces rarely say their zone, only differences
    matter to the simulator, and UTC has no daylight-saving jumps that would bend them.
    """
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso_utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


class Row:
    """One data row: fields by column name, and parsers that fail with file, line and field."""

    __slots__ = ("_index", "_values", "file", "line")

    def __init__(self, file: Path, line: int, values: Sequence[str], index: dict[str, int]):
        self.file = file
        self.line = line
        self._values = values
        self._index = index

    def error(self, field: str, problem: str) -> TraceError:
        return TraceError(self.file, self.line, field, problem)

    def has(self, column: str) -> bool:
        return column in self._index

    def text(self, column: str) -> str:
        return self._values[self._index[column]].strip()

    def optional(self, column: str) -> str | None:
        """The stripped value, or None if the column is absent or the value empty."""
        if column not in self._index:
            return None
        return self.text(column) or None

    def integer(self, column: str, minimum: int | None = 0) -> int:
        return parse_int(self, column, self.text(column), minimum)

    def number(self, column: str, minimum: float | None = 0.0) -> float:
        return parse_float(self, column, self.text(column), minimum)

    def time(self, column: str) -> float:
        text = self.text(column)
        value = parse_time(text)
        if value is None:
            raise self.error(column, f"{text!r} is neither a date-time nor epoch seconds")
        if value < 0:
            raise self.error(column, f"{text!r} is before 1970")
        return value


def parse_int(row: Row, field: str, text: str, minimum: int | None = 0) -> int:
    """A whole number; ``8.0`` is accepted (some exports write floats), ``2.5`` is not."""
    try:
        value = int(text)
    except ValueError:
        try:
            real = float(text)
        except ValueError:
            real = math.nan
        if not (math.isfinite(real) and real.is_integer()):
            raise row.error(field, f"{text!r} is not a whole number") from None
        value = int(real)
    if minimum is not None and value < minimum:
        raise row.error(field, f"{text!r} is below the minimum {minimum}")
    return value


def parse_float(row: Row, field: str, text: str, minimum: float | None = 0.0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise row.error(field, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise row.error(field, f"{text!r} is not a finite number")
    if minimum is not None and value < minimum:
        raise row.error(field, f"{text!r} is below the minimum {minimum:g}")
    return value


def csv_rows(
    path: Path, stream: TextIO, required: Sequence[str], delimiter: str = ","
) -> Iterator[Row]:
    """The data rows of a CSV with a header line, skipping blank lines.

    A missing required column fails on line 1; a row with the wrong number of fields fails on its
    own line (field ``row``), since guessing which field went missing would misread the rest.
    """
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise TraceError(path, 1, "row", "the file is empty (expected a header line)")
        names = [name.strip().lstrip("\ufeff") for name in header]
        index = {name: i for i, name in enumerate(names)}
        for column in required:
            if column not in index:
                have = ", ".join(names)
                raise TraceError(path, 1, column, f"missing column (the header has: {have})")
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(names):
                raise TraceError(
                    path,
                    reader.line_num,
                    "row",
                    f"expected {len(names)} fields, got {len(values)}",
                )
            yield Row(path, reader.line_num, values, index)
    except csv.Error as exc:
        raise TraceError(path, reader.line_num, "row", f"unreadable CSV: {exc}") from None
    except UnicodeDecodeError:
        raise TraceError(path, reader.line_num + 1, "row", "not UTF-8 text") from None
    except (OSError, EOFError) as exc:  # a truncated or corrupt gzip file
        raise TraceError(path, reader.line_num + 1, "row", f"unreadable: {exc}") from None


def text_lines(path: Path, stream: TextIO) -> Iterator[tuple[int, str]]:
    """``(line number, stripped text)`` of every line, with the errors of :func:`csv_rows`."""
    number = 0
    try:
        for number, line in enumerate(stream, start=1):
            yield number, line.strip()
    except UnicodeDecodeError:
        raise TraceError(path, number + 1, "row", "not UTF-8 text") from None
    except (OSError, EOFError) as exc:
        raise TraceError(path, number + 1, "row", f"unreadable: {exc}") from None


class Collector:
    """Accepted jobs (up to ``limit``), and counts of skipped and adjusted rows by reason."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise InvalidInput("limit", f"must be >= 0, got {limit}")
        self.limit = limit
        self.jobs: list[TraceJob] = []
        self._ids: set[str] = set()
        self._skips: Counter[str] = Counter()
        self._notes: Counter[str] = Counter()

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.jobs) >= self.limit

    def skip(self, reason: str) -> None:
        self._skips[reason] += 1

    def note(self, reason: str) -> None:
        self._notes[reason] += 1

    def wait(self, wait_s: float | None) -> float | None:
        """A recorded wait, or None if unknown or negative (start before submit: a clock glitch
        of the trace, counted in notes rather than failing a long file for a field that only
        serves validation)."""
        if wait_s is not None and wait_s < 0:
            self.note("start before submit (wait dropped)")
            return None
        return wait_s

    def add(self, row: Row, job: TraceJob) -> None:
        # Ids key the simulator's bookkeeping, so a repeated id is a broken trace, not a skip.
        if job.job_id in self._ids:
            raise row.error("job_id", f"{job.job_id!r} appears twice")
        self._ids.add(job.job_id)
        self.jobs.append(job)

    def trace(self, name: str, source: Path | None, rebase: bool = False) -> Trace:
        """The sorted trace. With ``rebase``, submit times are epoch seconds and are shifted so
        the earliest accepted job arrives at 0; ``origin`` then records that moment."""
        jobs = self.jobs
        origin: str | None = None
        if rebase and jobs:
            start = min(job.submit_s for job in jobs)
            origin = iso_utc(start)
            jobs = [_shifted(job, start) for job in jobs]
        jobs.sort(key=lambda job: (job.submit_s, job.job_id))
        return Trace(
            name=name,
            source=source,
            jobs=tuple(jobs),
            skipped=sum(self._skips.values()),
            skip_reasons=tuple(sorted(self._skips.items())),
            notes=tuple(sorted(self._notes.items())),
            origin=origin,
        )


def _shifted(job: TraceJob, start: float) -> TraceJob:
    # Positional construction: dataclasses.replace costs three times as much per job, which
    # shows on the 82,247 jobs of Philly.
    return TraceJob(
        job.job_id,
        job.submit_s - start,
        job.runtime_s,
        job.gpus,
        job.nodes,
        job.gpu_model,
        job.user,
        job.group,
        job.time_limit_s,
        job.workload_class,
        job.recorded_wait_s,
        job.extra,
        job.gpu_models,
        job.min_gpu_memory_gb,
        job.countries,
    )


def extras(**values: object) -> tuple[tuple[str, str], ...]:
    """``extra`` pairs from keyword values, dropping None, sorted by key."""
    return tuple(sorted((key, str(value)) for key, value in values.items() if value is not None))
