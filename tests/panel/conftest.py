"""The panel over a seeded store (tests/support/panel.py): a test client for the route tests,
a live server and Debian's Chromium (the widget's browser fixture) for the browser tests."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.panel import add_role_users, real_login_app, seeded_panel
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
    """The panel as the engine serves it (the real session and login) on a loopback port,
    with an account per role: (panel, its origin)."""
    from tests.widget.conftest import _start

    panel.totp_secret = await add_role_users(panel.services)
    runner, port = await _start(real_login_app(panel))
    try:
        yield panel, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
