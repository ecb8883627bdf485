"""The panel's login side over HTTP: the login and second-factor forms, the session cookie's
flags, redirects of anyone without a session, CSRF on every POST, logout, expiry, language.

The app here is a test-only one: the session middleware, the auth routes, a protected page and
form, and aiohttp_jinja2 over the package's login templates plus a tiny base.html of its own
(the panel's real base.html is the pages' part)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp_jinja2
import argon2
import jinja2
import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callengine.access import Principal, Role
from callengine.services import Services
from callengine.services.users import Users
from callengine.storage import Store
from callengine.web.deps import SERVICES
from callengine.web.panel.context import CSRF_TOKEN, LANGUAGE, PRINCIPAL
from callengine.web.panel.session import COOKIE_SECURE, add_auth_routes, panel_session
from tests.support.engine import DATA_KEY

TEMPLATES = Path(__file__).parents[2] / "callengine" / "web" / "panel" / "templates"
ADMIN = Principal("ops", Role.ADMIN)
PASSWORD = "a long panel password"
NOW = 1_800_000_010.0
# What the panel's base.html reads (its navigation shown only to someone logged in).
BASE = ('<!doctype html><html lang="{{ lang }}"><head><title>{% block title %}{% endblock %}'
        ' · {{ t.title }}</title></head><body><a href="#content">{{ t.skip }}</a>'
        '{% if who %}<nav>{{ who.actor }} {% if may("config.write") %}admin{% endif %}</nav>'
        '{% endif %}<main id="content">{% block content %}{% endblock %}</main></body></html>')
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1,
                              type=argon2.Type.ID)


class Clock:
    now = NOW

    def __call__(self) -> float:
        return self.now


async def home(request: web.Request) -> web.Response:
    who = request[PRINCIPAL]
    return web.Response(text=f"home of {who.actor} ({who.role.value}) csrf={request[CSRF_TOKEN]}"
                             f" lang={request[LANGUAGE]}")


async def change(request: web.Request) -> web.Response:
    form = await request.post()
    return web.Response(text=f"changed {form.get('what')}")


async def elsewhere(request: web.Request) -> web.Response:
    return web.Response(text="not the panel")


def make_test_app(services: Services, base_dir: Path, *, secure: bool = False
                  ) -> web.Application:
    (base_dir / "base.html").write_text(BASE)
    app = web.Application(middlewares=[panel_session])
    app[SERVICES] = services
    app[COOKIE_SECURE] = secure
    aiohttp_jinja2.setup(app, loader=jinja2.ChoiceLoader([
        jinja2.FileSystemLoader(str(base_dir)), jinja2.FileSystemLoader(str(TEMPLATES))]))
    add_auth_routes(app)
    app.router.add_get("/panel/", home)
    app.router.add_post("/panel/change", change)
    app.router.add_get("/elsewhere", elsewhere)
    return app


@pytest.fixture
async def env(tmp_path):
    clock = Clock()
    (tmp_path / "tpl").mkdir()
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
        services = Services(store, clock=clock, channel="test")
        services.users = Users(services.context, hasher=CHEAP)
        await services.users.add(ADMIN, "anna", "supervisor", PASSWORD)
        app = make_test_app(services, tmp_path / "tpl")
        async with TestClient(TestServer(app)) as client:
            yield client, services, store, clock


def hidden_csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


async def log_in(client: TestClient, username: str = "anna", password: str = PASSWORD):
    page = await (await client.get("/panel/login")).text()
    return await client.post("/panel/login", data={
        "username": username, "password": password, "csrf": hidden_csrf(page)},
        allow_redirects=False)


async def session_csrf(client: TestClient) -> str:
    text = await (await client.get("/panel/")).text()
    return re.search(r"csrf=(\S+)", text).group(1)


async def test_without_a_session_every_panel_path_sends_to_the_login_page(env):
    client, *_ = env
    for method, path in (("GET", "/panel/"), ("GET", "/panel/leads"), ("POST", "/panel/change"),
                         ("GET", "/panel")):
        response = await client.request(method, path, allow_redirects=False)
        assert (response.status, response.headers.get("Location")) == (303, "/panel/login"), path
    assert (await (await client.get("/elsewhere")).text()) == "not the panel"
    page = await client.get("/panel/login")
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    text = await page.text()
    assert '<form method="post" action="/panel/login"' in text and "<script" not in text
    assert "<title>Log in · callengine panel</title>" in text and "<nav>" not in text


async def test_login_sets_a_strict_http_only_cookie_and_opens_the_panel(env):
    client, services, store, _ = env
    response = await log_in(client)
    assert (response.status, response.headers["Location"]) == (303, "/panel/")
    home_page = await client.get("/panel/")
    assert (await home_page.text()).startswith("home of user:anna (supervisor)")
    assert (await client.get("/panel/login", allow_redirects=False)).status == 303
    actions = [e.action for e in await store.audit_entries()]
    assert actions[-1] == "panel.login"


async def test_cookie_flags_secure_httponly_samesite_strict_path_panel(env, tmp_path):
    _, services, _, _ = env
    (tmp_path / "tpl2").mkdir()
    app = make_test_app(services, tmp_path / "tpl2", secure=True)
    async with TestClient(TestServer(app)) as client:
        form = await client.get("/panel/login")
        login_cookie = SimpleCookie(form.headers["Set-Cookie"])["ce_login"]
        page = await form.text()
        response = await client.post("/panel/login", allow_redirects=False, data={
            "username": "anna", "password": PASSWORD, "csrf": hidden_csrf(page)},
            cookies={"ce_login": login_cookie.value})
        assert response.status == 303
        headers = response.headers.getall("Set-Cookie")
        session = next(h for h in headers if h.startswith("ce_session="))
        flags = {f.strip().lower() for f in session.split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/panel"} <= flags
        assert not any(f.startswith(("max-age", "expires")) for f in flags)
        login_flags = {f.strip().lower() for f in form.headers["Set-Cookie"].split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/panel"} <= login_flags


async def test_wrong_password_and_unknown_user_get_the_same_page(env):
    client, *_ = env
    wrong = await log_in(client, password="not the password")
    unknown = await log_in(client, username="nobody")
    assert wrong.status == unknown.status == 401
    texts = [re.sub(r'value="[^"]*"', "", await r.text()) for r in (wrong, unknown)]
    assert "Wrong user name or password." in texts[0]
    assert texts[0].replace("anna", "nobody") == texts[1]
    assert PASSWORD not in texts[0] and "not the password" not in texts[0]


async def test_login_form_without_its_csrf_is_refused(env):
    client, *_ = env
    response = await client.post("/panel/login", allow_redirects=False,
                                 data={"username": "anna", "password": PASSWORD})
    assert response.status == 403 and "ce_session" not in response.cookies


async def test_lockout_shows_and_lifts(env):
    client, _, _, clock = env
    for _ in range(5):
        assert (await log_in(client, password="wrong password!")).status == 401
    locked = await log_in(client)
    assert locked.status == 429 and "Try again in 15 minutes" in await locked.text()
    clock.now += 901
    assert (await log_in(client)).status == 303


async def test_post_without_the_session_csrf_token_is_refused(env):
    client, *_ = env
    await log_in(client)
    csrf = await session_csrf(client)
    refused = await client.post("/panel/change", data={"what": "x"}, allow_redirects=False)
    assert refused.status == 403 and "This form has expired" in await refused.text()
    wrong = await client.post("/panel/change", data={"what": "x", "csrf": "0" * 64})
    assert wrong.status == 403
    ok = await client.post("/panel/change", data={"what": "x", "csrf": csrf})
    assert (ok.status, await ok.text()) == (200, "changed x")
    fetch = await client.post("/panel/change", data={"what": "y"},
                              headers={"X-CSRF-Token": csrf})
    assert (fetch.status, await fetch.text()) == (200, "changed y")


async def test_logout_needs_csrf_and_ends_the_session(env):
    client, _, store, _ = env
    await log_in(client)
    csrf = await session_csrf(client)
    assert (await client.post("/panel/logout", allow_redirects=False)).status == 403
    out = await client.post("/panel/logout", data={"csrf": csrf}, allow_redirects=False)
    assert (out.status, out.headers["Location"]) == (303, "/panel/login")
    assert (await client.get("/panel/", allow_redirects=False)).status == 303
    assert [e.action for e in await store.audit_entries()][-1] == "panel.logout"


async def test_an_idle_session_ends(env):
    client, _, store, clock = env
    await log_in(client)
    clock.now += 31 * 60
    response = await client.get("/panel/", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/panel/login")
    last = (await store.audit_entries())[-1]
    assert (last.action, last.detail) == ("panel.session.expired", "idle")


async def test_admin_logs_in_with_a_second_step(env):
    client, services, store, clock = env
    made = await services.users.add(ADMIN, "root", "admin", PASSWORD)
    totp = pyotp.TOTP(pyotp.parse_uri(made.totp_uri).secret)
    first = await log_in(client, "root")
    assert (first.status, first.headers["Location"]) == (303, "/panel/login/totp")
    assert (await client.get("/panel/", allow_redirects=False)).status == 303  # not yet
    page = await (await client.get("/panel/login/totp")).text()
    assert 'autocomplete="one-time-code"' in page and "<script" not in page
    bad = await client.post("/panel/login/totp", data={"code": "12345x",
                                                       "csrf": hidden_csrf(page)})
    assert bad.status == 401 and "Wrong or already used code" in await bad.text()
    page = await bad.text()
    done = await client.post("/panel/login/totp", allow_redirects=False, data={
        "code": totp.at(clock.now), "csrf": hidden_csrf(page)})
    assert (done.status, done.headers["Location"]) == (303, "/panel/")
    assert (await (await client.get("/panel/")).text()).startswith("home of user:root (admin)")
    assert [e.action for e in await store.audit_entries()][-1] == "panel.login"


async def test_language_from_cookie_or_accept_language(env):
    client, *_ = env
    page = await (await client.get("/panel/login", headers={
        "Accept-Language": "de-DE, pl;q=0.8, en;q=0.5"})).text()
    assert "Logowanie" in page and 'lang="pl"' in page
    client.session.cookie_jar.update_cookies({"lang": "en"})
    page = await (await client.get("/panel/login", headers={"Accept-Language": "pl"})).text()
    assert "Log in" in page and 'lang="en"' in page
    await log_in(client)
    assert (await (await client.get("/panel/")).text()).endswith("lang=en")
