"""The people who use the panel: the admin's page of accounts (add one — its second factor's
QR code shown once —, disable, enable, a new password, a new second factor) and each user's
own account page (a new password). Account names travel in POSTed forms, not in URLs."""

from __future__ import annotations

import segno
from aiohttp import web
from markupsafe import Markup

from callengine.access import Role
from callengine.errors import InvalidInput
from callengine.web.panel.context import principal
from callengine.web.panel.render import (
    PANEL,
    form,
    form_page,
    page,
    panel_services,
    render,
)
from callengine.web.panel.session import LOGIN


async def _users_context(request: web.Request) -> dict:
    return {"users": await panel_services(request).users.list(principal(request)),
            "roles": [r.value for r in Role]}


@page
async def users(request: web.Request) -> web.Response:
    return render(request, "users.html", await _users_context(request))


def _enrolment(uri: str | None) -> dict:
    """The otpauth URI as a QR code (inline SVG: no script, no data: URL under the CSP) and
    the secret in text, for an authenticator app; shown on this one answer only."""
    if uri is None:
        return {}
    secret = uri.split("secret=", 1)[1].split("&", 1)[0]
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, light="#fff",
                                                title="TOTP")  # segno escapes its text
    return {"totp_uri": uri, "totp_secret": secret, "totp_qr": Markup(svg)}


@form_page("users.html", "user", _users_context)
async def add_user(request: web.Request) -> web.Response:
    data = await form(request)
    wanted = True if data.get("totp") == "on" else None  # None: an admin's is always made
    made = await panel_services(request).users.add(
        principal(request), data.get("username"), data.get("role"), data.get("password", ""),
        totp=wanted)
    return render(request, "user_made.html", {"username": made.username,
                                              "role": made.role.value,
                                              **_enrolment(made.totp_uri)})


@page
async def set_enabled(request: web.Request) -> web.Response:
    data = await form(request)
    services = panel_services(request).users
    name = data.get("username", "")
    if data.get("enabled") == "yes":
        await services.enable(principal(request), name)
    else:
        await services.disable(principal(request), name)
    raise web.HTTPSeeOther(f"{PANEL}/users")


@form_page("users.html", "reset", _users_context)
async def reset_password(request: web.Request) -> web.Response:
    data = await form(request)
    await panel_services(request).users.reset(principal(request), data.get("username", ""),
                                              data.get("password", ""))
    raise web.HTTPSeeOther(f"{PANEL}/users")


@page
async def new_totp(request: web.Request) -> web.Response:
    data = await form(request)
    uri = await panel_services(request).users.reset_totp(principal(request),
                                                         data.get("username", ""))
    return render(request, "user_made.html", {"username": data.get("username", ""),
                                              "renewed": True, **_enrolment(uri)})


async def _account_context(request: web.Request) -> dict:
    return {}


@page
async def account(request: web.Request) -> web.Response:
    return render(request, "account.html", {})


@form_page("account.html", "password", _account_context)
async def change_password(request: web.Request) -> web.Response:
    """The user's own new password: every session of theirs ends, so they log in again."""
    data = await form(request)
    if data.get("password") != data.get("confirm"):
        raise InvalidInput("confirm", "the new password and its repetition differ")
    await panel_services(request).users.change_password(
        principal(request), data.get("current"), data.get("password"), request.remote)
    raise web.HTTPSeeOther(LOGIN)


ROUTES = [  # (method, path under /panel, handler)
    ("GET", "/users", users),
    ("POST", "/users", add_user),
    ("POST", "/users/enabled", set_enabled),
    ("POST", "/users/password", reset_password),
    ("POST", "/users/totp", new_totp),
    ("GET", "/account", account),
    ("POST", "/account/password", change_password),
]
