"""Intake's rate limits and duplicate window, as counters in the intake journal, and the group
commit that checks and adds a batch of new leads in one transaction (intake.py).

Counts are kept per minute, in the same transaction as the lead they count, so a check reads
a few rows whatever the number of leads (a widget with 100k leads in the hour reads at most
61): `intake_counts` (scope, key, minute) → n, the newest lead's time and the strictest
maxima, for a number (its data subject's random id: "n") and for a widget ("w");
`intake_client_numbers` (client, subject) → when that client last asked for that number (a
client is a keyed hash of its address, never the address); `intake_recent` (widget, subject)
→ its last lead, for the duplicate window. Buckets no window reaches are pruned.

How a window is approximated: a window of W seconds counts every minute whose newest lead is
inside it, that minute whole, so a count may include leads up to a minute older than W and
never fewer than the window holds: the limits never let more through than their maximum; at
worst one refuses up to a minute longer than the exact window would. Retry-After is when
enough of the oldest minutes have left the window (their newest lead + W) for one more lead
to pass. The client's distinct numbers are exact (one row per client and number).

Across widgets, a number's count is every lead of it, whichever widget; the maximum applied is
the strictest of the widgets that apply — the asking widget's own and that of every widget
whose leads of this number are in the window (each minute keeps the smallest maxima of the
leads it counts). A client's numbers are counted across widgets too, against the asking
widget's maximum. Leads a store held before these counters existed are counted in when they
are made (`seed`), against the asking widget's maxima only.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from callengine.errors import RateLimited, SlotFull
from callengine.model import WidgetSettings

BUCKET_S = 60
# window s → the setting that is its maximum, and the counts' column of the strictest one
NUMBER_WINDOWS = ((900, "max_leads_per_number_per_15min", "cap15"),
                  (3600, "max_leads_per_number_per_hour", "cap60"),
                  (86400, "max_leads_per_number_per_day", "capday"))
WIDGET_WINDOW_S = 3600
CLIENT_WINDOWS = ((3600, "max_numbers_per_client_per_hour", "hour"),
                  (86400, "max_numbers_per_client_per_day", "day"))
RECENT_KEEP_S = 3600  # the longest duplicate window
PRUNE_EVERY_S = 60.0
NO_CAP = 1 << 30
# Leads of widget ? scheduled for slot ? (store: not closed; journal: not moved yet).
_LEADS_IN_SLOT = (
    "SELECT (SELECT COUNT(*) FROM store.leads WHERE widget_id = ? AND scheduled_for = ?"
    " AND status != 'done') + (SELECT COUNT(*) FROM new_leads j WHERE widget_id = ?"
    " AND scheduled_for = ? AND NOT EXISTS (SELECT 1 FROM store.leads l WHERE l.id = j.id))"
)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS intake_counts (scope TEXT NOT NULL, key TEXT NOT NULL,"
    " bucket INTEGER NOT NULL, n INTEGER NOT NULL, last_at REAL NOT NULL,"
    " cap15 INTEGER NOT NULL, cap60 INTEGER NOT NULL, capday INTEGER NOT NULL,"
    " PRIMARY KEY (scope, key, bucket)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS intake_client_numbers (client TEXT NOT NULL,"
    " subject_id TEXT NOT NULL, last_at REAL NOT NULL,"
    " PRIMARY KEY (client, subject_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS intake_recent (widget_id TEXT NOT NULL,"
    " subject_id TEXT NOT NULL, lead_id TEXT NOT NULL, created_at REAL NOT NULL,"
    " PRIMARY KEY (widget_id, subject_id)) WITHOUT ROWID",
    # for the pruning only
    "CREATE INDEX IF NOT EXISTS intake_counts_bucket ON intake_counts(bucket)",
    "CREATE INDEX IF NOT EXISTS intake_client_numbers_at ON intake_client_numbers(last_at)",
    "CREATE INDEX IF NOT EXISTS intake_recent_at ON intake_recent(created_at)",
)

_BUMP = ("INSERT INTO intake_counts (scope, key, bucket, n, last_at, cap15, cap60, capday)"
         " VALUES (?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = n + 1,"
         " last_at = MAX(last_at, excluded.last_at), cap15 = MIN(cap15, excluded.cap15),"
         " cap60 = MIN(cap60, excluded.cap60), capday = MIN(capday, excluded.capday)")


@dataclass
class Pending:
    """One new lead waiting for the group commit: its journal row (columns → values) and
    what its limits need. `outcome` is set by commit_batch: the lead's id, ("duplicate", id)
    or the exception that refused it."""

    row: dict[str, Any]
    settings: WidgetSettings
    client: str | None
    now: float
    slot_capacity: int | None = None  # places of the slot it is scheduled for, if one
    outcome: Any = field(default=None)

    @property
    def widget_id(self) -> str:
        return self.row["widget_id"]

    @property
    def subject_id(self) -> str:
        return self.row["subject_id"]


def seed(conn: sqlite3.Connection, now: float) -> None:
    """Count in the leads of the last day that a store (and its journal) held before the
    counters existed: run once, when the tables are made."""
    for scope, key in (("n", "subject_id"), ("w", "widget_id")):
        conn.execute(
            f"INSERT INTO intake_counts SELECT ?, {key}, CAST(created_at / {BUCKET_S} AS INTEGER),"
            f" COUNT(*), MAX(created_at), {NO_CAP}, {NO_CAP}, {NO_CAP}"
            f" FROM (SELECT widget_id, subject_id, created_at FROM store.leads"
            f" WHERE CAST(created_at / 86400 AS INTEGER) IN (?, ?) AND created_at > ?"
            f" UNION ALL SELECT widget_id, subject_id, created_at FROM new_leads j"
            f" WHERE created_at > ? AND NOT EXISTS (SELECT 1 FROM store.leads l WHERE l.id = j.id))"
            f" WHERE {key} IS NOT NULL GROUP BY 2, 3",
            (scope, int((now - 86400) / 86400), int(now / 86400), now - 86400, now - 86400))


def _retry_after(inside: list[tuple[float, int]], window: int, count: int, maximum: int,
                 now: float) -> int:
    """Seconds until enough of the oldest minutes (newest lead's time, n) leave the window
    for one more lead to pass."""
    excess = count - maximum + 1
    for last_at, n in sorted(inside):
        excess -= n
        if excess <= 0:
            return max(1, math.ceil(last_at + window - now))
    return window


def _check(conn: sqlite3.Connection, item: Pending) -> str | None:
    """RateLimited (or SlotFull), or the id of the lead this one repeats (duplicate window), or None."""
    s, now = item.settings, item.now
    if s.duplicate_window_s:
        found = conn.execute(
            "SELECT lead_id, created_at FROM intake_recent WHERE widget_id = ? AND subject_id = ?",
            (item.widget_id, item.subject_id)).fetchone()
        if found is not None and found[1] > now - s.duplicate_window_s:
            return found[0]
    rows = conn.execute(
        "SELECT last_at, n, cap15, cap60, capday FROM intake_counts WHERE scope = 'n'"
        " AND key = ? AND bucket >= ?",
        (item.subject_id, int((now - 86400) / BUCKET_S))).fetchall()
    for k, (window, setting, _) in enumerate(NUMBER_WINDOWS):
        inside = [row for row in rows if row[0] > now - window]
        count = sum(row[1] for row in inside)
        maximum = min([getattr(s, setting), *(row[2 + k] for row in inside)])
        if count >= maximum:
            raise RateLimited(
                f"too many callback requests for this number ({maximum} per"
                f" {window // 60} minutes)",
                _retry_after([row[:2] for row in inside], window, count, maximum, now),
                "number")
    if item.client is not None:
        # One statement for the client (this runs for every lead, counted in SQLite, not row
        # by row here): has it asked for this number in the last day, and how many numbers in
        # each window. The times are read only to refuse.
        known, *counts = conn.execute(
            "SELECT COALESCE(MAX(subject_id = ?), 0), COUNT(*) FILTER (WHERE last_at > ?),"
            " COUNT(*) FROM intake_client_numbers WHERE client = ? AND last_at > ?",
            (item.subject_id, now - CLIENT_WINDOWS[0][0], item.client,
             now - CLIENT_WINDOWS[1][0])).fetchone()
        for (window, setting, name), count in zip(CLIENT_WINDOWS, counts):
            maximum = getattr(s, setting)
            if not known and count >= maximum:  # only a number new to the client counts
                inside = [(at, 1) for (at,) in conn.execute(
                    "SELECT last_at FROM intake_client_numbers WHERE client = ? AND last_at > ?",
                    (item.client, now - window))]
                raise RateLimited(
                    f"too many numbers asked for from this address ({maximum} per {name})",
                    _retry_after(inside, window, len(inside), maximum, now), "client")
    inside = conn.execute(
        "SELECT last_at, n FROM intake_counts WHERE scope = 'w' AND key = ? AND bucket >= ?"
        " AND last_at > ?", (item.widget_id, int((now - WIDGET_WINDOW_S) / BUCKET_S),
                             now - WIDGET_WINDOW_S)).fetchall()
    count = sum(n for _, n in inside)
    if count >= s.max_leads_per_hour:
        raise RateLimited("this widget has reached its hourly limit of callbacks",
                          _retry_after(inside, WIDGET_WINDOW_S, count, s.max_leads_per_hour,
                                       now), "widget")
    if item.slot_capacity is not None:
        at = item.row["scheduled_for"]
        (taken,) = conn.execute(_LEADS_IN_SLOT, (item.widget_id, at, item.widget_id, at)).fetchone()
        if taken >= item.slot_capacity:
            raise SlotFull()
    return None


def _add(conn: sqlite3.Connection, item: Pending, columns: tuple[str, ...]) -> None:
    s, now, subject = item.settings, item.now, item.subject_id
    conn.execute(f"INSERT INTO new_leads ({', '.join(columns)})"
                 f" VALUES ({', '.join('?' * len(columns))})",
                 [item.row.get(column) for column in columns])
    bucket = int(now / BUCKET_S)
    caps = tuple(getattr(s, setting) for _, setting, _ in NUMBER_WINDOWS)
    conn.executemany(_BUMP, (("n", subject, bucket, now, *caps),
                             ("w", item.widget_id, bucket, now, NO_CAP, NO_CAP, NO_CAP)))
    if item.client is not None:
        conn.execute("INSERT OR REPLACE INTO intake_client_numbers VALUES (?, ?, ?)",
                     (item.client, subject, now))
    conn.execute("INSERT OR REPLACE INTO intake_recent VALUES (?, ?, ?, ?)",
                 (item.widget_id, subject, item.row["id"], now))


def prune(conn: sqlite3.Connection, now: float) -> None:
    """Forget what no window reaches any more (in the batch's transaction)."""
    conn.execute("DELETE FROM intake_counts WHERE bucket < ?",
                 (int((now - 86400) / BUCKET_S) - 1,))
    conn.execute("DELETE FROM intake_counts WHERE bucket < ? AND scope = 'w'",
                 (int((now - WIDGET_WINDOW_S) / BUCKET_S) - 1,))
    conn.execute("DELETE FROM intake_client_numbers WHERE last_at <= ?", (now - 86400,))
    conn.execute("DELETE FROM intake_recent WHERE created_at < ?", (now - RECENT_KEEP_S,))


class _AddFailed(Exception):
    """A lead of a batch committed without savepoints failed to be added."""


def commit_batch(conn: sqlite3.Connection, batch: list[Pending], columns: tuple[str, ...],
                 prune_at: float | None) -> None:
    """On the journal's thread: every lead of the batch checked against the limits and added,
    in turn, in ONE transaction (one commit, one fsync); each lead's `outcome` says what became
    of it. Leads are added without a savepoint each (two statements fewer per lead); if adding
    one fails (a constraint, a bad value), that transaction is rolled back and the batch is
    done again with a savepoint per lead, so that only the failing lead is refused."""
    try:
        _commit_batch(conn, batch, columns, prune_at, savepoints=False)
    except _AddFailed:
        _commit_batch(conn, batch, columns, prune_at, savepoints=True)


def _commit_batch(conn: sqlite3.Connection, batch: list[Pending], columns: tuple[str, ...],
                  prune_at: float | None, *, savepoints: bool) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for item in batch:
            try:
                repeated = _check(conn, item)
            except (RateLimited, SlotFull) as exc:
                item.outcome = exc
                continue
            if repeated is not None:
                item.outcome = ("duplicate", repeated)
                continue
            if not savepoints:
                try:
                    _add(conn, item, columns)
                except Exception as exc:
                    raise _AddFailed() from exc
                item.outcome = item.row["id"]
                continue
            conn.execute("SAVEPOINT lead")
            try:
                _add(conn, item, columns)
            except Exception as exc:  # this row only
                conn.execute("ROLLBACK TO lead")
                item.outcome = exc
            else:
                item.outcome = item.row["id"]
            conn.execute("RELEASE lead")
        if prune_at is not None:
            prune(conn, prune_at)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
