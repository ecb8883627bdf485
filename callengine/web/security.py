"""What every answer carries for the browser's sake, and the widget routes' Origin rule.

- Security headers on every answer (`on_prepare`, aiohttp's `on_response_prepare` signal: it
  runs for every response, streamed ones and problem answers included, just before the headers
  go out): `nosniff`, no referrer; on the API also `no-store` (its answers carry personal
  data: lead status, unmasked numbers, exports) and a CSP/X-Frame-Options that forbid framing
  and loading anything (a JSON answer needs nothing). A handler's own value wins (setdefault),
  so the widget's assets set their own CSP and caching.
- The public widget routes (`/api/v1/widgets/{key}/…`): `widget_guard` finds the widget once,
  refuses a browser request from an Origin outside its `allowed_origins` (403
  `origin-not-allowed`, before the handler runs, so nothing is written), and keeps the widget on
  the request (`widget_of`). Every answer on those routes, errors included, then gets the CORS
  headers for an allowed Origin (`cors_for_widget`), so the widget can read why it was refused
  and `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from callengine.model import Widget
from callengine.web.deps import services
from callengine.web.problems import Problem

WIDGET_ROUTES = "/api/v1/widgets/"  # …{key}/…: the public routes a widget calls
_WIDGET = web.RequestKey("widget", Widget)

API_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
ALL_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def cors_for_widget(request: web.BaseRequest, widget: Widget,
                    response: web.StreamResponse) -> None:
    """The CORS headers of an answer to a widget's route: `Access-Control-Allow-Origin` (and
    `Access-Control-Expose-Headers: Retry-After`) when the request's Origin is one of the
    widget's `allowed_origins`; `Vary: Origin` always, as the answer depends on it. Call it
    before the response is prepared (the prepare hook does, for every route under
    /api/v1/widgets/{key}/)."""
    _add_vary(response, "Origin")
    origin = request.headers.get("Origin")
    if origin is not None and origin in widget.settings.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"


def widget_of(request: web.Request) -> Widget:
    """The widget of a route under /api/v1/widgets/{key}/, found (and its Origin rule
    applied) by `widget_guard`."""
    return request[_WIDGET]


def origin_allowed(request: web.BaseRequest, widget: Widget) -> bool:
    """No Origin (not a browser's cross-site request: a CRM, curl) or one the widget lists."""
    origin = request.headers.get("Origin")
    return origin is None or origin in widget.settings.allowed_origins


def is_widget_route(request: web.Request) -> bool:
    return request.path.startswith(WIDGET_ROUTES) and "key" in request.match_info


@web.middleware
async def widget_guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Inside the problems middleware: its refusals become problem answers."""
    if is_widget_route(request):
        widget = await services(request).leads.widget_for_key(request.match_info["key"])
        request[_WIDGET] = widget  # before the refusal: the 403 gets Vary too
        if not origin_allowed(request, widget):
            raise Problem(403, "origin-not-allowed", "This site may not use the widget",
                          "the page's origin is not one of the widget's allowed origins")
    return await handler(request)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    add_security_headers(request.path, response)
    widget = request.get(_WIDGET)
    if widget is not None:
        cors_for_widget(request, widget, response)


OPS_PATHS = ("/healthz", "/readyz", "/metrics")  # web/health.py's


def add_security_headers(path: str, response: web.StreamResponse) -> None:
    for name, value in ALL_HEADERS.items():
        response.headers.setdefault(name, value)
    if path.startswith("/api/") or path in OPS_PATHS or response.status >= 400:
        for name, value in API_HEADERS.items():
            response.headers.setdefault(name, value)


def _add_vary(response: web.StreamResponse, header: str) -> None:
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    if header.lower() not in (v.lower() for v in present):
        response.headers["Vary"] = ", ".join([*present, header])
