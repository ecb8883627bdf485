"""The aiohttp application: `make_app` wires the routes, the problem middleware and the
services `WebDeps` hands it. The tests build it too."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from callengine.web import admin, clauses, events, health, hours, intake, panel, webhooks, widget
from callengine.web.deps import DEPS, SERVICES, WebDeps
from callengine.web.panel.session import COOKIE_SECURE, add_auth_routes, panel_session
from callengine.web.problems import MAX_BODY, problems_middleware
from callengine.web.security import on_prepare, widget_guard


def make_app(deps: WebDeps, *, panel_middlewares: Sequence[Middleware] | None = None,
             panel_routes: Sequence[panel.RouteAdder] | None = None) -> web.Application:
    """panel_middlewares: the panel's session middleware (web/panel/session.py: logged-in
    users, CSRF), after the problem middleware; panel_routes: its login/logout routes. Tests of
    the pages alone hand their own."""
    if panel_middlewares is None:
        panel_middlewares = [panel_session]
    if panel_routes is None:
        panel_routes = [add_auth_routes]
    app = web.Application(middlewares=[problems_middleware, widget_guard, *panel_middlewares],
                          client_max_size=MAX_BODY)
    app[COOKIE_SECURE] = deps.panel_secure_cookies
    app.on_response_prepare.append(on_prepare)  # security and CORS headers, every answer
    app[DEPS] = deps
    app[SERVICES] = deps.services
    health.add_routes(app)
    intake.add_routes(app)
    hours.add_routes(app)
    admin.add_routes(app)
    webhooks.add_routes(app)
    clauses.add_routes(app)
    widget.add_routes(app)
    events.add_routes(app)
    panel.add_routes(app, panel_routes)
    return app
