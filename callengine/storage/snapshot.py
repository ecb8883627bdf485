"""The database as a backup holds it: a consistent copy of the live store made in memory, with
the leads the intake journal holds that the mover has not taken into the store yet.

The journal is read first, the store copied after, so every lead accepted before the snapshot
is in it: a lead the journal held was either still there (added to the copy as queued, as the
mover would) or moved before the copy began (committed to the store before the journal let go
of it). A lead moved and already purged or erased by the time of the copy is not brought back:
its tombstone is in the copy. A copy of a lead both moved and still journaled is the store's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from callengine.storage.intake import JOURNAL_COLUMNS, MOVE_LEAD, journal_path, move_values
from callengine.storage.sql import chunks, file_uri, marks
from callengine.storage.transactions import sync_transaction


def snapshot(database: Path) -> bytes:
    """The serialized SQLite database (WAL-safe, the live store untouched and not locked)."""
    journaled = _journaled_leads(database)
    source = sqlite3.connect(file_uri(database) + "?mode=ro", uri=True)
    memory = sqlite3.connect(":memory:", isolation_level=None)
    try:
        source.backup(memory)
        _add_journaled(memory, journaled)
        return memory.serialize()
    finally:
        source.close()
        memory.close()


def _journaled_leads(database: Path) -> list[tuple]:
    journal = journal_path(database)
    if not journal.exists():  # no Store has opened this database since journals came
        return []
    db = sqlite3.connect(file_uri(journal) + "?mode=ro", uri=True)
    try:
        return db.execute(f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM new_leads").fetchall()
    finally:
        db.close()


def _add_journaled(memory: sqlite3.Connection, rows: list[tuple]) -> None:
    if not rows:
        return
    ids = [row[0] for row in rows]
    purged = {lead_id for chunk in chunks(ids) for (lead_id,) in memory.execute(
        f"SELECT id FROM lead_tombstones WHERE id IN ({marks(len(chunk))})", chunk)}
    with sync_transaction(memory):
        memory.executemany(MOVE_LEAD, [move_values(row) for row in rows if row[0] not in purged])
