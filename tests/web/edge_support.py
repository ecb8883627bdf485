"""A real engine HTTP listener on loopback (callengine.web.listening) over a real store, and
raw-socket helpers: what the edge tests need where the behaviour is in the transport."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from callengine.flow import Strategy
from callengine.model import Agent, Widget, widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, listening
from tests.support.engine import DATA_KEY

ADMIN = "admin-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
SHOP = "https://shop.example"


@dataclass
class Edge:
    port: int
    store: Store
    widget: Widget

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def leads_path(self) -> str:
        return f"/api/v1/widgets/{self.widget.public_key}/leads"


@asynccontextmanager
async def edge(tmp_path: Path, **timeouts: float) -> AsyncIterator[Edge]:
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        settings = widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"], "allowed_origins": [SHOP],
             "challenge": "off"})
        widget = await store.add_widget("shop", "Shop", settings, 1.0)
        deps = WebDeps(Services(store, on_lead=lambda: None), ADMIN, **timeouts)
        async with listening(deps, "127.0.0.1", 0) as port:
            yield Edge(port, store, widget)


def lead_body(**overrides: Any) -> dict[str, Any]:
    body = {"phone": "+48 601 234 567", "consent": {"marketing": False, "recording": False},
            "clause_version": "2026-11"}
    body.update(overrides)
    return body


async def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def problem_of(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    status, headers, body = parse_answer(raw)
    assert headers["content-type"].startswith("application/problem+json"), headers
    return status, headers, json.loads(body)
