"""SQLite-dialect SQL, as PostgreSQL runs it: the handful of differences the query mixins
meet, translated one by one (an unknown construct fails loudly in PostgreSQL, not silently).

- `?` placeholders become `$1`, `$2`, … (none of our SQL has a `?` inside a string literal:
  translate() refuses one);
- `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`; `INSERT OR REPLACE INTO t` an upsert
  on t's primary key (REPLACE_KEYS);
- `CAST(x AS INTEGER)` truncates in SQLite and rounds in PostgreSQL: it becomes floor(x)
  (every such x is a time, never negative);
- SQLite's JSON functions and random ids, by their PostgreSQL equivalents (FIXED).
"""

from __future__ import annotations

import functools
import re

# Primary keys of the tables written with INSERT OR REPLACE.
REPLACE_KEYS = {
    "clauses": ("widget_id", "language", "version"),
    "lead_tombstones": ("id",),
}

FIXED = (
    ("lower(hex(randomblob(16)))", "replace(gen_random_uuid()::text, '-', '')"),
    ("json_extract(settings, '$.group')", "(settings::jsonb ->> 'group')"),
    ("json_each(e.events) j", "jsonb_array_elements_text(e.events::jsonb) j(value)"),
    # SQLite's CROSS JOIN is a hint to its planner (keep this table order); PostgreSQL's
    # takes no ON
    ("CROSS JOIN leads l ON", "JOIN leads l ON"),
)

_CAST_INTEGER = re.compile(r"CAST\(([^()]+) AS INTEGER\)")
_INSERT_OR = re.compile(r"^\s*INSERT OR (IGNORE|REPLACE) INTO (\w+)\s*\(([^)]*)\)", re.S)
_RETURNING = re.compile(r"\sRETURNING\s", re.I)


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    for sqlite_form, postgres_form in FIXED:
        sql = sql.replace(sqlite_form, postgres_form)
    sql = _CAST_INTEGER.sub(r"floor(\1)::integer", sql)
    sql = _insert_or(sql)
    return _placeholders(sql)


def _insert_or(sql: str) -> str:
    match = _INSERT_OR.match(sql)
    if match is None:
        return sql
    kind, table, columns = match.groups()
    if kind == "IGNORE":
        conflict = " ON CONFLICT DO NOTHING"
    else:
        key = REPLACE_KEYS[table]  # a KeyError: a table to add above
        names = [c.strip() for c in columns.split(",")]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in key)
        conflict = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    sql = f"INSERT INTO {table} ({columns})" + sql[match.end():]
    returning = _RETURNING.search(sql)
    if returning is None:
        return sql.rstrip().rstrip(";") + conflict
    return sql[:returning.start()] + conflict + sql[returning.start():]


def _placeholders(sql: str) -> str:
    out, number, quoted = [], 0, False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif char == "?":
            if quoted:
                raise ValueError(f"a '?' inside a string literal: {sql!r}")
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)
