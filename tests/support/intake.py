"""What crashes leave in the intake journal: a lead journaled only (its process died before the
mover took it into the store), or leads moved but not yet forgotten by the journal."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from callengine.storage import JOURNAL_SUFFIX
from tests.support.engine import DATA_KEY, REPO


def count_rows(path, table: str) -> int:
    """Rows in a table of the SQLite file at path (its own connection)."""
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def journal_lead_and_die(database: Path, widget_id: str, *, keystore: Path | None = None,
                         **lead) -> str:
    """Journal one lead (create_lead's keywords, `now` aside) for the widget, in a process that
    then ends at once; returns the lead's id."""
    script = textwrap.dedent(f"""
        import asyncio, os, time
        from callengine.model import Consent
        from callengine.storage import Store
        async def main():
            async with Store.open({str(database)!r}, {DATA_KEY!r},
                                  keystore={str(keystore) if keystore else None!r}) as store:
                widget = await store.get_widget({widget_id!r})
                await store.write_lock.acquire()  # the move can't start
                lead = await store.create_lead(widget, now=time.time(), **{lead!r})
                print(lead.id, flush=True)
                os._exit(0)
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.strip()


def journal_again(database: Path) -> None:
    """What a crash between the move's commit and the journal's delete leaves: the store's
    leads in the journal too."""
    db = sqlite3.connect(database.with_name(database.name + JOURNAL_SUFFIX))
    db.execute(f"ATTACH DATABASE '{database}' AS s")
    columns = ("id, widget_id, subject_id, phone_enc, phone_region, phone_kind, name_enc,"
               " email_enc, consent_marketing, consent_recording, clause_version, created_at")
    db.execute(f"INSERT INTO new_leads ({columns}) SELECT {columns} FROM s.leads")
    db.commit()
    db.close()
