"""Panel accounts at the services level, with a real store and a fake clock: argon2id hashes,
one answer for unknown names and wrong passwords, lockout and its end, the client throttle,
TOTP for admins (and no replay), session expiry, logout, and the audit entries of each."""

from __future__ import annotations

import logging
import threading

import argon2
import pyotp
import pytest

from callengine.access import Forbidden, Principal, Role
from callengine.errors import Conflict, InvalidInput, NotFound
from callengine.services import Services
from callengine.services.users import (
    LoginFailed,
    LoginLocked,
    TotpInvalid,
    TotpNotEnrolled,
    TotpRequired,
    Users,
    csrf_for,
)
from callengine.storage import Store
from tests.support.engine import DATA_KEY

ADMIN = Principal("ops", Role.ADMIN)
SUPERVISOR = Principal("sup", Role.SUPERVISOR)
NOW = 1_800_000_010.0  # 10 s into a 30-s TOTP step
PASSWORD = "correct horse battery"
CLIENT = "203.0.113.7"
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1,
                              type=argon2.Type.ID)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def env(tmp_path):
    clock = Clock()
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
        services = Services(store, clock=clock, channel="test")
        services.users = Users(services.context, hasher=CHEAP)
        yield services, store, clock


async def actions(store: Store) -> list[str]:
    return [e.action for e in await store.audit_entries()]


async def test_passwords_are_argon2id_and_never_listed(env):
    services, store, _ = env
    default = Services(store, clock=lambda: NOW).users  # real parameters: RFC 9106 low-memory
    await default.add(ADMIN, "anna", "supervisor", PASSWORD)
    stored = await store.get_user("anna")
    assert stored.password_hash.startswith("$argon2id$")
    assert "m=65536,t=3" in stored.password_hash and PASSWORD not in stored.password_hash
    listed = await services.users.list(ADMIN)
    assert listed == [{"username": "anna", "role": "supervisor", "totp": False,
                       "created_at": NOW, "disabled_at": None, "last_login_at": None}]
    assert "argon2" not in repr(listed) and "argon2" not in repr(stored)
    token, who, csrf = await services.users.login(" Anna", PASSWORD, None, CLIENT)
    assert who == Principal("user:anna", Role.SUPERVISOR) and token != csrf
    assert await services.users.session(token) == (who, csrf)
    assert token not in repr(await services.users.login("anna", PASSWORD, None, CLIENT))


async def test_hashing_runs_in_its_own_threads_off_the_event_loop(env):
    services, _, _ = env
    threads = []

    class Recording(argon2.PasswordHasher):
        def hash(self, password, **kw):
            threads.append(threading.current_thread().name)
            return super().hash(password, **kw)

        def verify(self, stored, password):
            threads.append(threading.current_thread().name)
            return super().verify(stored, password)

    users = Users(services.context, hasher=Recording(time_cost=1, memory_cost=8 * 1024,
                                                       parallelism=1, type=argon2.Type.ID))
    await users.add(ADMIN, "anna", "viewer", PASSWORD)
    await users.login("anna", PASSWORD, None, CLIENT)
    assert len(threads) == 2 and all(t.startswith("argon2") for t in threads)
    assert threading.current_thread().name not in threads


async def test_managing_users_needs_configure_and_is_audited(env):
    services, store, _ = env
    with pytest.raises(Forbidden):
        await services.users.add(SUPERVISOR, "anna", "viewer", PASSWORD)
    with pytest.raises(InvalidInput, match="at least 12"):
        await services.users.add(ADMIN, "anna", "viewer", "short")
    with pytest.raises(InvalidInput, match="role"):
        await services.users.add(ADMIN, "anna", "boss", PASSWORD)
    await services.users.add(ADMIN, "anna", "viewer", PASSWORD)
    with pytest.raises(Conflict):
        await services.users.add(ADMIN, "anna", "viewer", PASSWORD)
    with pytest.raises(NotFound):
        await services.users.disable(ADMIN, "nobody")
    await services.users.disable(ADMIN, "anna")
    await services.users.reset(ADMIN, "anna", "another long password")
    entries = [(e.action, e.target, e.detail) for e in await store.audit_entries()]
    assert entries == [("users.add", "user:anna", "viewer"), ("users.disable", "user:anna", ""),
                       ("users.reset", "user:anna", "password")]


async def test_unknown_user_and_wrong_password_get_the_same_answer(env):
    services, store, _ = env
    await services.users.add(ADMIN, "anna", "viewer", PASSWORD)
    with pytest.raises(LoginFailed) as wrong:
        await services.users.login("anna", "not the password", None, CLIENT)
    with pytest.raises(LoginFailed) as unknown:
        await services.users.login("bob", PASSWORD, None, CLIENT)
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"
    failed = [e for e in await store.audit_entries() if e.action == "panel.login.failed"]
    assert [(e.actor, e.target) for e in failed] == [("user:anna", "user:anna"),
                                                     ("anonymous", "user:(unknown)")]
    client_hash = store.client_hash(CLIENT)
    assert all(e.detail == f"bad-credentials client:{client_hash}" for e in failed)
    assert not any(CLIENT in e.detail or "bob" in e.target for e in failed)


async def test_disabled_account_cannot_log_in_and_its_sessions_end(env):
    services, store, clock = env
    await services.users.add(ADMIN, "anna", "agent", PASSWORD)
    login = await services.users.login("anna", PASSWORD, None, CLIENT)
    await services.users.disable(ADMIN, "anna")
    assert await services.users.session(login.token) is None
    with pytest.raises(LoginFailed, match="wrong user name or password"):
        await services.users.login("anna", PASSWORD, None, CLIENT)
    assert (await store.audit_entries())[-1].detail.startswith("disabled")


async def test_lockout_after_five_failures_and_unlock_after_fifteen_minutes(env):
    services, store, clock = env
    await services.users.add(ADMIN, "anna", "viewer", PASSWORD)
    for i in range(5):
        with pytest.raises(LoginFailed):
            await services.users.login("anna", f"wrong password {i}", None, f"198.51.100.{i}")
        clock.now += 10
    with pytest.raises(LoginLocked) as locked:  # the right password, still locked
        await services.users.login("anna", PASSWORD, None, CLIENT)
    assert locked.value.which == "account"
    assert locked.value.until == pytest.approx(NOW + 40 + 900)
    assert (await actions(store)).count("panel.lockout") == 1
    assert (await store.audit_entries())[-1].detail.startswith("locked-account")
    clock.now = NOW + 40 + 900 + 1
    login = await services.users.login("anna", PASSWORD, None, CLIENT)
    assert login.principal.actor == "user:anna"


async def test_unknown_names_lock_too_so_a_lock_says_nothing_of_existence(env):
    services, _, _ = env
    for _ in range(5):
        with pytest.raises(LoginFailed):
            await services.users.login("ghost", "whatever password", None, None)
    with pytest.raises(LoginLocked):
        await services.users.login("ghost", "whatever password", None, None)


async def test_failures_outside_the_window_do_not_add_up(env):
    services, _, clock = env
    await services.users.add(ADMIN, "anna", "viewer", PASSWORD)
    for _ in range(4):
        with pytest.raises(LoginFailed):
            await services.users.login("anna", "wrong password!", None, CLIENT)
    clock.now += 901
    with pytest.raises(LoginFailed):
        await services.users.login("anna", "wrong password!", None, CLIENT)
    assert (await services.users.login("anna", PASSWORD, None, CLIENT)).token


async def test_one_client_trying_many_names_is_throttled(env):
    services, store, clock = env
    await services.users.add(ADMIN, "anna", "viewer", PASSWORD)
    for i in range(20):
        with pytest.raises(LoginFailed):
            await services.users.login(f"name{i}", "some password", None, CLIENT)
    with pytest.raises(LoginLocked) as locked:
        await services.users.login("anna", PASSWORD, None, CLIENT)
    assert locked.value.which == "client"
    assert (await services.users.login("anna", PASSWORD, None, "192.0.2.1")).token
    lockouts = [e for e in await store.audit_entries() if e.action == "panel.lockout"]
    assert [e.detail for e in lockouts] == [f"client client:{store.client_hash(CLIENT)}"]
    clock.now += 901
    assert (await services.users.login("anna", PASSWORD, None, CLIENT)).token


async def test_admins_need_totp_and_a_code_is_accepted_once(env):
    services, store, clock = env
    made = await services.users.add(ADMIN, "root", "admin", PASSWORD)
    assert made.totp_uri.startswith("otpauth://totp/callengine:root?secret=")
    secret = pyotp.parse_uri(made.totp_uri).secret
    stored = await store.get_user("root")
    assert stored.totp_secret == secret and secret not in repr(stored)
    with pytest.raises(TotpRequired) as required:
        await services.users.login("root", PASSWORD, None, CLIENT)
    code = pyotp.TOTP(secret).at(clock.now)
    with pytest.raises(TotpInvalid):
        await services.users.login_totp(required.value.pending, "000000" if code != "000000"
                                        else "111111", CLIENT)
    login = await services.users.login_totp(required.value.pending, code, CLIENT)
    assert login.principal == Principal("user:root", Role.ADMIN)
    assert await services.users.session(required.value.pending) is None  # pending: gone
    with pytest.raises(TotpInvalid):  # the same code again, in one step: a replay
        await services.users.login("root", PASSWORD, code, CLIENT)
    clock.now += 30
    later = await services.users.login("root", PASSWORD, pyotp.TOTP(secret).at(clock.now),
                                       CLIENT)
    assert later.principal.role is Role.ADMIN
    assert (await actions(store)).count("panel.login") == 2
    assert [e.detail.split()[0] for e in await store.audit_entries()
            if e.action == "panel.login.failed"] == ["totp-invalid", "totp-invalid"]


@pytest.mark.sqlite_only  # reads the SQLite files
async def test_the_totp_secret_is_encrypted_at_rest(env, tmp_path):
    services, store, _ = env
    made = await services.users.add(ADMIN, "root", "admin", PASSWORD)
    secret = pyotp.parse_uri(made.totp_uri).secret
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ce.db*") if p.is_file())
    assert b"root" in raw and secret.encode() not in raw
    assert (await store.get_user("root")).totp_secret == secret


async def test_totp_allows_one_step_of_drift_not_more(env):
    services, _, clock = env
    made = await services.users.add(ADMIN, "root", "admin", PASSWORD)
    totp = pyotp.TOTP(pyotp.parse_uri(made.totp_uri).secret)
    assert await services.users.login("root", PASSWORD, totp.at(clock.now - 30), CLIENT)
    with pytest.raises(TotpInvalid):
        await services.users.login("root", PASSWORD, totp.at(clock.now - 90), CLIENT)


async def test_an_admin_without_totp_is_refused(env):
    services, store, _ = env
    await services.users.add(ADMIN, "root", "admin", PASSWORD, totp=False)
    with pytest.raises(TotpNotEnrolled):
        await services.users.login("root", PASSWORD, None, CLIENT)
    uri = await services.users.reset_totp(ADMIN, "root")
    code = pyotp.TOTP(pyotp.parse_uri(uri).secret).at(NOW)
    with pytest.raises(InvalidInput):
        await services.users.reset_totp(ADMIN, "root", remove=True)
    assert await services.users.login("root", PASSWORD, code, CLIENT)


async def test_session_idle_and_absolute_expiry(env):
    services, store, clock = env
    await services.users.add(ADMIN, "anna", "agent", PASSWORD)
    login = await services.users.login("anna", PASSWORD, None, CLIENT)
    assert await services.users.session(login.token) == (login.principal, login.csrf)
    assert login.csrf == csrf_for(login.token) and login.csrf != login.token
    for _ in range(5):  # in use: every 29 minutes, up to 2 h 25 min
        clock.now += 29 * 60
        assert await services.users.session(login.token) is not None
    clock.now += 31 * 60
    assert await services.users.session(login.token) is None
    assert (await store.audit_entries())[-1].detail == "idle"

    login = await services.users.login("anna", PASSWORD, None, CLIENT)
    start = clock.now
    while clock.now - start < 12 * 3600 - 20 * 60:
        clock.now += 20 * 60
        assert await services.users.session(login.token) is not None
    clock.now = start + 12 * 3600 + 1
    assert await services.users.session(login.token) is None
    assert (await store.audit_entries())[-1].action == "panel.session.expired"
    assert (await store.audit_entries())[-1].detail == "absolute"


async def test_logout_ends_the_session_and_unused_sessions_expire_at_the_next_login(env):
    services, store, clock = env
    await services.users.add(ADMIN, "anna", "agent", PASSWORD)
    first = await services.users.login("anna", PASSWORD, None, CLIENT)
    assert await services.users.logout(first.token)
    assert await services.users.session(first.token) is None
    assert not await services.users.logout(first.token)
    await services.users.login("anna", PASSWORD, None, CLIENT)  # left open
    clock.now += 3600
    await services.users.login("anna", PASSWORD, None, CLIENT)
    assert await actions(store) == ["users.add", "panel.login", "panel.logout", "panel.login",
                                    "panel.session.expired", "panel.login"]
    assert (await store.audit_entries())[4].detail == "unused"


async def test_reset_ends_sessions_and_clears_the_lockout(env):
    services, _, _ = env
    await services.users.add(ADMIN, "anna", "agent", PASSWORD)
    login = await services.users.login("anna", PASSWORD, None, CLIENT)
    for _ in range(5):
        with pytest.raises((LoginFailed, LoginLocked)):
            await services.users.login("anna", "wrong password!", None, None)
    await services.users.reset(ADMIN, "anna", "a brand new password")
    assert await services.users.session(login.token) is None
    assert await services.users.login("anna", "a brand new password", None, None)


async def test_no_password_or_code_in_logs_or_audit(env, caplog):
    services, store, clock = env
    caplog.set_level(logging.DEBUG)
    made = await services.users.add(ADMIN, "root", "admin", PASSWORD)
    secret = pyotp.parse_uri(made.totp_uri).secret
    code = pyotp.TOTP(secret).at(clock.now)
    for attempt in ("wrong password one", PASSWORD):
        with pytest.raises((LoginFailed, TotpRequired)):
            await services.users.login("root", attempt, None, CLIENT)
    login = await services.users.login("root", PASSWORD, code, CLIENT)
    await services.users.logout(login.token)
    text = caplog.text + repr(await store.audit_entries())
    for secret_text in (PASSWORD, "wrong password one", secret, code, login.token, login.csrf,
                        CLIENT):
        assert secret_text not in text
