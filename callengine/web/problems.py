"""Errors as HTTP answers: RFC 9457 problem details, the one mapping from domain errors to
them, the middleware that applies it, and reading a JSON body (whose faults are problems too).
Nothing outside this package knows about status codes."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from callengine.access import Forbidden
from callengine.crypto import RecordingError
from callengine.errors import (
    ChallengeFailed, ClauseUnknown, Closed, Conflict, ErasureIncomplete, InvalidInput, NotFound,
    RateLimited, SlotFull, SlotInvalid, UnknownWidget, WidgetDisabled, WidgetInUse,
)
from callengine.numbers import NumberRejected
from callengine.recordings import RecordingUnavailable
from callengine.web.deps import DEPS

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://callengine.invalid/problems/"  # stable identifiers, not fetched
MAX_BODY = 16 * 1024
MAX_JSON_DEPTH = 32  # nested arrays/objects a body may have (a lead needs 2)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


class Problem(Exception):
    """An RFC 9457 problem; raised anywhere in a handler, rendered by the middleware."""

    def __init__(self, status: int, slug: str, title: str, detail: str = "", **extra: Any):
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail, self.extra = (
            status, slug, title, detail, extra
        )


def problem_for(exc: Exception) -> Problem | None:
    """The one mapping: a domain error as the problem the API answers (None: not a domain
    error)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ChallengeFailed):
        return Problem(422, "challenge-failed", "The challenge was not solved", str(exc),
                       field="altcha")
    if isinstance(exc, SlotInvalid):
        return Problem(422, "slot-invalid", "This slot is not offered", exc.message,
                       field="slot")
    if isinstance(exc, SlotFull):
        return Problem(409, "slot-full", "This slot is full", str(exc), field="slot")
    if isinstance(exc, Closed):
        return Problem(409, "closed", "No calling hours", str(exc))
    if isinstance(exc, ClauseUnknown):
        return Problem(422, "clause-unknown", "Unknown information clause", exc.message,
                       field=exc.field)
    if isinstance(exc, InvalidInput):
        return Problem(422, "invalid-field", "A field is not valid", exc.message,
                       field=exc.field)
    if isinstance(exc, NumberRejected):
        return Problem(422, f"number-{exc.code}", "This number can't be called back", str(exc),
                       field="phone", code=exc.code)
    if isinstance(exc, WidgetDisabled):
        return Problem(403, "widget-disabled", "This widget is disabled", str(exc))
    if isinstance(exc, WidgetInUse):
        return Problem(409, "widget-in-use", "The widget has leads", str(exc),
                       leads=exc.leads, tombstones=exc.tombstones)
    if isinstance(exc, UnknownWidget):
        return Problem(404, "unknown-widget", "Unknown widget", str(exc))
    if isinstance(exc, NotFound):
        return Problem(404, "not-found", "Not found", str(exc))
    if isinstance(exc, Forbidden):
        return Problem(403, "forbidden", "Not allowed", str(exc))
    if isinstance(exc, Conflict):
        return Problem(409, "conflict", "Conflict", str(exc))
    if isinstance(exc, RateLimited):
        return Problem(429, "rate-limited", "Too many requests", str(exc),
                       retry_after=exc.retry_after_s, limit=exc.limit)
    if isinstance(exc, ErasureIncomplete):
        return Problem(503, "erasure-incomplete", "Erasure not complete yet", str(exc),
                       retry_after=30)
    if isinstance(exc, RecordingUnavailable):
        return Problem(409, "playback-unavailable", "Playback is not possible here", str(exc))
    if isinstance(exc, RecordingError):
        return Problem(422, "recording-damaged", "The recording fails verification",
                       f"{type(exc).__name__}: {exc}")
    return None


def problem_response(problem: Problem, instance: str) -> web.Response:
    body = {
        "type": PROBLEM_TYPE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "instance": instance,
        **({"detail": problem.detail} if problem.detail else {}),
        **problem.extra,
    }
    headers = {}
    if "retry_after" in problem.extra:
        headers["Retry-After"] = str(problem.extra["retry_after"])
    if problem.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="callengine"'
    response = web.json_response(
        body, status=problem.status, content_type="application/problem+json", headers=headers
    )
    if problem.status in (408, 413):
        response.force_close()  # the rest of the body is not worth waiting for
    return response


@web.middleware
async def problems_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if isinstance(exc, web.HTTPRequestEntityTooLarge):  # a body over client_max_size
            return problem_response(_too_large(), request.path)
        response = problem_response(
            Problem(exc.status, f"http-{exc.status}", exc.reason or "HTTP error"), request.path
        )
        if isinstance(exc, web.HTTPMethodNotAllowed):  # RFC 9110 §15.5.6: Allow is required
            response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    except Exception as exc:
        problem = problem_for(exc)
        if problem is None:
            # Log the trace for operators; the client gets no internals.
            # The route, not the path: the path is what the client sent.
            log.exception("unhandled error on %s %s", request.method, _route(request))
            problem = Problem(500, "internal", "Internal error", "the error was logged")
        return problem_response(problem, request.path)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def _too_large() -> Problem:
    return Problem(413, "too-large", "Request body too large", f"at most {MAX_BODY} bytes")


def _malformed(detail: str) -> Problem:
    return Problem(400, "malformed-json", "Malformed JSON", detail)


def _too_deep(raw: bytes) -> bool:
    """Whether the JSON text nests arrays/objects deeper than MAX_JSON_DEPTH (brackets inside
    strings don't count). json.loads would recurse once per level, up to a RecursionError."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False  # the usual body: nothing to scan
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


async def read_body(request: web.Request, timeout_s: float) -> bytes:
    """The whole body, at most MAX_BODY bytes however it is framed (Content-Length or
    chunked: the app's client_max_size stops a chunked one), within `timeout_s` (a client
    trickling its body in is cut off: aiohttp itself has no body read timeout)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large()
    try:
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None
    except TimeoutError:
        raise Problem(408, "body-timeout", "The request body came too slowly",
                      f"send the body within {timeout_s:g} s") from None
    except web.RequestPayloadError as exc:  # broken chunked framing, bad compression
        raise Problem(400, "malformed-body", "The request body could not be read",
                      type(exc).__name__) from None


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large()
    if request.content_type != "application/json":
        raise Problem(415, "unsupported-media-type", "Send JSON",
                      "Content-Type must be application/json")
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        # JSON is UTF-8 (RFC 8259); the client's charset is not echoed back.
        raise Problem(415, "unsupported-charset", "Send UTF-8",
                      "JSON must be sent as UTF-8")
    raw = await read_body(request, request.app[DEPS].body_timeout_s)
    if _too_deep(raw):
        raise _malformed(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError included
        raise _malformed("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _malformed("the body must be a JSON object")
    return data
