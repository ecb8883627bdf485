"""Store's leads (read: creating one is the intake journal's) and their call attempts."""

from __future__ import annotations

import json
import sqlite3

from uuid6 import uuid7

from callengine.errors import AttemptClosed, Conflict, LeaseLost, NotFound
from callengine.flow import Result
from callengine.hooks.events import ATTEMPT_FINISHED, CALL_CONNECTED
from callengine.hooks.events import LEAD_DONE as HOOK_LEAD_DONE
from callengine.model import (
    ERASED, LEAD_CALLING, LEAD_DONE, LEAD_QUEUED, Agent, Attempt, Group, Lead, Widget,
)
from callengine.ringorder import RingState
from callengine.storage import outbox
from callengine.storage.base import StoreBase
from callengine.storage.interface import LeadFilter, engine_lease
from callengine.storage.rows import (
    acceptances_json, to_agent, to_attempt, to_group, to_lead, to_widget,
)
from callengine.storage.sql import chunks, marks


STATUS_BATCH = 500  # ids bound in one query (SQLite allows 32,766)


class LeadQueries(StoreBase):
    async def get_lead(self, lead_id: str) -> Lead:
        await self._settled()
        row = await self._fetch_one("SELECT * FROM leads WHERE id = ?", (lead_id,))
        if row is None:
            raise NotFound("lead", lead_id)
        return to_lead(row, await self._rows_ciphers([row]))

    async def list_leads(self, where: LeadFilter | None = None, *, limit: int = 100
                         ) -> list[Lead]:
        await self._settled()
        clause, params = _lead_where(where)
        return await self._leads(
            f"SELECT * FROM leads {clause} ORDER BY created_at DESC LIMIT ?", (*params, limit))

    async def count_leads(self, where: LeadFilter | None = None) -> int:
        await self._settled()
        clause, params = _lead_where(where)
        (row,) = await self._db.execute_fetchall(f"SELECT COUNT(*) FROM leads {clause}", params)
        return row[0]

    async def lead_counts(self) -> dict[tuple[str, str], int]:
        """Leads by (status, outcome or ""): one GROUP BY (the metrics' scrape), a scan of the
        covering index leads_outcomes in its order: ~19 ms per 100,000 leads (docs/metrics.md)."""
        await self._settled()
        rows = await self._db.execute_fetchall(
            "SELECT status, outcome, count(*) FROM leads GROUP BY status, outcome")
        return {(status, outcome or ""): count for status, outcome, count in rows}

    async def due_leads(self, now: float, limit: int) -> list[Lead]:
        """Queued leads due; a lead whose subject was erased (a store restored from an older
        backup) is never called: it is closed instead, as `erased`."""
        await self._settled()
        leads = await self._leads(
            # status spelled out (not bound): that is how SQLite sees leads_queued applies
            f"SELECT * FROM leads WHERE status = '{LEAD_QUEUED}' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            (now, limit))
        erased = [lead.id for lead in leads if lead.erased]
        if erased:
            async with self._transaction() as db:
                await db.executemany(
                    f"UPDATE leads SET status = '{LEAD_DONE}', outcome = '{ERASED}',"
                    " next_attempt_at = NULL, closed_at = ?, updated_at = ? WHERE id = ?",
                    [(now, now, lead_id) for lead_id in erased])
                for lead_id in erased:
                    await outbox.emit(db, HOOK_LEAD_DONE, f"{HOOK_LEAD_DONE}:{lead_id}", lead_id,
                                      {"lead_id": lead_id, "outcome": ERASED, "attempts": 0,
                                       "closed_at": now}, now)
        return [lead for lead in leads if not lead.erased]

    async def lead_statuses(self, lead_ids: list[str]) -> dict[str, dict[str, object]]:
        """The public state of each of these leads that exists, by id: `widget_id`, `status`,
        `progress`, `outcome`, `scheduled_for` (no personal field: nothing to decrypt). One
        query per 500 ids: the widget's event streams of a process read theirs together."""
        await self._settled()
        found: dict[str, dict[str, object]] = {}
        for i in range(0, len(lead_ids), STATUS_BATCH):
            batch = lead_ids[i:i + STATUS_BATCH]
            for row in await self._fetch(
                "SELECT id, widget_id, status, progress, outcome, scheduled_for FROM leads"
                f" WHERE id IN ({','.join('?' * len(batch))})", batch,
            ):
                found[row[0]] = {"widget_id": row[1], "status": row[2], "progress": row[3],
                                 "outcome": row[4], "scheduled_for": row[5]}
        return found

    async def next_due_at(self, after: float | None = None) -> float | None:
        """When the first queued lead is due (after `after`, when given: the next one that is
        not due yet)."""
        await self._settled()
        later, params = ("", ()) if after is None else (" AND next_attempt_at > ?", (after,))
        (row,) = await self._db.execute_fetchall(
            f"SELECT MIN(next_attempt_at) FROM leads WHERE status = '{LEAD_QUEUED}'{later}",
            params)
        return row[0]

    async def leads_in_slots(self, widget_id: str, starts: list[float]) -> dict[float, int]:
        """How many of the widget's leads not closed are scheduled for each of `starts`."""
        await self._settled()
        if not starts:
            return {}
        return {row[0]: row[1] for row in await self._fetch(
            "SELECT scheduled_for, COUNT(*) FROM leads WHERE widget_id = ? AND scheduled_for"
            f" BETWEEN ? AND ? AND status != '{LEAD_DONE}' GROUP BY scheduled_for",
            (widget_id, min(starts), max(starts)),
        )}

    async def dialling_plans(self, widget_ids) -> dict[str, tuple[Widget, Group]]:
        """The dispatcher's round: each of these widgets with its group (agents in order), read
        in one trip to the connection's thread (NotFound for a widget or group not there)."""
        wanted = sorted(set(widget_ids))
        if not wanted:
            return {}
        widgets: dict[str, Widget] = {}
        groups: dict[str, Group] = {}
        for some in chunks(wanted):
            widget_rows, group_rows, agent_rows = await self._db._execute(
                _dialling_rows, self._db._conn, some)
            widgets.update((row["id"], to_widget(row)) for row in widget_rows)
            members: dict[str, list[Agent]] = {}
            for row in agent_rows:
                members.setdefault(row["group_name"], []).append(to_agent(row))
            groups.update((row["name"], to_group(row, tuple(members.get(row["name"], ()))))
                          for row in group_rows)
        return dialling_plans_of(wanted, widgets, groups)

    # ---- attempts --------------------------------------------------------------------------

    async def start_attempt(self, lead_id: str, now: float) -> Attempt:
        """Mark the lead as being called and open an attempt: committed before any dial."""
        started = await self.start_attempts([lead_id], now)
        if lead_id not in started:
            raise Conflict(f"lead {lead_id} is not queued")
        return started[lead_id]

    async def ring_state(self, groups: list[str], endpoints: list[str]) -> RingState:
        """The groups' rotations and the endpoints' last calls, in one trip to the thread."""
        if not groups and not endpoints:
            return RingState()
        return await self._db._execute(_ring_state, self._db._conn, sorted(set(groups)),
                                       sorted(set(endpoints)))

    async def start_attempts(self, lead_ids: list[str], now: float,
                             progress: str | None = None,
                             rotations: dict[str, tuple[str, str]] | None = None,
                             engine: str | None = None, lease_owner: str | None = None
                             ) -> dict[str, Attempt]:
        """start_attempt for each of these leads, all in one transaction (one commit for a
        dispatcher's whole round): lead id → its new attempt, for the leads that were queued
        (the others are left out). progress: the leads' progress from the start (the call's
        first state), written in the same commit; rotations: lead id → (group, endpoint), the
        group's new rotation if that lead's attempt starts; engine: the id of the engine
        making the calls (kept on the attempts: active_attempts); lease_owner: with it, nothing
        starts unless that owner holds the engine's lease (LeaseLost: it was taken over)."""
        await self._settled()
        if not lead_ids:
            return {}
        planned = [(lead_id, str(uuid7())) for lead_id in lead_ids]
        numbers = await self._transaction_in_thread(_start_attempts, planned, now, progress,
                                                    rotations or {}, engine, lease_owner)
        return {lead_id: Attempt(attempt_id, lead_id, numbers[lead_id], "active", now)
                for lead_id, attempt_id in planned if lead_id in numbers}

    async def set_progress(self, lead_id: str, progress: str, connected: bool, attempt_id: str,
                           now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE leads SET progress = ?, updated_at = ? WHERE id = ?",
                (progress, now, lead_id),
            )
            if connected:
                await db.execute("UPDATE attempts SET connected = 1 WHERE id = ?", (attempt_id,))
                await outbox.emit(db, CALL_CONNECTED, f"{CALL_CONNECTED}:{attempt_id}", lead_id,
                                  {"lead_id": lead_id, "attempt_id": attempt_id,
                                   "progress": progress, "connected_at": now}, now)

    async def mark_notice_played(self, attempt_id: str) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE attempts SET notice_played = 1 WHERE id = ?", (attempt_id,))

    async def finish_attempt(
        self, attempt: Attempt, result: Result, now: float, retry_at: float | None
    ) -> Lead:
        """Close the attempt with its result; queue the lead again or close it, atomically.
        An attempt closed already (another engine took it over) stays as it is, and so does
        its lead: it may be another engine's call by now."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE attempts SET status = 'done', ended_at = ?, outcome = ?, q850 = ?,"
                " cause = ?, agent = ?, agent_ring_s = ?, visitor_ring_s = ?, talk_s = ?,"
                " connected = ?, acceptances = ? WHERE id = ? AND status = 'active'",
                (
                    now, result.outcome.value, result.q850, result.cause, result.agent,
                    result.agent_ring_s, result.visitor_ring_s, result.talk_s,
                    int(result.connected), acceptances_json(result.acceptances), attempt.id,
                ),
            )
            if cursor.rowcount == 0:
                raise AttemptClosed(attempt.id)
            if retry_at is not None:
                await db.execute(
                    "UPDATE leads SET status = ?, next_attempt_at = ?, progress = NULL,"
                    " outcome = ?, cause = ?, updated_at = ? WHERE id = ?",
                    (LEAD_QUEUED, retry_at, result.outcome.value, result.cause, now,
                     attempt.lead_id),
                )
            else:
                await db.execute(
                    "UPDATE leads SET status = ?, outcome = ?, cause = ?, progress = NULL,"
                    " closed_at = ?, updated_at = ? WHERE id = ?",
                    (LEAD_DONE, result.outcome.value, result.cause, now, now, attempt.lead_id),
                )
            await _attempt_events(db, attempt, result, now, retry_at)
        return await self.get_lead(attempt.lead_id)

    async def active_attempts(self, engine: str | None = None) -> list[Attempt]:
        mine, params = ("", ()) if engine is None else (
            " AND (engine = ? OR engine IS NULL)", (engine,))
        return [to_attempt(row) for row in await self._fetch(
            f"SELECT * FROM attempts WHERE status = 'active'{mine} ORDER BY started_at", params
        )]

    async def attempts_for(self, lead_id: str) -> list[Attempt]:
        return [to_attempt(row) for row in await self._fetch(
            "SELECT * FROM attempts WHERE lead_id = ? ORDER BY number", (lead_id,)
        )]


async def _attempt_events(db, attempt: Attempt, result: Result, now: float,
                          retry_at: float | None) -> None:
    """finish_attempt's webhooks, in its transaction: attempt.finished, and lead.done when the
    lead is closed."""
    await outbox.emit(db, ATTEMPT_FINISHED, f"{ATTEMPT_FINISHED}:{attempt.id}", attempt.lead_id, {
        "lead_id": attempt.lead_id, "attempt_id": attempt.id, "number": attempt.number,
        "outcome": result.outcome.value, "cause": result.cause, "q850": result.q850,
        "connected": bool(result.connected), "agent": result.agent,
        "agent_ring_s": result.agent_ring_s, "visitor_ring_s": result.visitor_ring_s,
        "talk_s": result.talk_s, "started_at": attempt.started_at, "ended_at": now,
        "retry_at": retry_at}, now)
    if retry_at is None:
        await outbox.emit(db, HOOK_LEAD_DONE, f"{HOOK_LEAD_DONE}:{attempt.lead_id}",
                          attempt.lead_id, {"lead_id": attempt.lead_id,
                                            "outcome": result.outcome.value,
                                            "attempts": attempt.number, "closed_at": now}, now)


def _lead_where(where: LeadFilter | None, *, newest_first: bool = False) -> tuple[str, tuple]:
    """The WHERE clause (or "") and its parameters of a LeadFilter. For a listing newest first
    without a widget, status and outcome are written `+status` (no index on them): the planner
    would otherwise take leads_outcomes (the metrics') and sort every lead of that status,
    where walking leads_created stops after a page."""
    if where is None:
        return "", ()
    plain = "+" if newest_first and where.widget_id is None else ""
    terms = [(term, value) for term, value in (
        ("widget_id = ?", where.widget_id), (f"{plain}status = ?", where.status),
        (f"{plain}outcome = ?", where.outcome), ("created_at >= ?", where.created_from),
        ("created_at < ?", where.created_to)) if value is not None]
    if not terms:
        return "", ()
    return "WHERE " + " AND ".join(t for t, _ in terms), tuple(v for _, v in terms)


def dialling_plans_of(wanted: list[str], widgets: dict[str, Widget], groups: dict[str, Group]
                      ) -> dict[str, tuple[Widget, Group]]:
    """dialling_plans' answer from the rows read (NotFound for a widget or group not there)."""
    plans = {}
    for widget_id in wanted:
        if widget_id not in widgets:
            raise NotFound("widget", widget_id)
        widget = widgets[widget_id]
        if widget.settings.group not in groups:
            raise NotFound("group", widget.settings.group)
        plans[widget_id] = (widget, groups[widget.settings.group])
    return plans


def _dialling_rows(conn: sqlite3.Connection, widget_ids: list[str]) -> tuple[list, list, list]:
    """dialling_plans' rows, on the connection's thread: widgets, their groups, the groups'
    agents (by group, in order)."""
    widgets = conn.execute(
        f"SELECT * FROM widgets WHERE id IN ({marks(len(widget_ids))})", widget_ids).fetchall()
    names = sorted({json.loads(row["settings"])["group"] for row in widgets})
    groups = conn.execute(
        f"SELECT * FROM agent_groups WHERE name IN ({marks(len(names))})", names).fetchall()
    agents = conn.execute(
        "SELECT m.group_name, a.* FROM group_members m JOIN agents a ON a.name = m.agent_name"
        f" WHERE m.group_name IN ({marks(len(names))}) ORDER BY m.group_name, m.position",
        names).fetchall()
    return widgets, groups, agents


def _ring_state(conn: sqlite3.Connection, groups: list[str], endpoints: list[str]
                ) -> RingState:
    """ring_state's rows, on the connection's thread. One MAX per endpoint: each is one seek
    in attempts_agent_ended, where a GROUP BY would walk every attempt of those agents."""
    rotations = dict(conn.execute(
        "SELECT group_name, started_with FROM group_rotation"
        f" WHERE group_name IN ({marks(len(groups))})", groups).fetchall()) if groups else {}
    last_called = {}
    for endpoint in endpoints:
        (ended,), = conn.execute(
            "SELECT MAX(ended_at) FROM attempts WHERE agent = ?", (endpoint,)).fetchall()
        if ended is not None:
            last_called[endpoint] = ended
    return RingState(rotations, last_called)


def _start_attempts(conn: sqlite3.Connection, planned: list[tuple[str, str]], now: float,
                    progress: str | None, rotations: dict[str, tuple[str, str]],
                    engine: str | None, lease_owner: str | None) -> dict[str, int]:
    """In a transaction, on the connection's thread: each queued lead to calling and its
    attempt row; lead id → the attempt's number."""
    if lease_owner is not None:  # fenced: the check and the attempts commit together
        holder = conn.execute("SELECT owner FROM job_leases WHERE name = ?",
                              (engine_lease(engine or ""),)).fetchone()
        if holder is None or holder[0] != lease_owner:
            raise LeaseLost(f"engine {engine} no longer holds its lease")
    numbers: dict[str, int] = {}
    for lead_id, attempt_id in planned:
        rows = conn.execute(
            "UPDATE leads SET status = ?, attempts = attempts + 1, progress = ?,"
            " next_attempt_at = NULL, updated_at = ? WHERE id = ? AND status = ?"
            " RETURNING attempts",
            (LEAD_CALLING, progress, now, lead_id, LEAD_QUEUED),
        ).fetchall()
        if not rows:
            continue  # not queued (any more): no attempt
        (number,), = rows
        numbers[lead_id] = number
        conn.execute(
            "INSERT INTO attempts (id, lead_id, number, status, started_at, engine)"
            " VALUES (?, ?, ?, 'active', ?, ?)",
            (attempt_id, lead_id, number, now, engine),
        )
        if lead_id in rotations:
            conn.execute(
                "INSERT INTO group_rotation (group_name, started_with, updated_at)"
                " VALUES (?, ?, ?) ON CONFLICT (group_name) DO UPDATE SET"
                " started_with = excluded.started_with, updated_at = excluded.updated_at",
                (*rotations[lead_id], now))
    return numbers
