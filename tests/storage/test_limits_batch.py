"""limits.commit_batch: a batch is added without per-lead savepoints, and when one lead fails
to be added the batch is done again so that only that lead is refused and nothing of it stays
(its row, its counts)."""

from __future__ import annotations

import pytest

import sqlite3

from callengine.model import widget_settings_from_input
from callengine.storage import limits
from callengine.storage.limits import Pending

# The SQLite backend's own machinery (its journal, files and transactions).
pytestmark = pytest.mark.sqlite_only

COLUMNS = ("id", "widget_id", "subject_id", "created_at")


def _journal() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE new_leads (id TEXT, widget_id TEXT, subject_id TEXT,"
                 " created_at REAL)")
    conn.execute("CREATE UNIQUE INDEX new_leads_id ON new_leads(id)")
    for statement in limits.SCHEMA:
        conn.execute(statement)
    return conn


def _item(lead_id: str, subject: str, now: float, client: str = "c1") -> Pending:
    settings = widget_settings_from_input({"group": "sales", "allowed_regions": ["PL"],
                                           "duplicate_window_s": 0})
    return Pending({"id": lead_id, "widget_id": "w", "subject_id": subject, "created_at": now},
                   settings, client, now)


def test_a_lead_that_fails_to_be_added_is_refused_alone() -> None:
    conn, now = _journal(), 1_800_000_000.0
    batch = [_item("a", "s1", now), _item("a", "s2", now), _item("c", "s3", now)]  # id clash
    limits.commit_batch(conn, batch, COLUMNS, None)
    assert batch[0].outcome == "a" and batch[2].outcome == "c"
    assert isinstance(batch[1].outcome, sqlite3.IntegrityError)
    assert conn.execute("SELECT id, subject_id FROM new_leads ORDER BY id").fetchall() == [
        ("a", "s1"), ("c", "s3")]
    counted = dict(conn.execute(
        "SELECT key, n FROM intake_counts WHERE scope = 'n'").fetchall())
    assert counted == {"s1": 1, "s3": 1}  # the refused lead's number counted nowhere
    (widget_count,) = conn.execute(
        "SELECT SUM(n) FROM intake_counts WHERE scope = 'w'").fetchone()
    assert widget_count == 2
    clients = {row[0] for row in conn.execute("SELECT subject_id FROM intake_client_numbers")}
    assert clients == {"s1", "s3"}
    assert not conn.in_transaction


def test_a_batch_without_faults_adds_every_lead_in_one_transaction() -> None:
    conn, now = _journal(), 1_800_000_000.0
    batch = [_item(f"l{k}", f"s{k}", now, client=f"c{k}") for k in range(5)]
    limits.commit_batch(conn, batch, COLUMNS, None)
    assert [item.outcome for item in batch] == [f"l{k}" for k in range(5)]
    assert conn.execute("SELECT COUNT(*) FROM new_leads").fetchone() == (5,)


def test_a_clients_numbers_are_limited_per_hour_and_counted_across_the_batch() -> None:
    conn, now = _journal(), 1_800_000_000.0
    settings = widget_settings_from_input({"group": "sales", "allowed_regions": ["PL"],
                                           "duplicate_window_s": 0,
                                           "max_numbers_per_client_per_hour": 2})
    batch = [Pending({"id": f"l{k}", "widget_id": "w", "subject_id": subject,
                      "created_at": now + k}, settings, "c1", now + k)
             for k, subject in enumerate(["s1", "s2", "s1", "s3"])]
    limits.commit_batch(conn, batch, COLUMNS, None)
    assert [item.outcome for item in batch[:3]] == ["l0", "l1", "l2"]  # s1 again: known
    refused = batch[3].outcome
    assert isinstance(refused, limits.RateLimited) and refused.limit == "client"
    # s1 was asked for again at now + 2, s2 at now + 1: room when s2 leaves the hour
    assert refused.retry_after_s == 3600 + 1 - 3
