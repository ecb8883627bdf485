"""Store's configuration rows: agents, their groups (ring strategy, order) and widgets."""

from __future__ import annotations

import json
import secrets
import sqlite3

import aiosqlite

from callengine.errors import Conflict, NotFound, WidgetInUse
from callengine.flow import Strategy
from callengine.model import Agent, Group, Widget, WidgetSettings
from callengine.storage.base import StoreBase
from callengine.storage.rows import to_agent, to_group, to_widget


async def _add_members(db: aiosqlite.Connection, group: str, agent_names: list[str]) -> None:
    """The group's members in this order (NotFound for an unknown agent; IntegrityError for
    one listed twice)."""
    for position, agent_name in enumerate(agent_names):
        if not await db.execute_fetchall("SELECT 1 FROM agents WHERE name = ?", (agent_name,)):
            raise NotFound("agent", agent_name)
        await db.execute(
            "INSERT INTO group_members (group_name, agent_name, position) VALUES (?, ?, ?)",
            (group, agent_name, position))


def _listed(kind: str, names: list[str]) -> str:
    """'group sales' or 'groups sales, support'."""
    return f"{kind}{'s' if len(names) > 1 else ''} {', '.join(names)}"


class ConfigurationQueries(StoreBase):
    async def add_agent(self, agent: Agent) -> None:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO agents (name, endpoint, enabled) VALUES (?, ?, ?)",
                    (agent.name, agent.endpoint, int(agent.enabled)),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"agent {agent.name!r} exists already") from None

    async def list_agents(self) -> list[Agent]:
        return [to_agent(row) for row in await self._fetch("SELECT * FROM agents ORDER BY name")]

    async def add_group(
        self, name: str, strategy: Strategy, ring_timeout: int, agent_names: list[str],
        accept_digit: str | None = None, accept_timeout: int = 10,
    ) -> Group:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO agent_groups (name, strategy, ring_timeout, accept_digit,"
                    " accept_timeout) VALUES (?, ?, ?, ?, ?)",
                    (name, strategy.value, ring_timeout, accept_digit, accept_timeout),
                )
                await _add_members(db, name, agent_names)
        except sqlite3.IntegrityError:
            raise Conflict(f"group {name!r} exists already (or an agent is listed twice)") from None
        return await self.get_group(name)

    async def get_group(self, name: str) -> Group:
        row = await self._fetch_one("SELECT * FROM agent_groups WHERE name = ?", (name,))
        if row is None:
            raise NotFound("group", name)
        agents = tuple(to_agent(r) for r in await self._fetch(
            "SELECT a.* FROM group_members m JOIN agents a ON a.name = m.agent_name"
            " WHERE m.group_name = ? ORDER BY m.position",
            (name,),
        ))
        return to_group(row, agents)

    async def list_groups(self) -> list[Group]:
        names = [row["name"] for row in await self._fetch("SELECT name FROM agent_groups ORDER BY name")]
        return [await self.get_group(name) for name in names]

    async def update_agent(self, name: str, endpoint: str | None = None,
                           enabled: bool | None = None, paused: bool | None = None) -> Agent:
        async with self._transaction() as db:
            if paused is not None:
                await db.execute("UPDATE agents SET paused = ? WHERE name = ?",
                                 (int(paused), name))
            if endpoint is not None:
                await db.execute("UPDATE agents SET endpoint = ? WHERE name = ?", (endpoint, name))
            if enabled is not None:
                await db.execute("UPDATE agents SET enabled = ? WHERE name = ?",
                                 (int(enabled), name))
            rows = await db.execute_fetchall("SELECT * FROM agents WHERE name = ?", (name,))
            if not rows:
                raise NotFound("agent", name)
        return to_agent(rows[0])

    async def remove_agent(self, name: str) -> Agent:
        async with self._transaction() as db:
            groups = [row["group_name"] for row in await db.execute_fetchall(
                "SELECT group_name FROM group_members WHERE agent_name = ? ORDER BY group_name",
                (name,))]
            if groups:
                raise Conflict(f"agent {name!r} is in {_listed('group', groups)}:"
                               " take it out first")
            rows = await db.execute_fetchall("SELECT * FROM agents WHERE name = ?", (name,))
            if not rows:
                raise NotFound("agent", name)
            await db.execute("DELETE FROM agents WHERE name = ?", (name,))
        return to_agent(rows[0])

    async def update_group(self, name: str, strategy: Strategy | None = None,
                           ring_timeout: int | None = None,
                           agent_names: list[str] | None = None, *,
                           accept: tuple[str | None, int] | None = None) -> Group:
        """`accept`: the accept digit (None: off) and timeout, set together."""
        async with self._transaction() as db:
            if not await db.execute_fetchall("SELECT 1 FROM agent_groups WHERE name = ?",
                                             (name,)):
                raise NotFound("group", name)
            if strategy is not None:
                await db.execute("UPDATE agent_groups SET strategy = ? WHERE name = ?",
                                 (strategy.value, name))
            if ring_timeout is not None:
                await db.execute("UPDATE agent_groups SET ring_timeout = ? WHERE name = ?",
                                 (ring_timeout, name))
            if accept is not None:
                await db.execute("UPDATE agent_groups SET accept_digit = ?, accept_timeout = ?"
                                 " WHERE name = ?", (*accept, name))
            if agent_names is not None:
                await db.execute("DELETE FROM group_members WHERE group_name = ?", (name,))
                await _add_members(db, name, agent_names)
        return await self.get_group(name)

    async def remove_group(self, name: str) -> Group:
        async with self._transaction() as db:
            group = await self.get_group(name)  # on this connection: inside the transaction
            widgets = [row["id"] for row in await db.execute_fetchall(
                "SELECT id FROM widgets WHERE json_extract(settings, '$.group') = ?"
                " ORDER BY id", (name,))]
            if widgets:
                raise Conflict(f"group {name!r} is used by {_listed('widget', widgets)}:"
                               f" give {'them' if len(widgets) > 1 else 'it'} another group"
                               " first")
            await db.execute("DELETE FROM group_members WHERE group_name = ?", (name,))
            await db.execute("DELETE FROM agent_groups WHERE name = ?", (name,))
        return group

    # ---- widgets ---------------------------------------------------------------------------

    async def add_widget(self, widget_id: str, name: str, settings: WidgetSettings, now: float
                         ) -> Widget:
        await self.get_group(settings.group)  # refuse a widget whose group does not exist
        public_key = "wk_" + secrets.token_urlsafe(18)
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO widgets (id, name, public_key, settings, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (widget_id, name, public_key, json.dumps(settings.to_json()), now),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"widget {widget_id!r} exists already") from None
        finally:
            self._config_changed()
        return Widget(widget_id, name, public_key, settings)

    async def get_widget(self, widget_id: str) -> Widget:
        return await self._widget_where(self._db, "id = ?", widget_id, widget_id)

    async def get_widget_by_key(self, public_key: str) -> Widget:
        """The widget a visitor's request names. Read on the intake journal's connection, as
        the lead that follows is written: the store's also carries the mover's and the
        engine's transactions, each with its commit, and a read would queue behind them.
        Cached (StoreBase._cached): every request of a widget's visitors starts here."""
        assert self._journal is not None
        journal = self._journal
        return await self._cached(("widget", public_key), lambda: self._widget_where(
            journal, "public_key = ?", public_key, "with that public key", schema="store."))

    async def list_widgets(self) -> list[Widget]:
        return [to_widget(row) for row in await self._fetch("SELECT * FROM widgets ORDER BY id")]

    async def _widget_where(self, db: aiosqlite.Connection, where: str, value: str, label: str,
                            schema: str = "") -> Widget:
        # execute_fetchall: one trip to the SQLite thread (every lead request starts here)
        rows = await db.execute_fetchall(f"SELECT * FROM {schema}widgets WHERE {where}", (value,))
        if not rows:
            raise NotFound("widget", label)
        return to_widget(rows[0])

    async def update_widget(self, widget_id: str, name: str, settings: WidgetSettings) -> Widget:
        """The widget's new name and settings; NotFound for an unknown widget or group."""
        await self.get_group(settings.group)
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "UPDATE widgets SET name = ?, settings = ? WHERE id = ?",
                    (name, json.dumps(settings.to_json()), widget_id))
                if cursor.rowcount != 1:
                    raise NotFound("widget", widget_id)
        finally:
            self._config_changed()
        return await self.get_widget(widget_id)

    async def set_widget_disabled(self, widget_id: str, disabled_at: float | None) -> Widget:
        """Disable the widget (since `disabled_at`) or enable it again (None)."""
        try:
            async with self._transaction() as db:
                cursor = await db.execute("UPDATE widgets SET disabled_at = ? WHERE id = ?",
                                          (disabled_at, widget_id))
                if cursor.rowcount != 1:
                    raise NotFound("widget", widget_id)
        finally:
            self._config_changed()
        return await self.get_widget(widget_id)

    async def widget_references(self, widget_id: str) -> tuple[int, int]:
        """The widget's leads (in the store and still in the intake journal, whoever journaled
        them) and the tombstones of its purged or erased leads."""
        leads, tombstones = await self._store_references(self._db, widget_id)
        return leads + await self._journaled_for(widget_id), tombstones

    async def remove_widget(self, widget_id: str) -> None:
        """The widget and its clause records; WidgetInUse while any lead or tombstone names
        it: its leads are called and reported by it, and a later widget of the same id must
        not inherit them. A visitor's lead racing the removal (journaled after the check, by
        a request that read the widget before) would find no widget to move into and be
        dropped (IntakeJournal._of_existing_widgets, logged): the service removes only a
        widget disabled a minute before, so no such request is left."""
        await self._settled()  # this process's journaled leads: into the store first
        journaled = await self._journaled_for(widget_id)
        async with self._transaction() as db:
            leads, tombstones = await self._store_references(db, widget_id)
            if leads + journaled or tombstones:
                raise WidgetInUse(widget_id, leads + journaled, tombstones)
            await db.execute("DELETE FROM clauses WHERE widget_id = ?", (widget_id,))
            cursor = await db.execute("DELETE FROM widgets WHERE id = ?", (widget_id,))
            if cursor.rowcount != 1:
                raise NotFound("widget", widget_id)
        self._config_changed()

    async def _journaled_for(self, widget_id: str) -> int:
        assert self._journal is not None
        rows = await self._journal.execute_fetchall(
            "SELECT COUNT(*) FROM new_leads WHERE widget_id = ?"
            " AND id NOT IN (SELECT id FROM store.leads)", (widget_id,))
        return rows[0][0]

    @staticmethod
    async def _store_references(db: aiosqlite.Connection, widget_id: str) -> tuple[int, int]:
        rows = await db.execute_fetchall(
            "SELECT (SELECT COUNT(*) FROM leads WHERE widget_id = ?),"
            " (SELECT COUNT(*) FROM lead_tombstones WHERE widget_id = ?)",
            (widget_id, widget_id))
        return rows[0][0], rows[0][1]
