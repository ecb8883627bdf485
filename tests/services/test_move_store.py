"""`callengine move-store`: a SQLite installation moved to PostgreSQL reads the same afterwards
(every lead, decrypted with the same keystore; the audit chain verifying against its anchor),
and a second move into a database that holds data is refused."""

from __future__ import annotations

import json

import pytest

from tests.services import test_subjects
from tests.services.test_subjects import ANNA, run

setup = test_subjects.setup  # its fixture: a SQLite store with three leads and recordings

pytestmark = pytest.mark.sqlite_only  # it moves a SQLite store


def test_a_sqlite_store_moves_to_postgresql_and_reads_the_same(setup, postgres, capsys):
    tmp_path = setup
    assert run(tmp_path, "subject", "export", ANNA) == 0  # (an audit entry to carry over)
    before = json.loads(capsys.readouterr().out)
    url = postgres.new_database_now()
    assert run(tmp_path, "move-store", url) == 0
    out = capsys.readouterr().out
    assert "leads: 3 row(s)" in out and "recordings: 3 row(s)" in out
    assert "audit_log: 1 row(s)" in out
    config = tmp_path / "c.toml"
    sqlite_config = config.read_text()
    config.write_text(sqlite_config.replace("[store]\n", f'[store]\nurl = "{url}"\n'))
    (tmp_path / "ce.db").rename(tmp_path / "ce.db.moved")  # from now on, only PostgreSQL
    assert run(tmp_path, "subject", "export", ANNA) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["leads"] == before["leads"] and len(after["leads"]) == 2
    assert run(tmp_path, "audit", "verify") == 0
    assert "intact" in capsys.readouterr().out
    (tmp_path / "ce.db.moved").rename(tmp_path / "ce.db")
    config.write_text(sqlite_config)
    assert run(tmp_path, "move-store", url) == 1  # a Conflict: it holds data already
    assert "holds data already" in capsys.readouterr().err
