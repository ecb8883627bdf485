"""Store's people: panel accounts (argon2id hashes made by services/users.py; the TOTP secret
encrypted under the field cipher), their sessions (only a token's SHA-256) and the login
throttle, whose keys are HMACs of the account name and of the client's address."""

from __future__ import annotations

import sqlite3

from callengine.access import PanelSession, Role, UserAccount
from callengine.errors import Conflict, NotFound
from callengine.storage.base import StoreBase

_TOTP_CONTEXT = "users.totp_enc:"  # + username: the secret's associated data (no moving it)


class UserQueries(StoreBase):
    def _user(self, row: sqlite3.Row) -> UserAccount:
        secret = self._cipher.decrypt(row["totp_enc"], _TOTP_CONTEXT + row["username"])
        return UserAccount(row["username"], Role(row["role"]), row["created_at"],
                           row["disabled_at"], row["password_hash"], secret,
                           row["totp_last_step"], row["last_login_at"])

    async def add_user(self, username: str, role: Role, password_hash: str,
                       totp_secret: str | None, now: float) -> None:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO users (username, role, password_hash, totp_enc, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (username, role.value, password_hash,
                     self._cipher.encrypt(totp_secret, _TOTP_CONTEXT + username), now))
        except sqlite3.IntegrityError:
            raise Conflict(f"user {username!r} exists already") from None

    async def get_user(self, username: str) -> UserAccount | None:
        row = await self._fetch_one("SELECT * FROM users WHERE username = ?",
                                    (username,))
        return None if row is None else self._user(row)

    async def list_users(self) -> list[UserAccount]:
        return [self._user(row) for row in await self._fetch("SELECT * FROM users ORDER BY username")]

    async def update_user(self, username: str, *, password_hash: str | None = None,
                          totp_secret: str | None = None, clear_totp: bool = False,
                          disabled_at: float | None = None, enable: bool = False) -> None:
        """Change what is given, end the user's sessions and clear its lockout, in one
        transaction; NotFound if there is no such user."""
        sets: list[str] = []
        params: list[object] = []
        if password_hash is not None:
            sets.append("password_hash = ?")
            params.append(password_hash)
        if totp_secret is not None or clear_totp:
            sets += ["totp_enc = ?", "totp_last_step = NULL"]
            params.append(self._cipher.encrypt(totp_secret, _TOTP_CONTEXT + username))
        if disabled_at is not None:
            sets.append("disabled_at = ?")
            params.append(disabled_at)
        elif enable:
            sets.append("disabled_at = NULL")
        async with self._transaction() as db:
            cursor = await db.execute(
                f"UPDATE users SET {', '.join(sets) or 'username = username'}"
                " WHERE username = ?", (*params, username))
            if cursor.rowcount != 1:
                raise NotFound("user", username)
            await db.execute("DELETE FROM user_sessions WHERE username = ?", (username,))
            await db.execute("DELETE FROM login_throttle WHERE key = ?",
                             (self._account_key(username),))

    async def use_totp_step(self, username: str, step: int) -> bool:
        """Accept a code of this 30-s step once: False if it, or a later one, was used."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE users SET totp_last_step = ? WHERE username = ?"
                " AND (totp_last_step IS NULL OR totp_last_step < ?)", (step, username, step))
            return cursor.rowcount == 1

    # ---- sessions ---------------------------------------------------------------------

    async def add_session(self, token_hash: str, username: str, now: float, *,
                          pending: bool = False, replaces: str | None = None) -> None:
        async with self._transaction() as db:
            if replaces is not None:
                await db.execute("DELETE FROM user_sessions WHERE token_hash = ?", (replaces,))
            await db.execute(
                "INSERT INTO user_sessions (token_hash, username, created_at, last_seen,"
                " pending) VALUES (?, ?, ?, ?, ?)",
                (token_hash, username, now, now, int(pending)))
            if not pending:
                await db.execute("UPDATE users SET last_login_at = ? WHERE username = ?",
                                 (now, username))

    async def get_session(self, token_hash: str) -> PanelSession | None:
        row = await self._fetch_one(
            "SELECT s.username, u.role, s.created_at, s.last_seen, s.pending, u.disabled_at"
            " FROM user_sessions s JOIN users u USING (username) WHERE s.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        return PanelSession(row["username"], Role(row["role"]), row["created_at"],
                            row["last_seen"], bool(row["pending"]), row["disabled_at"] is not None)

    async def touch_session(self, token_hash: str, now: float) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE user_sessions SET last_seen = ? WHERE token_hash = ?",
                             (now, token_hash))

    async def end_session(self, token_hash: str) -> bool:
        """True if there was such a session."""
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM user_sessions WHERE token_hash = ?",
                                      (token_hash,))
            return cursor.rowcount == 1

    async def end_stale_sessions(self, seen_before: float, created_before: float
                                 ) -> list[str]:
        """Delete the sessions idle since `seen_before` or made before `created_before`; the
        user names of those that were full sessions (not pending), one per session."""
        async with self._transaction() as db:
            where = "WHERE last_seen < ? OR created_at < ?"
            async with db.execute(f"SELECT username, pending FROM user_sessions {where}",
                                  (seen_before, created_before)) as cursor:
                ended = [row["username"] async for row in cursor if not row["pending"]]
            await db.execute(f"DELETE FROM user_sessions {where}", (seen_before, created_before))
        return ended

    # ---- the login throttle -----------------------------------------------------------

    def _account_key(self, username: str) -> str:
        # keyed: a password typed into the name field is not kept readable
        return "account:" + self._cipher.number_hash("user:" + username)

    def _throttle_keys(self, username: str, client: str | None) -> dict[str, str]:
        keys = {"account": self._account_key(username)}
        client_hash = self._cipher.client_hash(client)
        if client_hash is not None:
            keys["client"] = "client:" + client_hash
        return keys

    async def login_locked(self, username: str, client: str | None, now: float
                           ) -> tuple[str, float] | None:
        """Which lock ("account" or "client") holds a login now, and until when; None: none."""
        keys = self._throttle_keys(username, client)
        found: tuple[str, float] | None = None
        for which, key in keys.items():
            row = await self._fetch_one(
                "SELECT locked_until FROM login_throttle WHERE key = ? AND locked_until > ?",
                (key, now),
            )
            if row is not None and (found is None or row["locked_until"] > found[1]):
                found = (which, row["locked_until"])
        return found

    async def login_failed(self, username: str, client: str | None, now: float, *,
                           account_limit: int, client_limit: int, window_s: float,
                           lockout_s: float) -> list[str]:
        """Count a failed login against the account name (known or not) and the client; a
        count reaching its limit within `window_s` locks it for `lockout_s` (and starts
        afresh). Returns which were locked by this failure."""
        limits = {"account": account_limit, "client": client_limit}
        locked = []
        async with self._transaction() as db:
            for which, key in self._throttle_keys(username, client).items():
                async with db.execute("SELECT failures, first_at, locked_until FROM"
                                      " login_throttle WHERE key = ?", (key,)) as cursor:
                    row = await cursor.fetchone()
                if row is None or row["first_at"] <= now - window_s or (
                        row["locked_until"] is not None and row["locked_until"] <= now):
                    failures, first_at = 1, now
                else:
                    failures, first_at = row["failures"] + 1, row["first_at"]
                until = None
                if failures >= limits[which]:
                    until, failures, first_at = now + lockout_s, 0, now
                    locked.append(which)
                await db.execute(
                    "INSERT INTO login_throttle (key, failures, first_at, locked_until)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                    " failures = excluded.failures, first_at = excluded.first_at,"
                    " locked_until = COALESCE(excluded.locked_until,"
                    "     CASE WHEN login_throttle.locked_until > ?"
                    "     THEN login_throttle.locked_until END)",
                    (key, failures, first_at, until, now))
            await db.execute("DELETE FROM login_throttle WHERE first_at < ? AND"
                             " (locked_until IS NULL OR locked_until <= ?)",
                             (now - window_s, now))
        return locked

    async def login_succeeded(self, username: str) -> None:
        """The account's count of failures starts afresh (the client's does not)."""
        async with self._transaction() as db:
            await db.execute("DELETE FROM login_throttle WHERE key = ?",
                             (self._account_key(username),))
