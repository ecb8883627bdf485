"""PgDatabase: an asyncpg pool that the query mixins (storage/queries/) use as they use an
aiosqlite connection: `execute(sql, params)` (awaited, or `async with` for its cursor),
`execute_fetchall`, `executemany`; SQL in SQLite's dialect (dialect.translate).

- **The transaction of the current task.** `transaction()` takes a pooled connection, BEGINs,
  and until it ends every statement of the task that opened it runs on that connection (a
  ContextVar): reads inside a transaction see its writes, as on the one SQLite connection.
  Statements outside a transaction run on any pooled connection, each on its own.
- **Writes one at a time.** Every transaction first takes one advisory lock for the whole
  database (schema.WRITE_LOCK_KEY), as SQLite's BEGIN IMMEDIATE takes its write lock: two
  engines' writes never interleave, so each mixin's read-check-write holds as it does on
  SQLite. Reads take no lock.
- **Errors as the mixins know them.** A constraint violation is raised as
  sqlite3.IntegrityError (the mixins turn it into Conflict): the SQL and its handling are
  written once for both backends.
"""

from __future__ import annotations

import contextvars
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from callengine.errors import InvalidInput
from callengine.storage.pg.dialect import translate
from callengine.storage.pg.schema import WRITE_LOCK_KEY


def _without_nul(sql: str, params: Sequence[Any]) -> Sequence[Any]:
    """PostgreSQL's text holds no NUL character (SQLite's does). A value with one equals no
    stored value, so a read looks it up as a fresh random value, which matches nothing either:
    the answer is SQLite's (a hostile `?lead_id=%00` finds no lead, it is not an error). A
    write of one is refused, as invalid input."""
    if not any(isinstance(p, str) and "\x00" in p for p in params):
        return params
    if not sql.lstrip().upper().startswith("SELECT"):
        raise InvalidInput("text", "a NUL character (U+0000) can't be stored")
    return [f"\x01{uuid.uuid4()}" if isinstance(p, str) and "\x00" in p else p
            for p in params]


class Cursor:
    """The rows of one statement, and how many rows it changed (aiosqlite's cursor's part the
    mixins use)."""

    def __init__(self, rows: list[asyncpg.Record], status: str | None):
        self._rows = rows
        self._next = 0
        # "INSERT 0 1", "UPDATE 3", "DELETE 0", "SELECT 5": the last number is the count
        tail = (status or "").rsplit(" ", 1)[-1]
        self.rowcount = int(tail) if tail.isdigit() else -1

    async def fetchone(self) -> asyncpg.Record | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[asyncpg.Record]:
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest

    def __aiter__(self) -> Cursor:
        return self

    async def __anext__(self) -> asyncpg.Record:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _Statement:
    """What execute() returns: awaitable (the cursor) and an async context manager (the same),
    as aiosqlite's."""

    def __init__(self, database: PgDatabase, sql: str, params: Sequence[Any]):
        self._run = lambda: database._run(sql, params)

    def __await__(self):
        return self._run().__await__()

    async def __aenter__(self) -> Cursor:
        return await self._run()

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class PgDatabase:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        self._current: contextvars.ContextVar[asyncpg.Connection | None] = \
            contextvars.ContextVar("pg_transaction", default=None)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> _Statement:
        return _Statement(self, sql, tuple(params))

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ()
                               ) -> list[asyncpg.Record]:
        return (await self._run(sql, tuple(params)))._rows

    async def executemany(self, sql: str, many: Iterable[Sequence[Any]]) -> None:
        async with self._connection() as conn:
            try:
                await conn.executemany(translate(sql), [tuple(p) for p in many])
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise sqlite3.IntegrityError(str(exc)) from exc

    @asynccontextmanager
    async def transaction(self, *, serialized: bool = True) -> AsyncIterator[PgDatabase]:
        """One transaction for the statements of this task until the block ends: committed at
        its end, rolled back on any exception (cancellation included). serialized=False: this
        transaction takes row locks of its own instead of the write lock (the claiming of
        leads, which must not queue behind every other write of every engine)."""
        if self._current.get() is not None:
            raise RuntimeError("a transaction inside a transaction")
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                if serialized:
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK_KEY)
                token = self._current.set(conn)
                try:
                    yield self
                finally:
                    self._current.reset(token)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        current = self._current.get()
        if current is not None:
            yield current
            return
        async with self.pool.acquire() as conn:
            yield conn

    async def _run(self, sql: str, params: Sequence[Any]) -> Cursor:
        params = _without_nul(sql, params)
        async with self._connection() as conn:
            statement = await conn.prepare(translate(sql))
            try:
                rows = await statement.fetch(*params)
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise sqlite3.IntegrityError(str(exc)) from exc
            return Cursor(rows, statement.get_statusmsg())
