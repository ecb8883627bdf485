"""The PostgreSQL backend (asyncpg), beside the embedded SQLite default (docs/scale-out.md).

    dialect.py    the SQLite-dialect SQL of the query mixins, as PostgreSQL runs it
    database.py   PgDatabase: the pool, the transaction of the current task, results shaped
                  like aiosqlite's (so the mixins of storage/queries/ run unchanged)
    schema.py     the PostgreSQL schema and its migrations

The query mixins are written once, in SQLite's dialect; the few places where PostgreSQL
differs are translated by dialect.py (tested one by one in tests/storage/test_pg_dialect.py)
rather than each query written twice.
"""
