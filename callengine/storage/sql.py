"""Small helpers the storage modules share to build SQL: id lists in chunks, their `?` marks,
and the URI of a database file."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

CHUNK = 500  # ids bound into one statement at most (SQLite's limit on variables is far above)


def chunks(items: list[str], size: int = CHUNK) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def marks(count: int) -> str:
    """`?,?,?` for an IN list of that many values."""
    return ",".join("?" * count)


def file_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve()))
