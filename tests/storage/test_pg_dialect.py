"""The SQLite-dialect SQL as PostgreSQL gets it (callengine/storage/pg/dialect.py), rule by
rule; the whole suite on PostgreSQL runs every query of the mixins through it."""

from __future__ import annotations

import pytest

from callengine.storage.pg.dialect import translate


@pytest.mark.parametrize("sqlite, postgresql", [
    ("SELECT * FROM leads WHERE id = ? AND status = ?",
     "SELECT * FROM leads WHERE id = $1 AND status = $2"),
    ("SELECT 'a?b' FROM t WHERE x = ?", None),  # a '?' in a literal: refused, never guessed
    ("INSERT OR IGNORE INTO webhook_events (id, dedup) SELECT ?, ?",
     "INSERT INTO webhook_events (id, dedup) SELECT $1, $2 ON CONFLICT DO NOTHING"),
    ("INSERT OR IGNORE INTO leads (id) VALUES (?) RETURNING id",
     "INSERT INTO leads (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id"),
    ("INSERT OR REPLACE INTO clauses (widget_id, language, version, text) VALUES (?, ?, ?, ?)",
     "INSERT INTO clauses (widget_id, language, version, text) VALUES ($1, $2, $3, $4)"
     " ON CONFLICT (widget_id, language, version) DO UPDATE SET text = EXCLUDED.text"),
    ("SELECT id FROM leads WHERE CAST(created_at / 86400 AS INTEGER) >= ?",
     "SELECT id FROM leads WHERE floor(created_at / 86400)::integer >= $1"),
    ("SELECT id FROM widgets WHERE json_extract(settings, '$.group') = ?",
     "SELECT id FROM widgets WHERE (settings::jsonb ->> 'group') = $1"),
    ("UPDATE audit_meta SET value = lower(hex(randomblob(16)))",
     "UPDATE audit_meta SET value = replace(gen_random_uuid()::text, '-', '')"),
    ("SELECT r.id FROM recordings r CROSS JOIN leads l ON l.id = r.lead_id",
     "SELECT r.id FROM recordings r JOIN leads l ON l.id = r.lead_id"),
])
def test_each_difference_is_translated(sqlite, postgresql):
    if postgresql is None:
        with pytest.raises(ValueError, match="inside a string literal"):
            translate(sqlite)
    else:
        assert translate(sqlite) == postgresql


def test_an_upsert_on_a_table_without_a_known_key_fails_loudly():
    with pytest.raises(KeyError):
        translate("INSERT OR REPLACE INTO somewhere (a, b) VALUES (?, ?)")
