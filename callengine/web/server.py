"""The HTTP listener: the app on a host and port for as long as the block runs (the composition
root's way to serve it, so that only this package touches aiohttp's server)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from callengine.web.app import make_app
from callengine.web.deps import WebDeps
from callengine.web.problems import Problem, problem_response
from callengine.web.security import add_security_headers

# After a refused body (too slow, too large) aiohttp reads and drops what still comes for this
# long before it closes; its default, 10 s, would double a trickling client's time.
LINGERING_S = 2.0
IDLE_S = 75.0  # a keep-alive connection with no request in flight (aiohttp's default: 3630 s)


class _ClientFaults(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR with its traceback, as "Error handling
    request from <the client's address>", the parser's message quoting the client's bytes.
    That is the client's fault, not the engine's: one WARNING line naming the fault's kind
    (its status and class, e.g. `400 InvalidHeader`), never the bytes nor the address, so
    garbage from the internet neither fills the log with tracebacks nor puts what it carried
    (a phone number in a header, say) or who sent it there. aiohttp's other lines of that
    shape (an error while answering) keep their traceback and lose the address."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{_ERROR_HANDLING}: {int(exc.code)} {type(exc).__name__}"
            record.args = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = record.stack_info = None
        elif isinstance(record.msg, str) and record.msg.startswith(_ERROR_HANDLING):
            record.msg, record.args = _ERROR_HANDLING, None  # the client's address goes
        return True


_ERROR_HANDLING = "Error handling request"  # aiohttp's words: "… from %s" (request.remote)
_CLIENT_FAULTS = _ClientFaults()


class _EdgeHandler(RequestHandler):
    """aiohttp's connection protocol with two things it has no hook for (aio-libs/aiohttp#3287
    is open; `Server` builds `RequestHandler` itself):

    - A request aiohttp's parser refuses (bad request line, bad or too long headers, broken
      framing) is answered by `handle_error`, outside the application and its middlewares, as
      text/plain. Here it is a problem+json like every other error, with the security headers.
    - A header read timeout: aiohttp waits for a request's headers as long as its keep-alive
      timeout, so a client sending them a byte at a time (slowloris) holds the connection.
      Here the headers must be complete `header_timeout_s` after the connection opens, or after
      the first byte of the next request on a kept-alive one; else the connection is closed.
    """

    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._awaiting_request():
            self._arm_header_timer()  # the first byte of the next request
        super().data_received(data)
        if self._header_timer is not None and not self._awaiting_request():
            self._header_timer.cancel()  # its headers are in
            self._header_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _awaiting_request(self) -> bool:
        """The connection waits for a request's headers: none came yet, or the last one is
        answered and the loop waits for the next (not while a handler reads a body)."""
        if self._messages:
            return False
        waiter = self._waiter
        return self._request_count == 0 or (waiter is not None and not waiter.done())

    def _arm_header_timer(self) -> None:
        self._header_timer = self._loop.call_later(self._header_timeout_s, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._awaiting_request():
            self.force_close()

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if already answering
        if status == 500:
            problem = Problem(500, "internal", "Internal error", "the error was logged")
        elif status == 504:
            problem = Problem(504, "timeout", "The answer took too long")
        else:  # the parser's faults: the detail names the fault, never the client's bytes
            fault = exc.__class__.__name__ if exc is not None else "BadHttpMessage"
            problem = Problem(status, "malformed-request", "The HTTP request is malformed",
                              fault)
        response = problem_response(problem, "/")
        add_security_headers("/api/", response)
        response.force_close()
        return response


class _EdgeServer(web.Server):
    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s

    def __call__(self) -> RequestHandler:
        return _EdgeHandler(self, loop=self._loop, header_timeout_s=self._header_timeout_s,
                            **self._kwargs)


class _EdgeRunner(web.AppRunner):
    """An AppRunner whose server makes `_EdgeHandler`s (the one place aiohttp builds them)."""

    def __init__(self, app: web.Application, *, header_timeout_s: float, **kwargs: Any):
        super().__init__(app, **kwargs)
        self._header_timeout_s = header_timeout_s

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # the app's startup and its handler's settings
        return _EdgeServer(made.request_handler, request_factory=made.request_factory,
                           handler_cancellation=made.handler_cancellation,
                           header_timeout_s=self._header_timeout_s, **made._kwargs)


@asynccontextmanager
async def listening(deps: WebDeps, host: str, port: int) -> AsyncIterator[int]:
    """Serve until the block exits; yields the bound port (useful when `port` is 0)."""
    logging.getLogger("aiohttp.server").addFilter(_CLIENT_FAULTS)
    # No access log: it would record every visitor's address and request line, query string
    # included (callengine.logs); the engine's own lines name the lead instead.
    runner = _EdgeRunner(make_app(deps), access_log=None, header_timeout_s=deps.header_timeout_s,
                         keepalive_timeout=IDLE_S, lingering_time=LINGERING_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
