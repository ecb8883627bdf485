"""The panel over a seeded store (tests/support/panel.py): a test client for the route tests,
a live server and Debian's Chromium (the widget's browser fixture) for the browser tests."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.panel import seeded_panel
from tests.widget.conftest import browser  # the fixture, reused

__all__ = ["browser"]


@pytest.fixture
async def panel(tmp_path):
    async with seeded_panel(tmp_path) as seeded:
        yield seeded


@pytest.fixture
async def client(panel):
    async with TestClient(TestServer(panel.app)) as c:
        yield c


@pytest.fixture
async def served(panel):
    """The panel on a loopback port: (panel, its origin)."""
    from tests.widget.conftest import _start

    runner, port = await _start(panel.app)
    try:
        yield panel, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
