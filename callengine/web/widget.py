"""The widget's own routes: the script a page embeds (`GET /widget.js`) and, by the widget's
public key, its configuration (`…/config?lang=`), its ALTCHA challenge (`…/challenge`) and
the live progress of a lead (`…/leads/{lead_id}/events`, server-sent events).

The script is read once when the app is built, with its gzip form and ETag precomputed; it is
cacheable by anyone for 5 minutes, loadable cross-origin (CORP), and carries a CSP of its own
that forbids everything (a script needs nothing to be a script; the page's CSP governs it)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from callengine.model import LEAD_DONE
from callengine.services.views import lead_public_view
from callengine.services.widgets import public_config
from callengine.web.deps import services
from callengine.web.security import widget_of

SCRIPT_PATH = Path(__file__).parent / "static" / "widget.js"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def load(cls, path: Path) -> Asset:
        body = path.read_bytes()
        return cls(body, gzip.compress(body, 9, mtime=0),
                   '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


_SCRIPT = web.AppKey("widget_script", Asset)
_CLOSING = web.AppKey("widget_events_closing", asyncio.Event)  # set when the server shuts down
POLL_S = 0.5  # how often a lead's event stream looks at the lead
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
EVENT_FIELDS = ("status", "progress", "outcome", "scheduled_for")
ASSET_HEADERS = {
    "Content-Type": "text/javascript; charset=utf-8",
    "Cache-Control": "public, max-age=300",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Vary": "Accept-Encoding",
}


def _accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*") and params.replace(" ", "") not in (
                "q=0", "q=0.0", "q=0.00", "q=0.000"):
            return True
    return False


def _etag_matches(request: web.Request, etag: str) -> bool:
    wanted = request.headers.get("If-None-Match", "")
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    return "*" in tags or etag in tags or etag[:-1] + '-gzip"' in tags


async def widget_script(request: web.Request) -> web.StreamResponse:
    asset = request.app[_SCRIPT]
    gz = _accepts_gzip(request)
    etag = asset.etag[:-1] + '-gzip"' if gz else asset.etag  # one tag per representation
    headers = {**ASSET_HEADERS, "ETag": etag}
    if _etag_matches(request, asset.etag):
        del headers["Content-Type"]
        return web.Response(status=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    response = web.Response(body=asset.gzipped if gz else asset.body, headers=headers)
    return response


async def widget_config(request: web.Request) -> web.Response:
    return web.json_response(public_config(widget_of(request), request.query.get("lang")))


async def widget_challenge(request: web.Request) -> web.Response:
    return web.json_response(services(request).leads.challenge(widget_of(request)))


async def lead_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events of a lead's progress: `event: progress` with its status, progress,
    outcome and due time whenever one changes (the first at once), a comment every
    HEARTBEAT_S, the end after `done` or when the server shuts down. The lead is looked up
    before the stream starts, so an unknown one is a 404 problem. A client gone away ends the
    handler (aiohttp cancels it, or the write fails); cancellation is not caught here."""
    leads = services(request).leads
    widget = widget_of(request)
    lead_id = request.match_info["lead_id"]
    lead = await leads.public_status(widget, lead_id)
    closing = request.app[_CLOSING]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # a buffering proxy (nginx) would hold the events back
    })
    await response.prepare(request)
    last: dict[str, object] | None = None
    written = time.monotonic()
    try:
        while True:
            view = {k: v for k, v in lead_public_view(lead).items() if k in EVENT_FIELDS}
            if view != last:
                await response.write(b"event: progress\ndata: "
                                     + json.dumps(view).encode() + b"\n\n")
                last, written = view, time.monotonic()
            if lead.status == LEAD_DONE:
                break
            if time.monotonic() - written >= HEARTBEAT_S:
                await response.write(b": heartbeat\n\n")
                written = time.monotonic()
            try:
                await asyncio.wait_for(closing.wait(), POLL_S)
                break  # the server is shutting down
            except TimeoutError:
                pass
            lead = await leads.public_status(widget, lead_id)
        await response.write_eof()
    except ConnectionResetError:  # the visitor left: nothing to tell anyone
        pass
    return response


async def _close_streams(app: web.Application) -> None:
    app[_CLOSING].set()


def add_routes(app: web.Application, script: Path = SCRIPT_PATH) -> None:
    app[_SCRIPT] = Asset.load(script)
    app[_CLOSING] = asyncio.Event()
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/widget.js", widget_script)
    app.router.add_get("/api/v1/widgets/{key}/config", widget_config)
    app.router.add_get("/api/v1/widgets/{key}/challenge", widget_challenge)
    app.router.add_get("/api/v1/widgets/{key}/leads/{lead_id}/events", lead_events)
