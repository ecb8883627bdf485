"""`callengine audit verify` against an attacker with sqlite3 on the store's file: each way of
changing the log (edit, delete, insert, reorder, cut the tail, rewrite it whole without the
key) is detected, and named with the entry it concerns; the exit code is 1.

Written as an outsider would: the real CLI on a real store, the attack done on the file."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
from pathlib import Path

import pytest

from callengine import cli
from callengine.access import chain_hash
from tests.support.engine import DATA_KEY_B64

# The attacks are made on the SQLite file (PostgreSQL's audit log is the same chain, kept by
# the same code, with its append-only trigger).
pytestmark = pytest.mark.sqlite_only

ENTRIES = 11
COLUMNS = "at, actor, role, action, target, detail, prev_hash, hash"


@pytest.fixture
def store(tmp_path, monkeypatch, capsys):
    """A store whose audit log holds 11 entries, made by the CLI (agents added)."""
    monkeypatch.setenv("CALLENGINE_ARI_PASSWORD", "x")
    monkeypatch.setenv("CALLENGINE_ADMIN_TOKEN", "admin-token-0123456789abcdef")
    monkeypatch.setenv("CALLENGINE_DATA_KEY", DATA_KEY_B64)
    config = tmp_path / "c.toml"
    config.write_text('[store]\ndatabase = "ce.db"\n')
    base = ["--config", str(config)]
    for n in range(ENTRIES):
        assert cli.main([*base, "agent", "add", f"a{n}", f"PJSIP/a{n}"]) == 0
    capsys.readouterr()
    return base, tmp_path / "ce.db"


def verify(base: list[str], capsys) -> tuple[int, str]:
    code = cli.main([*base, "audit", "verify"])
    return code, capsys.readouterr().out


def attacker(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    return db


def rows(db: sqlite3.Connection) -> list[tuple]:
    return db.execute("SELECT seq, at, actor, role, action, target, detail, prev_hash, hash"
                      " FROM audit_log ORDER BY seq").fetchall()


def rewrite(db: sqlite3.Connection, mac) -> None:
    """Recompute every link and hash with `mac(prev, body)`, as one without the key would."""
    prev = "0" * 64
    for seq, at, actor, role, action, target, detail, _, _ in rows(db):
        body = json.dumps([seq, repr(at), actor, role, action, target, detail],
                          separators=(",", ":"), ensure_ascii=False)
        new = mac(prev, seq, at, actor, role, action, target, detail, body)
        db.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?",
                   (prev, new, seq))
        prev = new


def edit(db):
    db.execute("UPDATE audit_log SET detail = 'PJSIP/elsewhere' WHERE seq = 5")


def delete(db):
    db.execute("DELETE FROM audit_log WHERE seq = 5")


def insert(db):
    """A forged entry at 5, the later ones moved up to make room."""
    for seq in range(ENTRIES, 4, -1):
        db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq + 1, seq))
    prev = db.execute("SELECT hash FROM audit_log WHERE seq = 4").fetchone()[0]
    db.execute("INSERT INTO audit_log (seq, at, actor, role, action, target, detail, prev_hash,"
               " hash) VALUES (5, 1.0, 'ops', 'admin', 'config.agent.create', 'agent:x',"
               " 'PJSIP/x', ?, ?)", (prev, hashlib.sha256(b"forged").hexdigest()))


def reorder(db):
    four, five = (db.execute(f"SELECT {COLUMNS} FROM audit_log WHERE seq = ?", (s,)).fetchone()
                  for s in (4, 5))
    sets = ", ".join(f"{c.strip()} = ?" for c in COLUMNS.split(","))
    db.execute(f"UPDATE audit_log SET {sets} WHERE seq = 4", five)
    db.execute(f"UPDATE audit_log SET {sets} WHERE seq = 5", four)


def cut_tail(db):
    db.execute("DELETE FROM audit_log WHERE seq > ?", (ENTRIES - 2,))


def rewrite_unkeyed(db):
    rewrite(db, lambda prev, *fields: chain_hash(prev, *fields[:-1]))


def rewrite_wrong_key(db):
    rewrite(db, lambda prev, *fields: hmac.new(
        b"k" * 32, b"callengine-audit-2\n" + (prev + fields[-1]).encode(),
        hashlib.sha256).hexdigest())


ATTACKS = {
    # attack: (the seq named, the kind named)
    edit: (5, "edited"),
    delete: (5, "deleted"),
    insert: (5, "inserted"),
    reorder: (4, "reordered"),
    cut_tail: (ENTRIES - 1, "cut-tail"),
    rewrite_unkeyed: (1, "rewritten"),
    rewrite_wrong_key: (1, "rewritten"),
}


def test_an_untouched_log_verifies(store, capsys):
    base, _ = store
    code, out = verify(base, capsys)
    assert code == 0 and f"intact: {ENTRIES} entries" in out
    assert "BROKEN" not in out


@pytest.mark.parametrize("attack", list(ATTACKS), ids=[a.__name__ for a in ATTACKS])
def test_each_attack_is_detected_and_named(store, capsys, attack):
    base, path = store
    attack(attacker(path))
    code, out = verify(base, capsys)
    seq, kind = ATTACKS[attack]
    assert code == 1, out
    assert re.search(rf"^BROKEN entry {seq}: {kind}: ", out, re.M), out
    assert "audit log BROKEN" in out and "intact" not in out


def test_the_api_shows_what_the_cli_says(store, capsys):
    """GET /api/v1/audit carries the same findings (the view both edges render)."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from callengine.services import open_services
    from callengine.config import load_config
    from callengine.web import WebDeps, make_app

    base, path = store
    cut_tail(attacker(path))
    admin = "admin-token-0123456789abcdef"

    async def get() -> dict:
        async with open_services(load_config(base[1]), channel="api") as services:
            async with TestClient(TestServer(make_app(WebDeps(services, admin)))) as client:
                response = await client.get("/api/v1/audit",
                                            headers={"Authorization": f"Bearer {admin}"})
                return await response.json()

    body = asyncio.run(get())
    assert body["intact"] is False
    assert {"seq": ENTRIES - 1, "kind": "cut-tail"}.items() <= body["findings"][0].items()


def test_a_crash_between_commit_and_anchor_is_told_apart_and_repaired(store, capsys):
    """The anchor one entry behind (what a crash after the row's commit leaves) is a note,
    not a cut; the next append moves the anchor on."""
    base, path = store
    anchor = next((path.parent / "var" / "keystore").glob("audit-*.head"))
    before = anchor.read_text()
    assert cli.main([*base, "agent", "add", "late", "PJSIP/late"]) == 0
    anchor.write_text(before)  # as if the process died before writing it
    capsys.readouterr()
    code, out = verify(base, capsys)
    assert code == 0, out
    assert f"note entry {ENTRIES + 1}: anchor-behind" in out
    assert cli.main([*base, "agent", "add", "later", "PJSIP/later"]) == 0
    capsys.readouterr()
    code, out = verify(base, capsys)
    assert code == 0 and "note" not in out and f"intact: {ENTRIES + 2} entries" in out


def test_a_cut_tail_stays_reported_after_later_appends(store, capsys):
    """An append that finds the anchor ahead of the table records the gap in the chain
    (`audit.gap`): a later entry can't make the cut disappear."""
    base, path = store
    cut_tail(attacker(path))
    assert cli.main([*base, "agent", "add", "after", "PJSIP/after"]) == 0
    capsys.readouterr()
    code, out = verify(base, capsys)
    assert code == 1 and re.search(rf"^BROKEN entry {ENTRIES - 1}: cut-tail: ", out, re.M), out


def test_backup_and_restore_are_audited_and_the_restored_chain_stands_alone(store, capsys):
    """`backup.create` and `backup.restore` in the live log; the restored store gets its own
    identity and anchor (`backup.restored`), so both verify, and the live one stays intact."""
    base, path = store
    assert cli.main([*base, "keys", "generate", "--out", str(path.parent / "k")]) == 0
    backup = path.parent / "b.cebak"
    assert cli.main([*base, "backup", "--out", str(backup),
                     "--recipient", str(path.parent / "k" / "recording.pub")]) == 0
    into = path.parent / "restored"
    assert cli.main([*base, "restore", str(backup), "--into", str(into),
                     "--key", str(path.parent / "k" / "recording.key")]) == 0
    capsys.readouterr()
    assert cli.main([*base, "audit", "list"]) == 0
    actions = [e["action"] for e in json.loads(capsys.readouterr().out)]
    assert actions[-2:] == ["backup.create", "backup.restore"]
    code, out = verify(base, capsys)
    assert code == 0 and f"intact: {ENTRIES + 2} entries" in out, out
    restored_config = path.parent / "r.toml"
    restored_config.write_text(f'[store]\ndatabase = "{into / "callengine.db"}"\n'
                               f'keystore = "{path.parent / "var" / "keystore" / "keystore.db"}"\n')
    code, out = verify(["--config", str(restored_config)], capsys)
    assert code == 0 and f"intact: {ENTRIES + 1} entries" in out, out  # + backup.restored
