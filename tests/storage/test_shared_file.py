"""Two processes on one SQLite store file (two engines on one host): this process's reads and
writes interleave on its one connection while the other process commits. A read whose statement
stayed open over an await put this process's next write inside the read's snapshot, and once the
other process had committed BEGIN IMMEDIATE failed at once with "database is locked"
(SQLITE_BUSY_SNAPSHOT, no busy wait): engines' calls ended "interrupted: internal error" under
load (tests/engine/test_cluster_asterisk.py)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from callengine.storage import Store
from tests.support.engine import DATA_KEY, add_widget, queue_lead

pytestmark = pytest.mark.sqlite_only  # SQLite's own locking

OTHER_COMMITS = 40
# The other engine: its own process and connection, committing one small write after another.
OTHER_ENGINE = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
for _ in range(int(sys.argv[3])):
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE leads SET updated_at = ? WHERE id = ?", (time.time(), sys.argv[2]))
    db.execute("COMMIT")
    time.sleep(0.001)
"""


async def test_reads_and_writes_interleave_while_another_process_commits(tmp_path):
    path = tmp_path / "callengine.db"
    async with Store.open(path, DATA_KEY) as store:
        widget = await add_widget(store)
        lead = await queue_lead(store, widget)
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", OTHER_ENGINE, str(path), lead.id, str(OTHER_COMMITS))
        rounds = 0

        async def reads() -> None:
            while other.returncode is None:
                await store.get_lead(lead.id)
                await store.attempts_for(lead.id)
                await store.list_agents()

        async def writes() -> None:
            nonlocal rounds
            while other.returncode is None:
                await store.set_progress(lead.id, f"step-{rounds}", False, "attempt", time.time())
                rounds += 1

        try:
            await asyncio.gather(reads(), writes(), other.wait())
        finally:
            if other.returncode is None:
                other.kill()
                await other.wait()
        assert other.returncode == 0  # its commits went through
        assert rounds > 20, rounds  # while ours ran between them
        assert (await store.get_lead(lead.id)).progress == f"step-{rounds - 1}"


async def test_a_read_does_not_see_a_write_still_open_on_the_connection(tmp_path):
    """SQLite shows a connection's uncommitted rows to every read on it. A read while another
    task's transaction is open waits for its end: here it rolls back, so the read must show
    the lead as it was (seen in CI: a lead read as queued again, its attempt then left open
    by the rollback of the engine's cancelled finish_attempt)."""
    async with Store.open(tmp_path / "callengine.db", DATA_KEY) as store:
        widget = await add_widget(store)
        lead = await store.get_lead((await queue_lead(store, widget)).id)  # moved into leads
        inside = asyncio.Event()

        async def write_then_fail() -> None:
            async with store._transaction() as db:
                await db.execute("UPDATE leads SET progress = 'uncommitted' WHERE id = ?",
                                 (lead.id,))
                inside.set()
                await asyncio.sleep(0.2)
                raise RuntimeError("rolled back")

        writer = asyncio.create_task(write_then_fail())
        await inside.wait()
        seen = await store.get_lead(lead.id)
        with pytest.raises(RuntimeError, match="rolled back"):
            await writer
    assert seen.progress != "uncommitted", seen
