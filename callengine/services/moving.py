"""Moving a store from SQLite to PostgreSQL (`callengine move-store`, docs/scale-out.md)."""

from __future__ import annotations

from callengine.config import Config, store_url_problems
from callengine.errors import InvalidInput
from callengine.storage.pg.copy import copy_to_postgresql


async def move_store(config: Config, url: str) -> dict[str, int]:
    """Every row of the configured SQLite store copied into the empty PostgreSQL database at
    `url` (its password: the configured store password); rows by table."""
    problems = store_url_problems(url)
    if problems:
        raise InvalidInput("url", problems[0])
    return await copy_to_postgresql(
        config.database, config.data_key, keystore=config.keystore,
        audit_dir=config.audit_directory, url=url, password=config.store_password)
