"""The HTTP listener: the app on a host and port for as long as the block runs (the composition
root's way to serve it, so that only this package touches aiohttp's server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from callengine.web.app import make_app
from callengine.web.deps import WebDeps


@asynccontextmanager
async def listening(deps: WebDeps, host: str, port: int) -> AsyncIterator[int]:
    """Serve until the block exits; yields the bound port (useful when `port` is 0)."""
    runner = web.AppRunner(make_app(deps))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
