"""The panel's account pages: the admin adds users (an admin's second factor shown once as a
QR code and its secret), refused fields shown beside them, disables, enables and sets a new
password; each user changes their own password, their sessions ending (the real login)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.access import Principal, Role
from callengine.errors import Conflict
from tests.support.panel import (
    CSRF,
    PASSWORDS,
    add_role_users,
    real_login_app,
    user_headers,
)

ADMIN = Principal("ops", Role.ADMIN)


async def _actions(panel) -> list[str]:
    return [e.action for e in await panel.store.audit_entries()]


async def test_the_admin_adds_a_supervisor_and_an_admin_with_its_qr_code(client, panel):
    h = user_headers("admin")
    made = await client.post("/panel/users", data={
        "csrf": CSRF, "username": "sam", "role": "supervisor",
        "password": "a long enough password"}, headers=h)
    html = await made.text()
    assert made.status == 200 and "sam" in html and "<svg" not in html  # no second factor
    made = await client.post("/panel/users", data={
        "csrf": CSRF, "username": "ada", "role": "admin",
        "password": "another long password"}, headers=h)
    html = await made.text()
    assert made.status == 200 and re.search(r'data-part="totp-qr"><svg ', html)
    secret = re.search(r'data-part="totp-secret">([A-Z2-7]+)<', html).group(1)
    listed = await (await client.get("/panel/users", headers=h)).text()
    assert re.search(r'data-user="ada"><td>ada</td><td>administrator</td><td>yes', listed)
    assert re.search(r'data-user="sam"><td>sam</td><td>supervisor</td><td>no', listed)
    assert secret not in listed  # shown once
    # the secret shown is the account's: a code from it logs ada in
    login = panel.services.users
    try:
        await login.login("ada", "another long password", None, None)
    except Exception as pending:  # TotpRequired
        session = await login.login_totp(pending.pending, pyotp.TOTP(secret).now(), None)
    assert session.principal.actor == "user:ada"
    assert (await _actions(panel))[:2] == ["users.add", "users.add"]


async def test_a_refused_user_form_keeps_what_was_typed_but_never_the_password(client, panel):
    h = user_headers("admin")
    bad = await client.post("/panel/users", data={
        "csrf": CSRF, "username": "tom", "role": "agent", "password": "short"}, headers=h)
    html = await bad.text()
    assert bad.status == 422
    assert re.search(r'id="user-password-error" role="alert">[^<]*12', html)
    assert 'value="tom"' in html and "short" not in html
    assert re.search(r'<option value="agent" selected>', html)
    taken = await client.post("/panel/users", data={
        "csrf": CSRF, "username": "tom", "role": "agent", "password": "a long enough one"},
        headers=h)
    assert taken.status == 200
    again = await client.post("/panel/users", data={
        "csrf": CSRF, "username": "tom", "role": "agent", "password": "a long enough one"},
        headers=h)
    assert again.status == 409 and 'class="form-error" role="alert"' in await again.text()


async def test_the_admin_disables_enables_and_resets_a_user(client, panel):
    h = user_headers("admin")
    await panel.services.users.add(ADMIN, "sam", "supervisor", "a long enough password")
    done = await client.post("/panel/users/enabled", data={
        "csrf": CSRF, "username": "sam", "enabled": "no"}, headers=h)
    assert done.status == 200 and re.search(
        r'data-user="sam">.*?<td>disabled</td>', await done.text(), re.S)
    await client.post("/panel/users/enabled", data={
        "csrf": CSRF, "username": "sam", "enabled": "yes"}, headers=h)
    short = await client.post("/panel/users/password", data={
        "csrf": CSRF, "username": "sam", "password": "x"}, headers=h)
    assert short.status == 422 and 'id="reset-password-error"' in await short.text()
    await client.post("/panel/users/password", data={
        "csrf": CSRF, "username": "sam", "password": "the new long password"}, headers=h)
    login = await panel.services.users.login("sam", "the new long password", None, None)
    assert login.principal.actor == "user:sam"
    assert [a for a in await _actions(panel) if a.startswith("users.")] == [
        "users.add", "users.disable", "users.enable", "users.reset"]


async def test_only_an_admin_manages_users(client, panel):
    for role in ("supervisor", "agent", "viewer"):
        h = user_headers(role)
        assert (await client.get("/panel/users", headers=h)).status == 403
        for path, data in (("/panel/users", {"username": "eve", "role": "admin",
                                             "password": "a long enough password"}),
                           ("/panel/users/enabled", {"username": "x", "enabled": "no"}),
                           ("/panel/users/password", {"username": "x",
                                                      "password": "a long enough password"}),
                           ("/panel/users/totp", {"username": "x"})):
            response = await client.post(path, data={"csrf": CSRF, **data}, headers=h)
            assert response.status == 403, (role, path)
    assert await _actions(panel) == []


async def test_an_admin_cannot_disable_their_own_account(panel):
    await panel.services.users.add(ADMIN, "ada", "admin", "a long enough password")
    with pytest.raises(Conflict, match="your own account"):
        await panel.services.users.disable(Principal("user:ada", Role.ADMIN), "ada")
    await panel.services.users.disable(Principal("user:bob", Role.ADMIN), "ada")


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


async def test_a_user_changes_their_own_password_and_logs_in_again(panel):
    await add_role_users(panel.services)
    async with TestClient(TestServer(real_login_app(panel))) as client:
        login = await (await client.get("/panel/login")).text()
        await client.post("/panel/login", data={"username": "viewer-user", "csrf": _csrf(login),
                                                "password": PASSWORDS["viewer"]})
        page = await (await client.get("/panel/account")).text()
        assert "viewer-user" in page
        token = _csrf(page)
        wrong = await client.post("/panel/account/password", data={
            "csrf": token, "current": "not it", "password": "a new long password",
            "confirm": "a new long password"})
        assert wrong.status == 422 and 'id="password-current-error"' in await wrong.text()
        differ = await client.post("/panel/account/password", data={
            "csrf": token, "current": PASSWORDS["viewer"], "password": "a new long password",
            "confirm": "a new long passw0rd"})
        assert differ.status == 422 and 'id="password-confirm-error"' in await differ.text()
        done = await client.post("/panel/account/password", data={
            "csrf": token, "current": PASSWORDS["viewer"], "password": "a new long password",
            "confirm": "a new long password"}, allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == "/panel/login"
        after = await client.get("/panel/leads", allow_redirects=False)
        assert after.status == 303  # the session ended with the old password
    users = panel.services.users
    assert (await users.login("viewer-user", "a new long password", None, None)).principal
    entries = [(e.action, e.detail) for e in await panel.store.audit_entries()]
    assert ("users.password", "changed") in entries
    assert any(a == "panel.login.failed" and "bad-current-password" in d for a, d in entries)


def test_the_enrolment_uri_carries_the_secret_shown():
    from callengine.web.panel.user_pages import _enrolment
    uri = pyotp.TOTP(pyotp.random_base32()).provisioning_uri(name="ada", issuer_name="callengine")
    shown = _enrolment(uri)
    assert shown["totp_secret"] == parse_qs(urlsplit(uri).query)["secret"][0]
    assert str(shown["totp_qr"]).startswith("<svg") and "<script" not in str(shown["totp_qr"])
