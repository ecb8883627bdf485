"""The panel's login side: the session middleware and the login, second-factor and logout routes
(services/users.py does the work; this is HTTP only).

- `panel_session` (middleware, for /panel and everything under /panel/): sets
  request[LANGUAGE] ("pl" or "en": the `panel_language` or `lang` cookie, else
  Accept-Language), and outside the login pages and /panel/static/ resolves the session cookie into request[PRINCIPAL] and
  request[CSRF_TOKEN]. Without a valid session: 303 to /panel/login, whatever the method (a
  form sent after its session ended can't be trusted or kept). With one, every unsafe method
  (anything but GET, HEAD, OPTIONS) must carry the session's CSRF token, in the form field
  `csrf` or the `X-CSRF-Token` header; without it: 403 with a short HTML page (no redirect: the
  person sees why their form did nothing). Answers of the panel are `Cache-Control: no-store`.
- Cookies: the session (`ce_session`), the pending second factor (`ce_pending`) and the login
  form's own CSRF token (`ce_login`, double-submit: against login CSRF) are all HttpOnly,
  SameSite=Strict, path /panel, and Secure unless the app says otherwise (COOKIE_SECURE: only
  plain-http development on loopback and tests turn it off); none has Max-Age (gone with the
  browser; the server ends sessions after 30 min idle or 12 h).
- No personal data in URLs: the forms post; redirects carry no query.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from callengine.services.users import (
    LoginFailed,
    LoginLocked,
    TotpInvalid,
    TotpNotEnrolled,
    TotpRequired,
    check_csrf,
)
from callengine.web.deps import services
from callengine.web.panel.context import CSRF_TOKEN, LANGUAGE, PRINCIPAL
from callengine.web.panel.texts_auth import LANGUAGES, texts

PANEL = "/panel"
LOGIN = "/panel/login"
LOGIN_TOTP = "/panel/login/totp"
LOGOUT = "/panel/logout"
HOME = "/panel/"
PUBLIC_PATHS = frozenset({LOGIN, LOGIN_TOTP})
PUBLIC_PREFIXES = ("/panel/static/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SESSION_COOKIE = "ce_session"
PENDING_COOKIE = "ce_pending"
LOGIN_COOKIE = "ce_login"
LANG_COOKIES = ("panel_language", "lang")  # the panel's language switch sets the first
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"

# False only for plain-http development on loopback, and tests (config [panel] secure_cookies).
COOKIE_SECURE = web.AppKey("panel_cookie_secure", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_panel(path: str) -> bool:
    return path == PANEL or path.startswith(PANEL + "/")


def language_of(request: web.Request) -> str:
    """The language cookie if it names a language of the panel, else the first of
    Accept-Language's that does (by q), else English."""
    for name in LANG_COOKIES:
        if (cookie := request.cookies.get(name)) in LANGUAGES:
            return cookie
    wanted: list[tuple[float, int, str]] = []
    for i, part in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > 0:
            wanted.append((-q, i, primary))
    return min(wanted)[2] if wanted else "en"


def set_cookie(request: web.Request, response: web.StreamResponse, name: str,
               value: str) -> None:
    response.set_cookie(name, value, path=PANEL, secure=request.app.get(COOKIE_SECURE, True),
                        httponly=True, samesite="Strict")


def clear_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path=PANEL, secure=request.app.get(COOKIE_SECURE, True),
                        httponly=True, samesite="Strict")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def csrf_refused(request: web.Request) -> web.Response:
    t = texts(request.get(LANGUAGE, "en"))
    lang = request.get(LANGUAGE, "en")
    body = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(t['csrf_title'])}</title></head><body><main>"
            f"<h1>{html.escape(t['csrf_title'])}</h1><p>{html.escape(t['csrf_text'])}</p>"
            f'<p><a href="{HOME}">{html.escape(t["csrf_back"])}</a></p></main></body></html>')
    return web.Response(status=403, text=body, content_type="text/html")


async def _given_csrf(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)  # cached: the handler reads it again
        return value if isinstance(value, str) else None
    return None


@web.middleware
async def panel_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_panel(request.path):
        return await handler(request)
    request[LANGUAGE] = language_of(request)
    if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
        return _no_store(await handler(request))
    found = await services(request).users.session(request.cookies.get(SESSION_COOKIE))
    if found is None:
        response = see_other(LOGIN)
        if SESSION_COOKIE in request.cookies:
            clear_cookie(request, response, SESSION_COOKIE)
        return _no_store(response)
    request[PRINCIPAL], request[CSRF_TOKEN] = found
    if request.method not in SAFE_METHODS and not check_csrf(found[1],
                                                             await _given_csrf(request)):
        return _no_store(csrf_refused(request))
    return _no_store(await handler(request))


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    if not response.prepared:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# ---- the routes ---------------------------------------------------------------------------


def _page(request: web.Request, template: str, login_csrf: str, *, status: int = 200,
          error: str | None = None, username: str = "", notice: str | None = None
          ) -> web.Response:
    language = request.get(LANGUAGE, "en")
    # `t`, `who`, `may`, `role`, `path`: what the panel's base.html reads on every page; nobody
    # is logged in here (base.html shows its navigation only `{% if who %}`).
    response = aiohttp_jinja2.render_template(template, request, {
        "auth": texts(language), "t": texts(language), "lang": language, "csrf": login_csrf,
        "error": error, "username": username, "notice": notice, "who": None, "role": "",
        "may": lambda name: False, "path": request.path,
    }, status=status)
    set_cookie(request, response, LOGIN_COOKIE, login_csrf)
    return response


def _login_csrf_ok(request: web.Request, form: dict) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE)
    given = form.get(CSRF_FIELD)
    return bool(expected) and isinstance(given, str) and check_csrf(expected, given)


async def _logged_in(request: web.Request) -> bool:
    return await services(request).users.session(request.cookies.get(SESSION_COOKIE)) is not None


async def login_form(request: web.Request) -> web.StreamResponse:
    if await _logged_in(request):
        return see_other(HOME)
    return _page(request, "login.html", secrets.token_urlsafe(32))


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = dict(await request.post())
    t = texts(request[LANGUAGE])
    fresh = secrets.token_urlsafe(32)
    username = form.get("username") if isinstance(form.get("username"), str) else ""
    if not _login_csrf_ok(request, form):
        return _page(request, "login.html", fresh, status=403, error=t["login_expired"],
                     username=username)
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    users = services(request).users
    try:
        login = await users.login(username, password, None, request.remote)
    except TotpRequired as pending:
        response = see_other(LOGIN_TOTP)
        set_cookie(request, response, PENDING_COOKIE, pending.pending)
        return response
    except LoginLocked as locked:
        minutes = max(1, round((locked.until - users.ctx.clock()) / 60 + 0.49))
        return _page(request, "login.html", fresh, status=429,
                     error=t["locked"].format(minutes=minutes), username=username)
    except TotpNotEnrolled:
        return _page(request, "login.html", fresh, status=403, error=t["totp_not_enrolled"],
                     username=username)
    except LoginFailed:
        return _page(request, "login.html", fresh, status=401, error=t["bad_credentials"],
                     username=username)
    return _logged_in_response(request, login.token)


def _logged_in_response(request: web.Request, token: str) -> web.Response:
    response = see_other(HOME)
    set_cookie(request, response, SESSION_COOKIE, token)
    clear_cookie(request, response, PENDING_COOKIE)
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


async def totp_form(request: web.Request) -> web.StreamResponse:
    if PENDING_COOKIE not in request.cookies:
        return see_other(LOGIN)
    return _page(request, "totp.html", secrets.token_urlsafe(32))


async def totp_submit(request: web.Request) -> web.StreamResponse:
    form = dict(await request.post())
    t = texts(request[LANGUAGE])
    pending = request.cookies.get(PENDING_COOKIE)
    if not pending:
        return see_other(LOGIN)
    fresh = secrets.token_urlsafe(32)
    if not _login_csrf_ok(request, form):
        return _page(request, "totp.html", fresh, status=403, error=t["login_expired"])
    code = form.get("code") if isinstance(form.get("code"), str) else ""
    users = services(request).users
    try:
        login = await users.login_totp(pending, code, request.remote)
    except TotpInvalid:
        return _page(request, "totp.html", fresh, status=401, error=t["totp_invalid"])
    except LoginLocked as locked:
        minutes = max(1, round((locked.until - users.ctx.clock()) / 60 + 0.49))
        response = _page(request, "login.html", fresh, status=429,
                         error=t["locked"].format(minutes=minutes))
        clear_cookie(request, response, PENDING_COOKIE)
        return response
    except LoginFailed:  # the pending login expired or is unknown: start again
        response = _page(request, "login.html", fresh, status=401, error=t["login_expired"])
        clear_cookie(request, response, PENDING_COOKIE)
        return response
    return _logged_in_response(request, login.token)


async def logout(request: web.Request) -> web.StreamResponse:
    """Behind the middleware: a session and its CSRF token are needed to get here."""
    await services(request).users.logout(request.cookies.get(SESSION_COOKIE))
    response = see_other(LOGIN)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


def add_auth_routes(app: web.Application) -> None:
    app.router.add_get(LOGIN, login_form)
    app.router.add_post(LOGIN, login_submit)
    app.router.add_get(LOGIN_TOTP, totp_form)
    app.router.add_post(LOGIN_TOTP, totp_submit)
    app.router.add_post(LOGOUT, logout)
