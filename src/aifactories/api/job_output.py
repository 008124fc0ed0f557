"""GET /jobs/{job}/output and /error: a job's output as plain bytes, streamed, with HTTP
ranges, ``?tail=N`` lines and ``?follow=true`` (docs/job-output.md)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aifactories.api.deps import Ctx, Me
from aifactories.api.params import PathJobRef
from aifactories.api.schemas import ErrorBody
from aifactories.domain.errors import AifError, SiteUnavailable
from aifactories.domain.ids import SiteId
from aifactories.executors.base import Executor, OutputStream
from aifactories.services.jobs import job_output as service
from aifactories.services.platform import Platform

log = logging.getLogger(__name__)
router = APIRouter(tags=["jobs"])

FOLLOW_POLL_S = 0.2  # a follower looks for new bytes this often (the latency target is 1 s)
MEDIA_TYPE = "text/plain; charset=utf-8"
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")

Follow = Annotated[
    bool,
    Query(description="keep the answer open and send new bytes as they are written, until "
          "the job has ended and everything is sent; a Range is then ignored"),
]  # fmt: skip
Tail = Annotated[
    int | None,
    Query(ge=0, le=1_000_000, description="only the last N lines (a Range is then ignored)"),
]
RangeHeader = Annotated[
    str | None,
    Header(
        alias="Range",
        max_length=100,
        description="bytes=N- or bytes=N-M or bytes=-N (one range; anything else is ignored "
        "and the whole output is sent)",
    ),
]

_TEXT = {"text/plain": {"schema": {"type": "string", "format": "binary"}}}
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": _TEXT,
        "description": "the output from its start (or its last N lines): empty while the job "
        "has written nothing yet (header X-Job-State says its state)",
    },
    206: {"content": _TEXT, "description": "the range asked for (header Content-Range)"},
    410: {"model": ErrorBody, "description": "the job ended longer ago than the retention"},
    416: {"model": ErrorBody, "description": "the range starts past the end of the output"},
}


def _executors(request: Request) -> Mapping[SiteId, Executor]:
    plat: Platform = request.app.state.platform
    return plat.executors()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = ErrorBody(error=code, message=message).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _output_route(stream: OutputStream) -> Callable[..., Awaitable[Response]]:
    async def read(
        request: Request,
        context: Ctx,
        who: Me,
        job_ref: PathJobRef,
        follow: Follow = False,
        tail: Tail = None,
        range_: RangeHeader = None,
    ) -> Response:
        # a thread: an API worker without the broker builds the back-ends on first use
        executors = await run_in_threadpool(_executors, request)
        reader = partial(
            service.read_job_output, context, who, job_ref, stream, executors=executors
        )
        try:
            first = await run_in_threadpool(reader, 0, 0)
        except service.OutputExpired as exc:
            return _error(410, exc.code, exc.message)
        headers = {
            "X-Job-State": first.state.value,
            "X-Output-Size": str(first.size),
            "Accept-Ranges": "bytes",
        }
        if first.with_output or (not first.exists and first.final):
            return _error(404, "no_output", service.no_output_message(first), headers)
        if not first.exists and not follow:  # not yet: nothing so far
            return Response(b"", media_type=MEDIA_TYPE, headers=headers)
        start, end, status = 0, first.size, 200
        if tail is not None:
            start = await run_in_threadpool(
                service.tail_start, partial(_bytes, reader), first.size, tail
            )
        elif range_ is not None and not follow:
            wanted = _parse_range(range_, first.size)
            if isinstance(wanted, str):  # unsatisfiable
                headers["Content-Range"] = f"bytes */{first.size}"
                message = f"the output of job {job_ref} has {first.size} bytes: {range_} is past it"
                return _error(416, "range_not_satisfiable", message, headers)
            if wanted is not None:
                start, end = wanted
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{first.size}"
        body = _follow(reader, start) if follow else _send(reader, start, end)
        return StreamingResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)

    read.__name__ = f"job_{stream}"
    read.__doc__ = (
        f"The job's standard {stream} as its site has it, streamed: bytes as the job wrote "
        "them (text/plain; UTF-8 when the job wrote UTF-8). Only members of the job's "
        "project may read it."
    )
    return read


def _bytes(reader: partial[service.OutputView], offset: int, length: int) -> bytes:
    return reader(offset, length).data


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end exclusive), "unsatisfiable", or None to send everything (RFC 9110: a
    range the server does not understand is ignored)."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # bytes=-N: the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if last != "" and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        return "unsatisfiable"
    return start, end


async def _send(reader: partial[service.OutputView], start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``end`` as they are now (a file that shrank ends the answer)."""
    offset = start
    while offset < end:
        view = await run_in_threadpool(reader, offset, min(service.MAX_READ, end - offset))
        if not view.data:
            return
        yield view.data
        offset += len(view.data)


async def _follow(reader: partial[service.OutputView], start: int) -> AsyncIterator[bytes]:
    """New bytes as they come, until the job has ended and all it wrote is sent. The job's
    state is read before its file: once it is final, a read that finds nothing new is the
    end. A site that does not answer is asked again; a client that leaves cancels this."""
    offset = start
    while True:
        try:
            view = await run_in_threadpool(reader, offset, service.MAX_READ)
        except SiteUnavailable as exc:
            log.info("following job output: %s; trying again", exc.message)
            await asyncio.sleep(FOLLOW_POLL_S * 5)
            continue
        except AifError as exc:
            log.info("following job output ended: %s", exc.message)
            return
        if view.data:
            yield view.data
            offset += len(view.data)
            continue
        if view.final:
            return
        await asyncio.sleep(FOLLOW_POLL_S)


_STREAMS: tuple[OutputStream, ...] = ("output", "error")
for _stream in _STREAMS:
    router.add_api_route(
        f"/jobs/{{job_ref}}/{_stream}",
        _output_route(_stream),
        methods=["GET"],
        response_class=StreamingResponse,
        responses=_RESPONSES,
        summary=f"A job's standard {_stream}",
    )
