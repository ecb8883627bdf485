"""Recordings and their sample rate, without Asterisk: the sink and its summary, the store's
column (and what old rows get), and the engine when a tap refuses to start (FIFO pipe that
cannot grow): the call goes on unrecorded, the row says why, nothing is left behind."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
import wave

import pytest

from callengine import crypto
from callengine.config import DialingConfig
from callengine.crypto import FieldCipher
from callengine.engine import Engine
from callengine.flow import Strategy
from callengine.media import fifo as fifo_mod
from callengine.media.fifo import FifoTap, ensure_fifo_dir
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.audio import DEFAULT_SAMPLE_RATE, bytes_per_second
from callengine.recorder import RecordingSink
from callengine.recordings import RecordingSetup, RecordingVault, wav_header
from callengine.services.views import recording_view
from callengine.storage import KeyStore, Store
from callengine.storage.schema import MIGRATIONS, split_statements
from tests.support.engine import DATA_KEY, poll
from tests.support.fake_ari import FakeAri
from tests.support.pipes import RefusingFcntl

VISITOR = "+48601234567"


# ---- the sink ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate, per_second", [(8000, 16000), (16000, 32000)])
def test_sink_duration_follows_its_rate(tmp_path, rate, per_second):
    public = crypto.generate_recipient_keypair()[1]
    sink = RecordingSink(tmp_path, public, sample_rate=rate)
    assert sink.bytes_per_second == bytes_per_second(rate) == per_second
    sink.feed(bytes(3 * per_second // 2))
    summary = sink.close()
    assert (summary.sample_rate, summary.duration_s) == (rate, 1.5)


def test_sink_default_is_8khz_and_other_rates_are_refused(tmp_path):
    public = crypto.generate_recipient_keypair()[1]
    assert DEFAULT_SAMPLE_RATE == 8000
    assert RecordingSink(tmp_path, public).sample_rate == 8000
    with pytest.raises(ValueError, match="8000, 16000"):
        RecordingSink(tmp_path, public, sample_rate=44100)
    assert len(list(tmp_path.iterdir())) == 1  # the refused one made no file


@pytest.mark.parametrize("rate", [8000, 16000])
def test_wav_header_carries_the_rate(rate):
    pcm = bytes(range(256)) * 125  # 32,000 bytes: 2 s at 8 kHz, 1 s at 16 kHz
    with wave.open(io.BytesIO(wav_header(len(pcm), rate) + pcm)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, 1, 2)
        assert w.getnframes() / w.getframerate() == 32000 / bytes_per_second(rate)


# ---- the store ---------------------------------------------------------------------------------


async def _lead_and_attempt(store: Store):
    await store.add_agent(Agent("alice", "PJSIP/agent1"))
    await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
    widget = await store.add_widget("shop", "Shop", widget_settings_from_input({
        "group": "sales", "allowed_regions": ["PL"], "recording": "on",
        "recording_notice": "sound:notice", "whisper": "sound:beep",
    }), time.time())
    lead = await store.create_lead(
        widget, phone_e164=VISITOR, phone_region="PL", phone_kind="mobile", name=None,
        email=None, consent=Consent(False, True, "v1"), now=time.time())
    return lead


async def test_store_keeps_each_recordings_rate(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        lead = await _lead_and_attempt(store)
        attempt = await store.start_attempt(lead.id, time.time())
        for rate in (8000, 16000):
            await store.add_recording(f"r{rate}", attempt, "fifo", "k", time.time(),
                                      sample_rate=rate)
        await store.finish_recording("r8000", status="complete", now=time.time(),
                                     duration_s=2.0, bytes_in=32000, segments=1, sha256=None,
                                     problem=None)  # keeps the row's rate
        rates = {r.id: (r.sample_rate, recording_view(r)["sample_rate"])
                 for r in await store.list_recordings()}
    assert rates == {"r8000": (8000, 8000), "r16000": (16000, 16000)}


@pytest.mark.sqlite_only  # a SQLite store from before a migration
async def test_recordings_from_before_the_column_are_16khz(tmp_path):
    """A store made by the migrations before `sample_rate`, with a recording in it: after the
    upgrade that recording reads as 16 kHz, which every recording then was."""
    before = next(i for i, script in enumerate(MIGRATIONS) if "sample_rate" in script)
    path = tmp_path / "ce.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:before]:
        for statement in split_statements(script):
            db.execute(statement)
    phone_enc = FieldCipher(DATA_KEY).encrypt(VISITOR, "leads.phone:lead-1")
    db.execute("INSERT INTO leads (id, widget_id, phone_hash, phone_enc, phone_region,"
               " phone_kind, consent_marketing, consent_recording, clause_version, status,"
               " created_at, updated_at) VALUES ('lead-1', 'shop', 'h', ?, 'PL', 'mobile', 0,"
               " 1, 'v1', 'done', 1, 1)", (phone_enc,))
    db.execute("INSERT INTO recordings (id, lead_id, attempt_id, route, key_id, status,"
               " started_at, duration_s, bytes) VALUES ('old', 'lead-1', 'a-1', 'fifo', 'k',"
               " 'complete', 1, 2.0, 64000)")
    db.execute(f"PRAGMA user_version = {before}")
    db.commit()
    db.close()
    async with Store.open(path, DATA_KEY) as store:
        old = await store.get_recording("old")
    assert old.sample_rate == 16000 and old.bytes / bytes_per_second(old.sample_rate) == 2.0


# ---- the engine when the tap refuses -------------------------------------------------------------


class NoMixMonitor:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def mix_monitor(self, channel, file, options=""):
        self.calls.append((channel, file, options))


def refusing_engine(tmp_path, monkeypatch, store: Store, keystore: KeyStore, ari: FakeAri,
                    ami: NoMixMonitor) -> tuple[Engine, object]:
    """An engine that records through a FIFO tap that refuses to start (the pipe can't be
    enlarged); returns it and the FIFO directory."""
    monkeypatch.setattr(fifo_mod, "fcntl", RefusingFcntl())
    fifo_dir = tmp_path / "fifo"
    ensure_fifo_dir(fifo_dir, None)
    public = crypto.generate_recipient_keypair()[1]
    vault = RecordingVault(tmp_path / "recordings", keystore)
    vault.directory.mkdir()
    setup = RecordingSetup("fifo", vault, public,
                           lambda: FifoTap(ami, fifo_dir, "/asterisk/fifo", None))
    return Engine(store, ari, DialingConfig(max_concurrent_calls=1, poll_interval_s=0.05),
                  recording=setup), fifo_dir


async def test_tap_that_cannot_start_leaves_the_call_unrecorded(tmp_path, monkeypatch, caplog):
    """The FIFO pipe cannot be enlarged (EPERM over fs.pipe-user-pages-soft): no MixMonitor,
    no FIFO; the call is bridged all the same; the recording row is 'failed' with the
    precise reason; the log line names the lead and the recording, never the number."""
    ami = NoMixMonitor()
    ari = FakeAri()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        engine, fifo_dir = refusing_engine(tmp_path, monkeypatch, store, keystore, ari, ami)
        lead = await _lead_and_attempt(store)
        task = asyncio.create_task(engine.run())
        try:
            async def connected():
                current = await store.get_lead(lead.id)
                return current.progress == "connected" and current

            await poll(connected)
            recording, = await store.list_recordings(lead_id=lead.id)
            assert recording.status == "failed"
            assert recording.problem == (
                "tap failed to start: FIFO pipe could not be enlarged to 524288 bytes (EPERM): "
                "raise fs.pipe-user-pages-soft or run the engine with CAP_SYS_RESOURCE")
            assert recording.sample_rate == 8000 and recording.bytes == 0
            assert ami.calls == [] and list(fifo_dir.iterdir()) == []
            assert fifo_mod.active_fifo_ids() == set()
            bridge, = ari.bridges.values()
            assert len(bridge) == 2  # agent and visitor talk, unrecorded
            # The visitor hangs up: an ordinary connected call, nothing else left.
            ari.far_end_hangs_up("@pstn")

            async def done():
                current = await store.get_lead(lead.id)
                return current.status == "done" and current

            finished = await poll(done)
            assert finished.outcome == "connected"
            assert ari.channels == {} and ari.bridges == {}
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    line, = [r.getMessage() for r in caplog.records if "could not start" in r.getMessage()]
    assert line.startswith(f"[lead {lead.id} #1] recording {recording.id} could not start: "
                           "FIFO pipe could not be enlarged to 524288 bytes (EPERM)")
    assert "601234567" not in caplog.text


# ---- a recording an engine's stop left behind ----------------------------------------------------


@pytest.mark.parametrize("torn_pages", [0, 1, 5])
async def test_interrupted_recording_counts_only_whole_segments(tmp_path, torn_pages):
    """An engine killed while writing a segment leaves a short last slot (the kernel cuts a
    write between pages): the row's duration is what a recovering read returns, not more."""
    from callengine.recordings import close_interrupted_recordings

    private, public = crypto.generate_recipient_keypair()
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        vault = RecordingVault(tmp_path / "recordings", keystore, [private])
        vault.directory.mkdir()
        lead = await _lead_and_attempt(store)
        attempt = await store.start_attempt(lead.id, time.time())
        file_key = await vault.new_file_key("r-killed", public, time.time())
        sink = RecordingSink(vault.directory, file_key, recording_id="r-killed")
        await store.add_recording("r-killed", attempt, "fifo", "k", time.time(),
                                  sample_rate=sink.sample_rate)
        sink.feed(bytes(range(256)) * 1100)  # 281,600 bytes: 4 whole segments, the 5th in memory
        path = next(vault.directory.iterdir())
        whole = path.stat().st_size
        if torn_pages:  # the 5th segment's write, cut by the kill after some pages
            sink.feed(bytes(65536))
            with open(path, "r+b") as f:
                f.truncate((whole // 4096 + torn_pages) * 4096)
        await close_interrupted_recordings(store, vault, time.time, [attempt.id])
        recording, = await store.list_recordings()
        plain = await vault.open(recording)
        pcm = b"".join(plain.chunks)
        sink.abort()
    assert recording.status == "incomplete" and recording.segments == 4
    assert len(pcm) == 65480 + 3 * 65520
    assert recording.duration_s == pytest.approx(len(pcm) / bytes_per_second(sink.sample_rate))
