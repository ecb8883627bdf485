"""The widget's own routes: the script a page embeds (`GET /widget.js`) and, by the widget's
public key, its configuration (`…/config?lang=`) and its ALTCHA challenge (`…/challenge`).
The live progress of a lead (`…/leads/{lead_id}/events`, server-sent events) is events.py's.

The script is read once when the app is built, with its gzip form and ETag precomputed; it is
cacheable by anyone for 5 minutes, loadable cross-origin (CORP), and carries a CSP of its own
that forbids everything (a script needs nothing to be a script; the page's CSP governs it)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

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


def add_routes(app: web.Application, script: Path = SCRIPT_PATH) -> None:
    app[_SCRIPT] = Asset.load(script)
    app.router.add_get("/widget.js", widget_script)
    app.router.add_get("/api/v1/widgets/{key}/config", widget_config)
    app.router.add_get("/api/v1/widgets/{key}/challenge", widget_challenge)
