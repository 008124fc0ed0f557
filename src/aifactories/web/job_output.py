"""A job's output and error logs in the portal: the tail on the job's page, the next bytes
for jobs.js to follow while the job runs, and the whole file to download.

The same service as ``GET /jobs/{ref}/output`` (services/jobs/job_output.py): only the job's
project reads it (another project's member: 404; a programme operator: 403), and after the
retention it is gone (410).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from aifactories.domain.errors import PermissionDenied, SiteUnavailable
from aifactories.services.core.context import Principal
from aifactories.services.jobs import job_output as service
from aifactories.services.platform import Platform
from aifactories.web.errors import portal_error
from aifactories.web.session import SignedIn, context

router = APIRouter(include_in_schema=False)

Stream = Literal["output", "error"]
STREAMS: tuple[Stream, ...] = ("output", "error")
TAIL_LINES = 200  # the page shows this much; the download has the rest
TAIL_BYTES = 256 * 1024
FOLLOW_CHUNK = 64 * 1024  # per poll of jobs.js: a fast writer is caught up in a few polls
MEDIA_TYPE = "text/plain; charset=utf-8"

Ref = Annotated[str, Path(pattern=r"^[0-9]{1,10}(_[0-9]{1,7})?$")]
StreamQ = Annotated[Stream, Query()]


@dataclass(frozen=True)
class OutputPanel:
    """One log on the job's page: its last lines, or why there is nothing to show."""

    stream: Stream
    text: str | None
    offset: int  # where following continues (the size read)
    size: int
    cut: bool  # earlier bytes are not shown (the download has them)
    note: str | None
    final: bool

    @property
    def title(self) -> str:
        return "Output" if self.stream == "output" else "Errors"


Reader = Callable[[int, int], service.OutputView]


def _reader(request: Request, principal: Principal, ref: str, stream: Stream) -> Reader:
    """Reads of the job's log from an offset, through its site's back-end."""
    platform: Platform = request.app.state.platform
    executors = platform.executors()
    ctx = context(request)

    def read(offset: int, limit: int) -> service.OutputView:
        return service.read_job_output(
            ctx, principal, ref, stream, offset, limit, executors=executors
        )

    return read


def output_panel(
    request: Request, principal: Principal, ref: str, stream: Stream
) -> OutputPanel | None:
    """The log's tail for the job's page; None for a standard error that goes with the
    output (the site reports no file of its own for it)."""
    read = _reader(request, principal, ref, stream)
    try:
        first = read(0, 0)
    except (service.OutputExpired, PermissionDenied, SiteUnavailable) as why:
        return OutputPanel(stream, None, 0, 0, False, why.message, True)
    if first.with_output:
        return None
    if not first.exists:
        note = service.no_output_message(first)
        return OutputPanel(stream, None, 0, 0, False, note, first.final)
    start = service.tail_start(lambda o, n: read(o, n).data, first.size, TAIL_LINES)
    start = max(start, first.size - TAIL_BYTES)
    data = b"".join(_chunks(read, start, first.size))
    text = data.decode("utf-8", errors="replace")
    return OutputPanel(stream, text, start + len(data), first.size, start > 0, None, first.final)


def _chunks(read: Reader, start: int, end: int | None) -> Iterator[bytes]:
    """Bytes from ``start`` to ``end`` (None: to the end as it is now)."""
    offset = start
    while end is None or offset < end:
        want = service.MAX_READ if end is None else min(service.MAX_READ, end - offset)
        data = read(offset, want).data
        if not data:
            return
        yield data
        offset += len(data)


@router.get("/portal/jobs/{ref}/output")
def follow_output(
    request: Request,
    principal: SignedIn,
    ref: Ref,
    stream: StreamQ = "output",
    offset: Annotated[int, Query(ge=0, le=1 << 50)] = 0,
) -> Response:
    """The bytes after ``offset`` (at most 64 KiB), for jobs.js to append. Headers say the
    job's state and whether it had ended before this read (then, once a read brings
    nothing, there is nothing more to follow)."""
    try:
        view = _reader(request, principal, ref, stream)(offset, FOLLOW_CHUNK)
    except service.OutputExpired as gone:
        return Response(gone.message, status_code=410, media_type=MEDIA_TYPE)
    headers = {
        "X-Job-State": view.state.value,
        "X-Job-Final": "1" if view.final else "0",
        "X-Output-Size": str(view.size),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",  # a job's bytes are never read as HTML
    }
    return Response(view.data, media_type=MEDIA_TYPE, headers=headers)


@router.get("/portal/jobs/{ref}/output/download")
def download_output(
    request: Request, principal: SignedIn, ref: Ref, stream: StreamQ = "output"
) -> Response:
    """The whole log as a file (job-123.out, job-123_4.err)."""
    read = _reader(request, principal, ref, stream)
    try:
        first = read(0, 0)
    except service.OutputExpired as gone:
        return portal_error(request, 410, gone.message)
    if first.with_output or not first.exists:
        return portal_error(request, 404, service.no_output_message(first))
    name = f"job-{ref}.{'out' if stream == 'output' else 'err'}"
    return StreamingResponse(
        _chunks(read, 0, None),
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
