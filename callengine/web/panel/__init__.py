"""The web panel: server-rendered pages (aiohttp-jinja2, autoescaped) for each role, English
and Polish, with a strict CSP (no inline script or style) and the services doing every check.

Who is logged in, the CSRF token and the language come from the session middleware
(web/panel/session.py) through the request keys of web/panel/context.py; `add_routes` takes
that module's route adder (login, logout, TOTP) among `extra` when the app is made."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from callengine.web.panel import admin_pages, pages, user_pages, widget_pages
from callengine.web.panel.render import (
    LANGUAGE_COOKIE,
    PANEL,
    form,
    on_prepare,
    seconds,
    when,
)
from callengine.web.panel.texts import LANGUAGES

HERE = Path(__file__).parent
RouteAdder = Callable[[web.Application], None]


async def home(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{PANEL}/leads")


async def set_language(request: web.Request) -> web.Response:
    """POST: the panel's language, kept in a cookie; back to the page it was asked on."""
    data = await form(request)
    lang = data.get("language", "en")
    target = data.get("next", "")
    if not target.startswith(PANEL + "/") or target.startswith("//"):
        target = f"{PANEL}/leads"
    response = web.HTTPSeeOther(target)
    if lang in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, lang, path=PANEL, httponly=True, samesite="Strict",
                            max_age=365 * 86400, secure=request.secure)
    raise response


def add_routes(app: web.Application, extra: Iterable[RouteAdder] = ()) -> None:
    """The panel's templates, static files and pages on `app` (its services already set),
    then each of `extra` (the session module's `add_auth_routes`)."""
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=True)
    env.filters["when"] = when
    env.filters["seconds"] = seconds
    app.on_response_prepare.append(on_prepare)
    app.router.add_static(f"{PANEL}/static/", HERE / "static")
    app.router.add_get(PANEL, home)
    app.router.add_get(PANEL + "/", home)
    app.router.add_post(f"{PANEL}/language", set_language)
    for method, path, handler in [*pages.ROUTES, *admin_pages.ROUTES, *user_pages.ROUTES,
                                  *widget_pages.ROUTES]:
        app.router.add_route(method, PANEL + path, handler)
    for adder in extra:
        adder(app)
