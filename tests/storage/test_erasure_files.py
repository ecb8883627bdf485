"""Erasure as an outsider checks it: while another connection holds a read transaction (and,
separately, while the engine's own connections are open), shred a recording, erase a subject
and run a retention purge; then search every file of the store and the keystore, byte for
byte, for the number in its spellings, its keyed hash, the encrypted fields and the keys.
Either nothing is found, or the operation said it failed — and a retry, once the reader has
gone, finds nothing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from callengine import crypto
from callengine.access import Principal, Role
from callengine.crypto import FieldCipher
from callengine.errors import ErasureIncomplete
from callengine.flow import Outcome, Result, Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.recordings import RecordingVault
from callengine.retention import DAY, Purger
from callengine.services import Services
from callengine.storage import KeyStore, Store, scrub
from tests.support.engine import DATA_KEY, DATA_KEY_B64, REPO
from tests.support.recordings import seed_recording, two_tones

# SQLite's files after an erasure (PostgreSQL's: tests/storage/test_pg_privacy.py).
pytestmark = pytest.mark.sqlite_only

ANNA, BOB = "+48601234567", "+48601999888"
DPO = Principal("dpo", Role.ADMIN)
SPELLINGS = (ANNA, ANNA[1:], "601 234 567", "601234567", "0048601234567")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(scrub, "RETRY_DELAYS_S", (0.05, 0.1))
    monkeypatch.setattr(scrub, "SCRUB_BUSY_MS", 100)


def files_of(directory: Path) -> list[Path]:
    """Every file of the store and the keystore: main, -wal, -shm, -journal, -intake …"""
    return [p for p in directory.iterdir() if p.is_file() and ".db" in p.name]


def hits(directory: Path, needles: list[bytes]) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in files_of(directory):
        data = path.read_bytes()
        for needle in needles:
            if count := data.count(needle):
                found[f"{path.name}:{needle[:12]!r}"] = found.get(path.name, 0) + count
    return found


def held_read(path: Path) -> sqlite3.Connection:
    """Another connection, in the middle of a read transaction."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
    return db


async def seed(directory: Path) -> tuple[list[bytes], list[bytes]]:
    """Anna (two leads, each with a recording, closed long ago) and Bob; returns Anna's
    traces: (everything the store held, the keys the keystore held)."""
    _, public = crypto.generate_recipient_keypair()
    (directory / "recordings").mkdir()
    async with Store.open(directory / "ce.db", DATA_KEY, keystore=directory / "ks.db") as store, \
            KeyStore.open(directory / "ks.db") as keystore:
        vault = RecordingVault(directory / "recordings", keystore)
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"], "lead_retention_days": 30,
             "duplicate_window_s": 0}),
            time.time())
        for phone, name in ((ANNA, "Anna Nowak"), (ANNA, "Anna N."), (BOB, "Bob")):
            lead = await store.create_lead(
                widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name=name,
                email=f"{name.split()[0].lower()}@example.com",
                consent=Consent(True, True, "v1"), now=time.time())
            attempt = await store.start_attempt(lead.id, time.time())
            await seed_recording(store, vault, attempt, public, two_tones(1))
            await store.finish_attempt(attempt, Result(Outcome.CONNECTED, connected=True),
                                       time.time(), retry_at=None)
        await store.forget_deleted_pages()
    db = sqlite3.connect(directory / "ce.db")
    blobs = [bytes(b) for row in db.execute(
        "SELECT l.phone_enc, l.name_enc, l.email_enc FROM leads l WHERE l.id IN"
        " (SELECT lead_id FROM recordings) ORDER BY created_at LIMIT 2") for b in row]
    db.close()
    ks = sqlite3.connect(directory / "ks.db")
    anna_hash = FieldCipher(DATA_KEY).number_hash(ANNA)
    keys = [bytes(row[0]) for row in ks.execute(
        "SELECT wrapped_key FROM subject_keys WHERE number_hash = ?", (anna_hash,))]
    keys += [bytes(row[0]) for row in ks.execute(
        "SELECT sealed_key FROM recording_keys ORDER BY created_at LIMIT 2")]
    ks.close()
    store_traces = [s.encode() for s in SPELLINGS] + [anna_hash.encode()] + blobs
    return store_traces, keys


async def open_services(directory: Path):
    store_cm = Store.open(directory / "ce.db", DATA_KEY, keystore=directory / "ks.db")
    keys_cm = KeyStore.open(directory / "ks.db")
    store, keys = await store_cm.__aenter__(), await keys_cm.__aenter__()
    services = Services(store, vault=RecordingVault(directory / "recordings", keys))

    async def close() -> None:
        await keys_cm.__aexit__(None, None, None)
        await store_cm.__aexit__(None, None, None)
    return services, close


async def erase(directory: Path) -> None:
    services, close = await open_services(directory)
    try:
        await services.subjects.erase(DPO, ANNA)
    finally:
        await close()


async def purge(directory: Path) -> None:
    services, close = await open_services(directory)
    try:
        await Purger(services.context.store, services.context.vault).run(time.time() + 60 * DAY)
    finally:
        await close()


@pytest.mark.parametrize("held", ["ce.db", "ks.db", "ce.db-intake"])
@pytest.mark.parametrize("operation", [erase, purge])
async def test_erasure_with_a_reader_is_complete_or_says_not(tmp_path, held, operation):
    traces, keys = await seed(tmp_path)
    assert hits(tmp_path, traces + keys)  # the search can see them
    reader = held_read(tmp_path / held)
    try:
        await operation(tmp_path)
        failed = False
    except ErasureIncomplete:
        failed = True
    finally:
        reader.close()
    left = hits(tmp_path, traces + keys)
    assert failed or not left, f"reported success with {left} still in the files"
    if failed:  # the retry, with nobody reading, finishes it
        await operation(tmp_path)
        assert hits(tmp_path, traces + keys) == {}
        assert not scrub.marker_path(tmp_path / "ce.db").exists()


async def test_shred_with_a_reader_is_complete_or_says_not(tmp_path):
    _, keys = await seed(tmp_path)
    recording_keys = keys[1:]
    db = sqlite3.connect(tmp_path / "ks.db")
    ids = [row[0] for row in db.execute("SELECT recording_id FROM recording_keys"
                                        " ORDER BY created_at LIMIT 2")]
    db.close()
    reader = held_read(tmp_path / "ks.db")
    try:
        async with KeyStore.open(tmp_path / "ks.db") as keystore:
            vault = RecordingVault(tmp_path / "recordings", keystore)
            with pytest.raises(ErasureIncomplete):
                await vault.shred(ids)
    finally:
        reader.close()
    assert all(path.exists() for path in (tmp_path / "recordings").iterdir())  # kept: key is
    async with KeyStore.open(tmp_path / "ks.db") as keystore:
        await RecordingVault(tmp_path / "recordings", keystore).shred(ids)
    assert hits(tmp_path, recording_keys) == {}


async def test_erasure_while_the_engine_has_the_store_open(tmp_path):
    """The engine's own long-lived connections (its Store, with the journal, and its
    KeyStore), taking leads meanwhile, are not what blocks an erasure run by the CLI."""
    traces, keys = await seed(tmp_path)
    engine, close = await open_services(tmp_path)
    store = engine.context.store
    widget = await store.get_widget("shop")
    await store.list_leads()  # reads done: nothing held open between requests
    stop = asyncio.Event()

    async def intake() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await store.create_lead(
                widget, phone_e164=f"+4860155{n:04d}", phone_region="PL", phone_kind="mobile",
                name=None, email=None, consent=Consent(False, False, "v1"), now=time.time())
            await asyncio.sleep(0.005)

    (tmp_path / "c.toml").write_text(
        '[store]\ndatabase = "ce.db"\nrecordings_dir = "recordings"\nkeystore = "ks.db"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "CALLENGINE_ARI_PASSWORD": "x",
           "CALLENGINE_ADMIN_TOKEN": "t" * 24, "CALLENGINE_DATA_KEY": DATA_KEY_B64,
           "CALLENGINE_ACTOR": "dpo"}
    visitors = asyncio.create_task(intake())
    try:
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callengine", "--config", str(tmp_path / "c.toml"),
            "subject", "erase", ANNA, "--yes", env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await cli.communicate()
    finally:
        stop.set()
        await visitors
        await close()
    assert cli.returncode == 0, err.decode()
    assert b"erased 2 lead(s) and crypto-shredded 2 recording(s)" in out
    assert hits(tmp_path, traces + keys) == {}
