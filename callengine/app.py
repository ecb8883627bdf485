"""Composition root: builds the store, the ARI client, the engine and the web app, runs them
under one TaskGroup and stops them gracefully (on a signal, or when the caller says so)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from callengine.asterisk.ari import AriClient
from callengine.config import Config
from callengine.engine import Engine
from callengine.store import Store
from callengine.web import WebDeps, make_app

log = logging.getLogger(__name__)


@dataclass
class Running:
    store: Store
    engine: Engine
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[Running]:
    """The whole service, up until the block exits; tests use this directly."""
    async with Store.open(config.database) as store, AriClient(
        config.ari.url, config.ari.user, config.ari.password, config.ari.app
    ) as ari:
        engine = Engine(store, ari, config.dialing)
        runner = web.AppRunner(make_app(WebDeps(store, config.http.admin_token, engine.wake)))
        await runner.setup()
        site = web.TCPSite(runner, config.http.host, config.http.port)
        await site.start()
        port = runner.addresses[0][1]
        log.info("HTTP API on %s:%d", config.http.host, port)
        try:
            async with asyncio.TaskGroup() as tasks:
                engine_task = tasks.create_task(engine.run(), name="engine")
                try:
                    yield Running(store, engine, port)
                finally:
                    engine_task.cancel()
        finally:
            await runner.cleanup()


async def serve(config: Config) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(config):
        await stop.wait()
        log.info("stopping: ending calls in progress")
