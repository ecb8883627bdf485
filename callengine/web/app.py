"""The aiohttp application: `make_app` wires the routes, the problem middleware and the
services `WebDeps` hands it. The tests build it too."""

from __future__ import annotations

from aiohttp import web

from callengine.web import admin, clauses, events, hours, intake, widget
from callengine.web.deps import DEPS, SERVICES, WebDeps
from callengine.web.problems import MAX_BODY, problems_middleware
from callengine.web.security import on_prepare, widget_guard


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(deps: WebDeps) -> web.Application:
    app = web.Application(middlewares=[problems_middleware, widget_guard],
                          client_max_size=MAX_BODY)
    app.on_response_prepare.append(on_prepare)  # security and CORS headers, every answer
    app[DEPS] = deps
    app[SERVICES] = deps.services
    app.router.add_get("/healthz", health)
    intake.add_routes(app)
    hours.add_routes(app)
    admin.add_routes(app)
    clauses.add_routes(app)
    widget.add_routes(app)
    events.add_routes(app)
    return app
