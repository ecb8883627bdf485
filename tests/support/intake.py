"""A lead left in the intake journal only: committed by a Store whose process dies before the
mover takes it into the store, as an engine killed right after a visitor's request."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.engine import DATA_KEY, REPO


def journal_lead_and_die(database: Path, widget_id: str, **lead) -> str:
    """Journal one lead (create_lead's keywords, `now` aside) for the widget, in a process that
    then ends at once; returns the lead's id."""
    script = textwrap.dedent(f"""
        import asyncio, os, time
        from callengine.model import Consent
        from callengine.storage import Store
        async def main():
            async with Store.open({str(database)!r}, {DATA_KEY!r}) as store:
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
