"""People who log in to the panel: accounts with a role (added, listed, disabled, reset by an
admin: CONFIGURE, audited), and logins that make sessions.

- Passwords: argon2id (argon2-cffi's RFC 9106 defaults: 64 MiB, 3 passes), hashed and checked
  in two worker threads of their own (memory-hard on purpose: never on the event loop). An
  unknown name costs the same check against a dummy hash, and gets a wrong password's answer.
- Throttle: 5 failures of one account name (known or not) within 15 minutes lock it for 15
  minutes; 20 failures from one client address (its keyed hash) lock that client as long.
- Second factor: TOTP (RFC 6238, 30-s steps, ±1 step of drift); required of every admin and
  of anyone who enrolled; a code's step is accepted once (a replay is refused).
- Sessions: 32 random bytes (only their SHA-256 kept), ending after 30 minutes idle or 12 hours
  in all; a CSRF token derived from the session token (never stored). A password right for a
  user with a second factor makes a pending session (5 minutes) that only the code completes.
- Audited: login, failed login (with the client's keyed hash, never the address), lockout,
  logout, session expiry, and each change of an account. No password or code in any of it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import argon2
import pyotp

from callengine.access import (
    USER_ACTOR,
    Permission,
    Principal,
    Role,
    UserAccount,
    require,
    token_hash,
)
from callengine.errors import Conflict, InvalidInput, NotFound
from callengine.model import check_name
from callengine.services.base import Context, Service

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is a denial of service
TOTP_STEP_S = 30
TOTP_WINDOW = 1  # steps either side of now (clock drift)
TOTP_ISSUER = "callengine"
HASHES_AT_ONCE = 2
T = TypeVar("T")
ANONYMOUS = Principal("anonymous", Role.VIEWER)  # the actor of a failed login of no account


class LoginFailed(Exception):
    """The name or the password is wrong (the same answer for both), or the account is
    disabled; `reason` is for the audit log only, never for the person logging in."""

    def __init__(self, reason: str = "bad-credentials"):
        super().__init__("wrong user name or password")
        self.reason = reason


class LoginLocked(Exception):
    def __init__(self, until: float, which: str):
        super().__init__("too many failed logins: try again later")
        self.until = until
        self.which = which  # "account" or "client"


class TotpRequired(Exception):
    """The password was right; the one-time code is needed to finish (the pending token)."""

    def __init__(self, pending: str):
        super().__init__("the one-time code from the authenticator app is required")
        self.pending = pending


class TotpInvalid(Exception):
    def __init__(self) -> None:
        super().__init__("wrong or already used one-time code")


class TotpNotEnrolled(Exception):
    """An admin without a second factor may not log in to the panel (`user totp NAME`)."""

    def __init__(self) -> None:
        super().__init__("administrators need a second factor: run `callengine user totp NAME`")


class Login(NamedTuple):
    """(session token, principal, CSRF token): what a login gives; the tokens never in repr."""

    token: str  # the session cookie's value
    principal: Principal
    csrf: str

    def __repr__(self) -> str:
        return f"Login(principal={self.principal!r})"


@dataclass(frozen=True)
class NewUser:
    username: str
    role: Role
    totp_uri: str | None = field(default=None, repr=False)  # shown once, to enrol the app


def csrf_for(token: str) -> str:
    """A session's CSRF token: derived from the session token, so nothing more is kept (and
    the stored token hash gives nothing of it)."""
    return hmac.new(token.encode(), b"callengine-panel-csrf", hashlib.sha256).hexdigest()


def check_csrf(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _hasher() -> argon2.PasswordHasher:
    return argon2.PasswordHasher(type=argon2.Type.ID)


class Users(Service):
    """Named accounts and their sessions (see the module's doc)."""

    def __init__(self, context: Context, hasher: argon2.PasswordHasher | None = None):
        super().__init__(context)
        self.policy = context.login_policy
        self._hasher = hasher or _hasher()
        self._dummy: str | None = None  # a hash to check unknown names against

    # ---- accounts ---------------------------------------------------------------------

    async def add(self, who: Principal, username: Any, role: Any, password: str, *,
                  totp: bool | None = None) -> NewUser:
        """totp: enrol a second factor (None: for an admin); the otpauth URI is returned once."""
        require(who, Permission.CONFIGURE)
        name = check_name("username", username)
        parsed = _role(role)
        hashed = await self._hash(_check_password(password))
        enrol = parsed is Role.ADMIN if totp is None else totp
        secret = pyotp.random_base32() if enrol else None
        await self.store.add_user(name, parsed, hashed, secret, self.ctx.clock())
        await self.ctx.audit(who, "users.add", f"user:{name}",
                             parsed.value + (" totp" if secret else ""))
        return NewUser(name, parsed, _uri(name, secret) if secret else None)

    async def list(self, who: Principal) -> list[dict[str, Any]]:
        """Names, roles, second factor yes/no, when made, disabled, last logged in; never a
        hash or a secret."""
        require(who, Permission.CONFIGURE)
        return [{"username": u.username, "role": u.role.value, "totp": u.totp_secret is not None,
                 "created_at": u.created_at, "disabled_at": u.disabled_at,
                 "last_login_at": u.last_login_at} for u in await self.store.list_users()]

    async def disable(self, who: Principal, username: str) -> None:
        """The account can't log in; its sessions end now. Not one's own (the CLI can)."""
        require(who, Permission.CONFIGURE)
        if who.actor == USER_ACTOR + username:
            raise Conflict("you can't disable your own account: ask another administrator")
        await self.store.update_user(username, disabled_at=self.ctx.clock())
        await self.ctx.audit(who, "users.disable", f"user:{username}", "")

    async def enable(self, who: Principal, username: str) -> None:
        require(who, Permission.CONFIGURE)
        await self.store.update_user(username, enable=True)
        await self.ctx.audit(who, "users.enable", f"user:{username}", "")

    async def reset(self, who: Principal, username: str, password: str) -> None:
        """A new password (recovery): the lockout is cleared and every session ends."""
        require(who, Permission.CONFIGURE)
        hashed = await self._hash(_check_password(password))
        await self.store.update_user(username, password_hash=hashed)
        await self.ctx.audit(who, "users.reset", f"user:{username}", "password")

    async def reset_totp(self, who: Principal, username: str, *, remove: bool = False
                         ) -> str | None:
        """A new TOTP secret (its otpauth URI, shown once), or none (`remove`: not for an
        admin, who must have one); every session of the user ends."""
        require(who, Permission.CONFIGURE)
        user = await self.store.get_user(username)
        if user is None:
            raise NotFound("user", username)
        if remove:
            if user.role is Role.ADMIN:
                raise InvalidInput("totp", "an administrator must keep a second factor")
            await self.store.update_user(username, clear_totp=True)
            await self.ctx.audit(who, "users.totp", f"user:{username}", "removed")
            return None
        secret = pyotp.random_base32()
        await self.store.update_user(username, totp_secret=secret)
        await self.ctx.audit(who, "users.totp", f"user:{username}", "enrolled")
        return _uri(username, secret)

    async def change_password(self, who: Principal, current: Any, new: Any,
                              client: str | None = None) -> None:
        """A panel user's own new password, their current one checked (a wrong one counts
        as a failed login towards the lockout); every session of theirs ends, this one too."""
        username = who.actor.removeprefix(USER_ACTOR) if who.actor.startswith(USER_ACTOR) \
            else None
        user = await self.store.get_user(username) if username else None
        if user is None:
            raise InvalidInput("user", "only a panel user changes their own password here")
        now = self.ctx.clock()
        if not await self._password_ok(user, current):
            await self._failed(user, user.username, client, now, "bad-current-password")
            raise InvalidInput("current", "this is not your current password")
        hashed = await self._hash(_check_password(new))
        await self.store.update_user(user.username, password_hash=hashed)
        await self.ctx.audit(who, "users.password", f"user:{user.username}", "changed")

    # ---- logins and sessions ----------------------------------------------------------

    async def login(self, username: str, password: str, totp_code: str | None,
                    client: str | None, now: float | None = None) -> Login:
        """A session for the right name and password (and code, where one is needed), or
        LoginFailed (the same for an unknown name and a wrong password), LoginLocked,
        TotpRequired (with a pending token for `login_totp`), TotpInvalid, TotpNotEnrolled."""
        now = self.ctx.clock() if now is None else now
        await self._expire(now)
        username = username.strip().lower() if isinstance(username, str) else ""
        locked = await self.store.login_locked(username, client, now)
        if locked is not None:
            user = await self.store.get_user(username)
            await self._audit_failure(user, username, client, now, f"locked-{locked[0]}")
            raise LoginLocked(locked[1], locked[0])
        user = await self.store.get_user(username)
        if not await self._password_ok(user, password):
            await self._failed(user, username, client, now, "bad-credentials")
            raise LoginFailed()
        assert user is not None
        if user.disabled_at is not None:
            await self._audit_failure(user, username, client, now, "disabled")
            raise LoginFailed("disabled")
        if user.totp_secret is None and user.role is Role.ADMIN:
            await self._audit_failure(user, username, client, now, "totp-not-enrolled")
            raise TotpNotEnrolled()
        if user.totp_secret is not None:
            if not totp_code:
                pending = secrets.token_urlsafe(32)
                await self.store.add_session(token_hash(pending), user.username, now,
                                             pending=True)
                raise TotpRequired(pending)
            if not await self._totp_ok(user, totp_code, now):
                await self._failed(user, username, client, now, "totp-invalid")
                raise TotpInvalid()
        return await self._start(user, client, now)

    async def login_totp(self, pending: str, totp_code: str, client: str | None,
                         now: float | None = None) -> Login:
        """The second step: the code for a pending session (TotpInvalid, LoginLocked; an
        unknown or expired pending token: LoginFailed)."""
        now = self.ctx.clock() if now is None else now
        session = await self.store.get_session(token_hash(pending))
        if (session is None or not session.pending or session.disabled
                or now - session.created_at > self.policy.pending_timeout_s):
            if session is not None:
                await self.store.end_session(token_hash(pending))
            raise LoginFailed("pending-expired")
        user = await self.store.get_user(session.username)
        assert user is not None
        locked = await self.store.login_locked(user.username, client, now)
        if locked is not None:
            await self.store.end_session(token_hash(pending))
            await self._audit_failure(user, user.username, client, now, f"locked-{locked[0]}")
            raise LoginLocked(locked[1], locked[0])
        if not await self._totp_ok(user, totp_code, now):
            await self._failed(user, user.username, client, now, "totp-invalid")
            if await self.store.login_locked(user.username, client, now) is not None:
                await self.store.end_session(token_hash(pending))
            raise TotpInvalid()
        return await self._start(user, client, now, replaces=token_hash(pending))

    async def session(self, token: str | None, now: float | None = None
                      ) -> tuple[Principal, str] | None:
        """The principal and CSRF token of a live session (its last-seen moved on), or None:
        no such session, a pending one, or one that just ended (idle, too old, or its account
        disabled: audited)."""
        if not token:
            return None
        now = self.ctx.clock() if now is None else now
        hashed = token_hash(token)
        found = await self.store.get_session(hashed)
        if found is None or found.pending:
            return None
        principal = Principal(USER_ACTOR + found.username, found.role)
        why = ("disabled" if found.disabled else
               "idle" if now - found.last_seen > self.policy.idle_timeout_s else
               "absolute" if now - found.created_at > self.policy.absolute_timeout_s else None)
        if why is not None:
            if await self.store.end_session(hashed):
                await self.store.audit(principal, "panel.session.expired",
                                       f"user:{found.username}", why, now)
            return None
        if now - found.last_seen >= self.policy.touch_every_s:
            await self.store.touch_session(hashed, now)
        return principal, csrf_for(token)

    async def logout(self, token: str | None, now: float | None = None) -> bool:
        """End the session (True if there was one: audited)."""
        if not token:
            return False
        now = self.ctx.clock() if now is None else now
        hashed = token_hash(token)
        found = await self.store.get_session(hashed)
        if found is None or not await self.store.end_session(hashed):
            return False
        if not found.pending:
            await self.store.audit(Principal(USER_ACTOR + found.username, found.role),
                                   "panel.logout", f"user:{found.username}", "", now)
        return True

    # ---- inside ------------------------------------------------------------------------

    async def _start(self, user: UserAccount, client: str | None, now: float, *,
                     replaces: str | None = None) -> Login:
        token = secrets.token_urlsafe(32)
        await self.store.add_session(token_hash(token), user.username, now, replaces=replaces)
        await self.store.login_succeeded(user.username)
        await self.store.audit(user.principal, "panel.login", f"user:{user.username}",
                               _detail(self.store, client, "totp" if user.totp_secret else
                                       "password"), now)
        return Login(token, user.principal, csrf_for(token))

    async def _failed(self, user: UserAccount | None, username: str, client: str | None,
                      now: float, reason: str) -> None:
        p = self.policy
        locked = await self.store.login_failed(
            username, client, now, account_limit=p.max_failures,
            client_limit=p.client_max_failures, window_s=p.failure_window_s,
            lockout_s=p.lockout_s)
        await self._audit_failure(user, username, client, now, reason)
        for which in locked:
            await self.store.audit(user.principal if user else ANONYMOUS, "panel.lockout",
                                   _target(user), _detail(self.store, client, which), now)

    async def _audit_failure(self, user: UserAccount | None, username: str,
                             client: str | None, now: float, reason: str) -> None:
        await self.store.audit(user.principal if user else ANONYMOUS, "panel.login.failed",
                               _target(user), _detail(self.store, client, reason), now)

    async def _expire(self, now: float) -> None:
        """Sessions nobody came back to end here (audited as expired, "unused")."""
        p = self.policy
        for username in await self.store.end_stale_sessions(
                now - p.idle_timeout_s, now - max(p.absolute_timeout_s, p.pending_timeout_s)):
            user = await self.store.get_user(username)
            role = user.role if user else Role.VIEWER
            await self.store.audit(Principal(USER_ACTOR + username, role),
                                   "panel.session.expired", f"user:{username}", "unused", now)

    async def _hash(self, password: str) -> str:
        return await _off_loop(self._hasher.hash, password)

    async def _password_ok(self, user: UserAccount | None, password: Any) -> bool:
        if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
            return False
        if user is None:
            if self._dummy is None:
                self._dummy = await self._hash(secrets.token_urlsafe(16))
            stored = self._dummy
        else:
            stored = user.password_hash

        def verify() -> bool:
            try:
                return self._hasher.verify(stored, password)
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

        return await _off_loop(verify) and user is not None

    async def _totp_ok(self, user: UserAccount, code: Any, now: float) -> bool:
        if not isinstance(code, str):
            return False
        code = code.strip().replace(" ", "")
        if not (code.isdigit() and len(code) == 6) or user.totp_secret is None:
            return False
        totp = pyotp.TOTP(user.totp_secret, interval=TOTP_STEP_S)
        current = int(now // TOTP_STEP_S)
        for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return await self.store.use_totp_step(user.username, step)
        return False


# The hashes' own threads, at most HASHES_AT_ONCE (64 MiB each): a flood of logins neither
# blocks the event loop nor takes the default executor's threads (the audit anchor's writes).
_HASHING = concurrent.futures.ThreadPoolExecutor(HASHES_AT_ONCE, thread_name_prefix="argon2")


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, fn, *args)


def _role(role: Any) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput("role", "must be admin, supervisor, agent or viewer") from None


def _check_password(password: Any) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password", f"use at most {MAX_PASSWORD} characters")
    return password


def _uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret, interval=TOTP_STEP_S).provisioning_uri(name=username,
                                                                     issuer_name=TOTP_ISSUER)


def _target(user: UserAccount | None) -> str:
    # An unknown name is not written: it may be a password typed in the wrong field.
    return f"user:{user.username}" if user else "user:(unknown)"


def _detail(store: Any, client: str | None, what: str) -> str:
    """What the audit entry says of a login: the reason, and the client's keyed hash."""
    hashed = store.client_hash(client)
    return f"{what} client:{hashed}" if hashed else what
