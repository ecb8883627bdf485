"""The one transaction helper, in both forms: what the body wrote is committed, or rolled back on
any exception (cancellation and interrupts too, also while BEGIN waits), and the connection is
fit for the next transaction either way."""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite
import pytest

from callengine.storage.transactions import sync_transaction, transaction

# The SQLite backend's own machinery (its journal, files and transactions).
pytestmark = pytest.mark.sqlite_only


def _plain(path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    return db


def _values(path) -> list[int]:
    db = sqlite3.connect(path)
    try:
        return [v for (v,) in db.execute("SELECT v FROM t ORDER BY v")]
    finally:
        db.close()


# ---- sync: sqlite3 ---------------------------------------------------------------------------


def test_sync_commits(tmp_path):
    db = _plain(tmp_path / "t.db")
    with sync_transaction(db) as conn:
        assert conn is db and db.in_transaction
        db.execute("INSERT INTO t VALUES (1)")
    assert not db.in_transaction
    assert _values(tmp_path / "t.db") == [1]


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_sync_rolls_back_on_any_exception(tmp_path, error):
    db = _plain(tmp_path / "t.db")
    with pytest.raises(error):
        with sync_transaction(db):
            db.execute("INSERT INTO t VALUES (1)")
            raise error()
    assert not db.in_transaction
    with sync_transaction(db):
        db.execute("INSERT INTO t VALUES (2)")
    assert _values(tmp_path / "t.db") == [2]


def test_sync_begin_that_fails_raises_its_error_and_leaves_no_transaction(tmp_path):
    holder = _plain(tmp_path / "t.db")
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    db = _plain(tmp_path / "t.db")
    db.execute("PRAGMA busy_timeout=0")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        with sync_transaction(db):
            pytest.fail("the body must not run without a transaction")
    holder.execute("ROLLBACK")
    assert not db.in_transaction
    with sync_transaction(db):
        db.execute("INSERT INTO t VALUES (3)")
    assert _values(tmp_path / "t.db") == [3]


# ---- async: aiosqlite ------------------------------------------------------------------------


async def _async(path) -> aiosqlite.Connection:
    _plain(path).close()
    return await aiosqlite.connect(path, isolation_level=None)


async def test_async_commits(tmp_path):
    db = await _async(tmp_path / "t.db")
    try:
        async with transaction(db) as conn:
            assert conn is db and db.in_transaction
            await db.execute("INSERT INTO t VALUES (1)")
        assert not db.in_transaction
    finally:
        await db.close()
    assert _values(tmp_path / "t.db") == [1]


async def test_async_rolls_back_on_error(tmp_path):
    db = await _async(tmp_path / "t.db")
    try:
        with pytest.raises(ValueError):
            async with transaction(db):
                await db.execute("INSERT INTO t VALUES (1)")
                raise ValueError()
        assert not db.in_transaction
        async with transaction(db):
            await db.execute("INSERT INTO t VALUES (2)")
    finally:
        await db.close()
    assert _values(tmp_path / "t.db") == [2]


async def test_async_rolls_back_when_cancelled_in_the_body(tmp_path):
    db = await _async(tmp_path / "t.db")
    inside = asyncio.Event()

    async def writer() -> None:
        async with transaction(db):
            await db.execute("INSERT INTO t VALUES (1)")
            inside.set()
            await asyncio.sleep(60)

    try:
        task = asyncio.create_task(writer())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not db.in_transaction
    finally:
        await db.close()
    assert _values(tmp_path / "t.db") == []


async def test_async_rolls_back_when_cancelled_at_begin(tmp_path):
    """Cancelled while BEGIN waits for another writer: aiosqlite's thread still runs the BEGIN
    once the lock is free, and that transaction must not be left open."""
    holder = _plain(tmp_path / "t.db")
    holder.execute("BEGIN IMMEDIATE")
    db = await _async(tmp_path / "t.db")
    await db.execute("PRAGMA busy_timeout=10000")
    body_ran = False

    async def writer() -> None:
        nonlocal body_ran
        async with transaction(db):
            body_ran = True

    try:
        task = asyncio.create_task(writer())
        await asyncio.sleep(0.2)  # in BEGIN, waiting for the holder
        task.cancel()
        await asyncio.sleep(0.05)
        holder.execute("ROLLBACK")  # now that BEGIN succeeds, in the thread
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not body_ran
        assert not db.in_transaction
        async with transaction(db):
            await db.execute("INSERT INTO t VALUES (4)")
    finally:
        await db.close()
        holder.close()
    assert _values(tmp_path / "t.db") == [4]


async def test_async_begin_that_fails_raises_its_error(tmp_path):
    holder = _plain(tmp_path / "t.db")
    holder.execute("BEGIN IMMEDIATE")
    db = await _async(tmp_path / "t.db")
    await db.execute("PRAGMA busy_timeout=0")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            async with transaction(db):
                pytest.fail("the body must not run without a transaction")
        holder.execute("ROLLBACK")
        assert not db.in_transaction
    finally:
        await db.close()
        holder.close()
