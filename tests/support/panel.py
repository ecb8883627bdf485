"""The panel in tests, before (and besides) the real session middleware: a test-only
middleware that logs a request in as the user its `X-Test-User: actor:role` header names,
with a fixed CSRF token it checks on every POST under /panel/, and the language from the
cookie POST /panel/language sets. Plus a seeded store: the "shop" widget with a registered
clause, a lead for a known number with a finished attempt and a recording."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import argon2
import pyotp

from aiohttp import web

from callengine import crypto
from callengine.access import Principal, Role
from callengine.flow import Acceptance, Answer, Outcome, Result, Strategy
from callengine.model import Agent, Consent, Lead, widget_settings_from_input
from callengine.recordings import RecordingVault
from callengine.services import Services
from callengine.services.clauses import text_sha256
from callengine.services.users import Users
from callengine.storage import KeyStore, Store
from callengine.web import WebDeps, make_app
from callengine.web.panel.context import CSRF_TOKEN, LANGUAGE, PRINCIPAL
from tests.support.engine import DATA_KEY
from tests.support.recordings import seed_recording, two_tones

ADMIN_TOKEN = "admin-token-0123456789abcdef"
USER_HEADER = "X-Test-User"
CSRF = "test-csrf-0123456789"
NUMBER = "+48601234567"  # the seeded lead's number: no page a viewer gets may hold it
NUMBER_FORMS = ("601234567", "601 234 567", "601-234-567", "%2B48601234567")
RECORDING_S = 3.0
RATE = 8000
CLAUSE = ("Shop Ltd. is the controller of your data; we use your number only to call you"
          " back.\nDetails: the privacy policy.")
PASSWORDS = {role: f"a long {role} password" for role in ("admin", "supervisor", "agent",
                                                            "viewer")}
ROLES = {"admin": Role.ADMIN, "supervisor": Role.SUPERVISOR, "agent": Role.AGENT,
         "viewer": Role.VIEWER}


def user_headers(role: str) -> dict[str, str]:
    return {USER_HEADER: f"{role}-user:{role}"}


@web.middleware
async def test_session(request: web.Request, handler):
    """Tests only: the header's user, the fixed CSRF token (checked on POST), the language."""
    if request.path.startswith("/panel") and not request.path.startswith("/panel/static/"):
        actor, _, role = request.headers.get(USER_HEADER, "").partition(":")
        if role not in ROLES:
            return web.Response(status=401, text="no test user")
        request[PRINCIPAL] = Principal(actor, ROLES[role])
        request[CSRF_TOKEN] = CSRF
        request[LANGUAGE] = request.cookies.get("panel_language", "en")
        if request.method == "POST":
            data = await request.post()
            if data.get("csrf") != CSRF:
                return web.Response(status=403, text="bad csrf")
    return await handler(request)


async def logout(request: web.Request) -> web.Response:
    return web.Response(text="logged out")


def test_auth_routes(app: web.Application) -> None:
    """Stands in for the session module's `add_auth_routes` (logout only)."""
    app.router.add_post("/panel/logout", logout)


@dataclass
class Panel:
    store: Store
    services: Services
    lead: Lead
    recording_id: str
    vault_dir: Path
    app: web.Application
    totp_secret: str = ""  # the admin's, once add_role_users made the accounts


@asynccontextmanager
async def seeded_panel(tmp_path: Path) -> AsyncIterator[Panel]:
    private, public = crypto.generate_recipient_keypair()
    (tmp_path / "recordings").mkdir(exist_ok=True)
    async with Store.open(tmp_path / "p.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        vault = RecordingVault(tmp_path / "recordings", keystore, [private])
        now = time.time()
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"], "challenge": "off",
             "duplicate_window_s": 0}), now)
        await store.put_clause({
            "widget_id": "shop", "language": "en", "version": "2026-12", "text": CLAUSE,
            "sha256": text_sha256(CLAUSE), "privacy_url": "https://shop.example/privacy",
            "notice_version": None, "notice_text": None, "created_at": now})
        lead = await store.create_lead(
            widget, phone_e164=NUMBER, phone_region="PL", phone_kind="mobile", name="Anna",
            email="anna@example.com", now=now - 600,
            consent=Consent(False, True, "2026-12", clause_sha256=text_sha256(CLAUSE),
                            clause_language="en", at=now - 600,
                            origin="https://shop.example"))
        attempt = await store.start_attempt(lead.id, now - 590)
        recording_id = await seed_recording(store, vault, attempt, public,
                                            two_tones(RECORDING_S, RATE), sample_rate=RATE,
                                            started_at=now - 575)
        await store.finish_attempt(attempt, Result(
            Outcome.CONNECTED, cause="normal clearing", q850=16, agent="PJSIP/agent1",
            agent_ring_s=4.0, visitor_ring_s=6.5, talk_s=RECORDING_S, connected=True,
            acceptances=(Acceptance("PJSIP/agent1", Answer.ACCEPTED, 5.25),)),
            now - 560, retry_at=None)
        services = Services(store, vault=vault)
        app = make_app(WebDeps(services, ADMIN_TOKEN), panel_middlewares=[test_session],
                       panel_routes=[test_auth_routes])
        yield Panel(store, services, await store.get_lead(lead.id), recording_id,
                    tmp_path / "recordings", app)


def holds_number(data: bytes) -> list[str]:
    """Which spellings of the seeded number the bytes hold (none, for a masked page)."""
    text = data.decode("utf-8", "replace")
    return [form for form in NUMBER_FORMS if form in text]


async def add_role_users(services: Services) -> str:
    """An account per role, "<role>-user" with PASSWORDS[role] (hashed cheaply: tests log in
    often; a hash carries its own cost, so the panel checks it as cheaply); the admin's TOTP
    secret is returned (an admin must have one)."""
    users = Users(services.context, hasher=argon2.PasswordHasher(
        time_cost=1, memory_cost=8 * 1024, parallelism=1, type=argon2.Type.ID))
    secret = ""
    for role, password in PASSWORDS.items():
        made = await users.add(Principal("setup", Role.ADMIN), f"{role}-user", role, password)
        if made.totp_uri:
            secret = parse_qs(urlsplit(made.totp_uri).query)["secret"][0]
    return secret


def real_login_app(panel: Panel) -> web.Application:
    """The panel as the engine serves it: make_app's own session middleware and login routes
    (cookies not Secure: the tests' server is plain HTTP on loopback)."""
    return make_app(WebDeps(panel.services, ADMIN_TOKEN, panel_secure_cookies=False))


async def log_in(page: Any, origin: str, role: str, totp_secret: str) -> None:
    """Through the login form as a person would (and the TOTP form, for the admin)."""
    await page.goto(f"{origin}/panel/login")
    await page.fill("#username", f"{role}-user")
    await page.fill("#password", PASSWORDS[role])
    await page.click("form[action='/panel/login'] button[type=submit]")
    if role == "admin":
        await page.wait_for_url(re.compile(r".*/panel/login/totp$"))
        await page.fill("#code", pyotp.TOTP(totp_secret).now())
        await page.click("form[action='/panel/login/totp'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/panel/leads$"))
