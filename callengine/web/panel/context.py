"""What the panel's pages know of the request: who is logged in (set by the session
middleware, web/panel/session.py) and the CSRF token their forms carry."""

from __future__ import annotations

from aiohttp import web

from callengine.access import Principal

PRINCIPAL = web.RequestKey("panel_principal", Principal)  # the logged-in user, as a Principal
CSRF_TOKEN = web.RequestKey("panel_csrf", str)  # this session's token for forms (hidden field "csrf")
LANGUAGE = web.RequestKey("panel_language", str)  # "en" or "pl"


def principal(request: web.Request) -> Principal:
    """The logged-in user (the session middleware sends anyone else to the login page)."""
    return request[PRINCIPAL]
