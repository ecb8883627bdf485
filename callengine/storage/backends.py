"""Which backend a configuration names: the SQLite file (`store.database`, the default) or a
PostgreSQL server (`store.url`). The composition roots (app, services facade, purge process,
CLI) open the store only through `open_store`."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any


def open_store(database: Path, data_key: bytes, *, keystore: Path, audit_dir: Path,
               url: str | None = None, password: str = "",
               write_lock: asyncio.Lock | None = None) -> AbstractAsyncContextManager[Any]:
    """The store, open for the `async with` block: PgStore when `url` is set (with its
    password, "" for none), else the SQLite Store at `database`."""
    if url:
        from callengine.storage.pg.store import PgStore  # asyncpg only when configured

        return PgStore.open(url, data_key, keystore=keystore, audit_dir=audit_dir,
                            write_lock=write_lock, password=password or None)
    from callengine.storage.store import Store

    return Store.open(database, data_key, keystore=keystore, write_lock=write_lock,
                      audit_dir=audit_dir)
