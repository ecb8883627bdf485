"""Store's information clauses: versioned per widget and language (docs/consent.md). A version
a lead referenced is never rewritten: the check and the write share one transaction."""

from __future__ import annotations

from typing import Any

from callengine.errors import Conflict, NotFound
from callengine.storage.base import StoreBase

CLAUSE_COLUMNS = ("widget_id", "language", "version", "text", "sha256", "privacy_url",
                  "notice_version", "notice_text", "created_at")


class ClauseQueries(StoreBase):
    async def put_clause(self, clause: dict[str, Any], *, replace: bool = False) -> None:
        """Add a clause version; with replace, an existing version nobody referenced is
        replaced. Conflict if the version exists (without replace) or a lead referenced it."""
        key = (clause["widget_id"], clause["language"], clause["version"])
        await self._settled()  # the journal's leads count as references: move them first
        async with self._transaction() as db:
            async with db.execute(
                "SELECT 1 FROM clauses WHERE widget_id = ? AND language = ? AND version = ?",
                key,
            ) as cursor:
                exists = await cursor.fetchone() is not None
            if exists and not replace:
                raise Conflict(f"clause version {clause['version']!r} exists: a new text is a"
                               " new version")
            if exists and await self._clause_referenced(db, *key):
                raise Conflict(f"clause version {clause['version']!r} was shown to a visitor:"
                               " it can't change (add a new version)")
            await db.execute(
                "INSERT OR REPLACE INTO clauses (" + ", ".join(CLAUSE_COLUMNS) + ") VALUES ("
                + ", ".join("?" for _ in CLAUSE_COLUMNS) + ")",
                tuple(clause[c] for c in CLAUSE_COLUMNS),
            )
        self._config_changed()

    async def delete_clause(self, widget_id: str, language: str, version: str) -> None:
        await self._settled()
        async with self._transaction() as db:
            if await self._clause_referenced(db, widget_id, language, version):
                raise Conflict(f"clause version {version!r} was shown to a visitor: it stays")
            cursor = await db.execute(
                "DELETE FROM clauses WHERE widget_id = ? AND language = ? AND version = ?",
                (widget_id, language, version))
            if cursor.rowcount != 1:
                raise NotFound("clause", f"{widget_id}/{language}/{version}")
        self._config_changed()

    async def _clause_referenced(self, db: Any, widget_id: str, language: str,
                                 version: str) -> bool:
        # Conservative: any lead (or tombstone) of the widget naming the version, whatever
        # language it recorded, keeps every language's row of that version.
        async with db.execute(
            "SELECT 1 FROM leads WHERE widget_id = ? AND clause_version = ? LIMIT 1",
            (widget_id, version),
        ) as cursor:
            if await cursor.fetchone() is not None:
                return True
        async with db.execute(
            "SELECT 1 FROM lead_tombstones WHERE widget_id = ? AND clause_version = ? LIMIT 1",
            (widget_id, version),
        ) as cursor:
            return await cursor.fetchone() is not None

    async def list_clauses(self, widget_id: str, language: str | None = None
                           ) -> list[dict[str, Any]]:
        """The widget's clauses, oldest first (rowid: the order they were added)."""
        sql, args = "SELECT * FROM clauses WHERE widget_id = ?", [widget_id]
        if language is not None:
            sql, args = sql + " AND language = ?", args + [language]
        return [dict(row) for row in await self._fetch(sql + " ORDER BY created_at, rowid", args)]

    async def clause_for_lead(self, widget_id: str, languages: tuple[str, ...], version: str
                              ) -> dict[str, Any] | None:
        """The record of `version` in the first of `languages` that has it; None when the
        widget has no clause records at all; NotFound when it has some but not this one.
        One query, cached (StoreBase._cached): every lead asks."""
        async def read() -> dict[str, Any] | None:
            rows = await self._db.execute_fetchall(
                f"SELECT *, 1 AS found FROM clauses WHERE widget_id = ? AND version = ?"
                f" AND language IN ({', '.join('?' * len(languages))})"
                f" UNION ALL SELECT *, 0 FROM (SELECT * FROM clauses WHERE widget_id = ? LIMIT 1)"
                f" AS first_clause",
                (widget_id, version, *languages, widget_id))
            found = {row["language"]: dict(row) for row in rows if row["found"]}
            for language in languages:
                if language in found:
                    del found[language]["found"]
                    return found[language]
            if rows:
                raise NotFound("clause", f"{widget_id}/{languages[0]}/{version}")
            return None

        return await self._cached(("clause", widget_id, languages, version), read)

    async def get_clause(self, widget_id: str, language: str, version: str) -> dict[str, Any]:
        row = await self._fetch_one(
            "SELECT * FROM clauses WHERE widget_id = ? AND language = ? AND version = ?",
            (widget_id, language, version),
        )
        if row is None:
            raise NotFound("clause", f"{widget_id}/{language}/{version}")
        return dict(row)
