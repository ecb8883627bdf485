"""The HTTP listener: the app on a host and port for as long as the block runs (the composition
root's way to serve it, so that only this package touches aiohttp's server)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from callengine.logs import redact
from callengine.web.app import make_app
from callengine.web.deps import WebDeps


class _ClientFaults(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR with its traceback, quoting the
    client's bytes. That is the client's fault, not the engine's: one WARNING line naming the
    fault (never the bytes), so garbage from the internet neither fills the log with
    tracebacks nor puts what it carried there."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            fault = next((line.strip() for line in (exc.message or "").splitlines()
                          if line.strip()), type(exc).__name__)
            record.msg = f"{redact(record.getMessage())}: {exc.code} {redact(fault)}"
            record.args = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = record.stack_info = None
        return True


_CLIENT_FAULTS = _ClientFaults()


@asynccontextmanager
async def listening(deps: WebDeps, host: str, port: int) -> AsyncIterator[int]:
    """Serve until the block exits; yields the bound port (useful when `port` is 0)."""
    logging.getLogger("aiohttp.server").addFilter(_CLIENT_FAULTS)
    # No access log: it would record every visitor's address and request line, query string
    # included (callengine.logs); the engine's own lines name the lead instead.
    runner = web.AppRunner(make_app(deps), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
