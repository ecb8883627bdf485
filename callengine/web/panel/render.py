"""How a panel page is answered: its template with what every page needs (who is logged in,
what their role may do, the CSRF token, the texts in their language), the panel's headers, and
the domain errors as HTML pages (the API's one mapping, `problem_for`, decides the status)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from functools import wraps
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from callengine.access import Permission
from callengine.errors import Conflict, InvalidInput
from callengine.services import Services
from callengine.web.deps import SERVICES
from callengine.web.panel.context import CSRF_TOKEN, LANGUAGE, principal
from callengine.web.panel.texts import LANGUAGES, TEXTS
from callengine.web.problems import problem_for

log = logging.getLogger(__name__)

PANEL = "/panel"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; media-src 'self'; "
       "img-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
PANEL_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",  # pages carry personal data (masked numbers, evidence)
}
# A page the panel frames itself (the widget preview, web/panel/widget_pages.py): the same
# headers but frame-ancestors 'self' and X-Frame-Options SAMEORIGIN; nothing else relaxed.
FRAMED_BY_PANEL = web.RequestKey("panel_framed_by_panel", bool)
FRAMED_HEADERS = {**PANEL_HEADERS, "X-Frame-Options": "SAMEORIGIN",
                  "Content-Security-Policy": CSP.replace("frame-ancestors 'none'",
                                                         "frame-ancestors 'self'")}
LANGUAGE_COOKIE = "panel_language"  # set by POST /panel/language; the session middleware reads it

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SERVICES = web.RequestKey("panel_services", Services)


def panel_services(request: web.Request) -> Services:
    """The services acting for the panel (channel "panel": its unmasks say so, and its reads
    are not token uses), over the app's store; made once per request (a few small objects)."""
    found = request.get(_SERVICES)
    if found is None:
        found = request[_SERVICES] = request.app[SERVICES].on_channel("panel")
    return found


def language(request: web.Request) -> str:
    lang = request.get(LANGUAGE, "en")
    return lang if lang in LANGUAGES else "en"


def when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def base_context(request: web.Request) -> dict[str, Any]:
    who = principal(request)
    lang = language(request)
    return {
        "who": who, "role": who.role.value, "lang": lang, "t": TEXTS[lang],
        "csrf": request.get(CSRF_TOKEN, ""), "path": request.path_qs,
        "may": lambda name: who.may(Permission(name)),
    }


def render(request: web.Request, template: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request,
                                          {**base_context(request), **context}, status=status)


def error_page(request: web.Request, status: int, detail: str) -> web.Response:
    texts = TEXTS[language(request)]
    title = {403: texts["forbidden_title"], 404: texts["not_found_title"],
             422: texts["invalid_title"]}.get(status, texts["error_title"])
    if status == 403:
        detail = texts["forbidden_text"]
    return render(request, "error.html", {"title": title, "detail": detail}, status=status)


def page(handler: Handler) -> Handler:
    """A panel handler whose domain errors (Forbidden, NotFound, InvalidInput…) are answered
    as HTML pages with the API's statuses."""
    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            problem = problem_for(exc)
            if problem is None:
                raise
            log.info("panel %s: %s %s", request.path, problem.status, problem.slug)
            return error_page(request, problem.status, problem.detail or problem.title)
    return wrapped


FormContext = Callable[[web.Request], Awaitable[dict[str, Any]]]


def form_page(template: str, form_id: str | Callable[[web.Request], str],
              context: FormContext) -> Callable[[Handler], Handler]:
    """A handler of the form `form_id` on `template` (POSTed, or a GET filter form): a refused
    field (InvalidInput) or a conflict re-renders that page (422/409) with the message beside
    the field (or above the form), what was typed kept in the fields; `context` gives the
    page's other contents. Any other domain error is answered as `page` does. `form_id` may be
    a function of the request (one of several forms alike on the page: the one of the row its
    path names)."""
    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except (InvalidInput, Conflict) as exc:
                if isinstance(exc, InvalidInput):
                    status, errors = 422, {exc.field: exc.message}
                else:
                    status, errors = 409, {"": str(exc)}
                values = request.query if request.method == "GET" else await request.post()
                log.info("panel %s: %s refused field %s", request.path, status, next(iter(errors)))
                return render(request, template, {
                    **await context(request), "errors": errors,
                    "failed_form": form_id(request) if callable(form_id) else form_id,
                    "values": {k: values.getall(k) for k in values if k != "csrf"}},
                    status=status)
        return page(wrapped)
    return decorate


async def form(request: web.Request) -> dict[str, str]:
    """A POSTed form's fields (strings only). The CSRF check is the session middleware's."""
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """The panel's headers on every answer under /panel/ (after the app's own hook, so the
    API's "forbid everything" CSP of an error answer is replaced by the panel's)."""
    if request.path == PANEL or request.path.startswith(PANEL + "/"):
        headers = FRAMED_HEADERS if request.get(FRAMED_BY_PANEL) else PANEL_HEADERS
        for name, value in headers.items():
            if name == "Cache-Control" and request.path.startswith(PANEL + "/static/"):
                continue
            response.headers[name] = value


