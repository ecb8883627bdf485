"""Recording end to end through the engine, against the real Asterisk with sipp tones:
the visitor hears the notice, the bridged call is tapped (FIFO and RTP routes), the audio is
encrypted as it streams, and no plaintext audio ever rests on disk."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from callengine import crypto
from callengine.app import running
from callengine.audio import DEFAULT_SAMPLE_RATE, bytes_per_second
from callengine.recordings import RecordingVault
from callengine.storage import KeyStore, Store
from tests.support.audio import assert_both_tones, decrypt, scan_for_plaintext
from tests.support.engine import (
    DATA_KEY,
    EngineProcess,
    add_widget,
    make_config,
    wait_for_lead,
    config_port,
    free_port,
    poll,
    wait_http,
    write_config,
)
from tests.support.phones import Phone
from tests.support.recordings import NOTICE, recipient_keys, recording_notice

pytestmark = pytest.mark.asterisk

@pytest.fixture
def keys(tmp_path):
    return recipient_keys(tmp_path)


@pytest.fixture
def notice(asterisk, tmp_path):
    return recording_notice(asterisk, tmp_path)


async def file_key(keystore_path, recording_id: str, private: bytes) -> bytes:
    """The recording's own key: its keystore entry opened with the recipient's private key."""
    async with KeyStore.open(keystore_path) as keystore:
        return await RecordingVault(Path("."), keystore, [private]).file_key(recording_id)


async def submit(base_url: str, widget, *, recording_consent: bool) -> str:
    body = {"phone": "+48601234567", "clause_version": "v1",
            "consent": {"marketing": False, "recording": recording_consent}}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/api/v1/widgets/{widget.public_key}/leads",
                                json=body) as response:
            assert response.status == 201, await response.text()
            return (await response.json())["id"]


async def watch_progress(store: Store, lead_id: str, timeout: float = 40) -> list[str]:
    """Every progress value the lead shows until it is done (polled every 20 ms)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lead = await store.get_lead(lead_id)
        if lead.progress and (not seen or seen[-1] != lead.progress):
            seen.append(lead.progress)
        if lead.status == "done":
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"lead not done; progress so far {seen}")


@pytest.mark.parametrize("route", ["fifo", "rtp"])
@pytest.mark.parametrize("rate", [8000, 16000])
async def test_recorded_call_holds_both_parties_encrypted(
    asterisk, tmp_path, keys, notice, route, rate
):
    private, public_file = keys
    config = make_config(tmp_path, asterisk, recording_route=route, public_key_file=public_file,
                         sample_rate=rate)
    watched_dirs = [tmp_path, asterisk.state_dir]
    async with running(config) as service, \
            Phone(5081, "answer", tone_hz=440, answer_after_ms=200), \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300, hangup_after_ms=5000):
        widget = await add_widget(service.store, agents=("agent1",), recording="on",
                                  recording_notice=NOTICE)
        lead_id = await submit(service.base_url, widget, recording_consent=True)
        progress_task = asyncio.create_task(watch_progress(service.store, lead_id))
        await wait_for_lead(service.store, lead_id, status="calling", progress="connected")
        await asyncio.sleep(2.5)
        assert scan_for_plaintext(*watched_dirs) == []  # mid-call: nothing but ciphertext
        progress = await progress_task
        recording, = await service.store.list_recordings(lead_id=lead_id)
        attempt, = await service.store.attempts_for(lead_id)
    assert progress == ["ringing-agents", "whisper", "dialling-visitor", "recording-notice",
                        "connected"]
    assert recording.status == "complete" and recording.problem is None, recording
    assert recording.route == route and recording.sample_rate == rate
    path = config.recordings_dir / recording.file_name
    assert path.stat().st_mode & 0o777 == 0o600
    key = await file_key(config.keystore, recording.id, private)
    pcm = decrypt(path, key)
    assert len(pcm) == recording.bytes
    # The recording spans the talk: bridged → hangup (MixMonitor/RTP start a few ms late).
    seconds = len(pcm) / bytes_per_second(rate)
    assert abs(seconds - attempt.talk_s) < 0.6, (seconds, attempt.talk_s)
    assert recording.duration_s == pytest.approx(seconds)
    assert_both_tones(pcm, rate)
    assert scan_for_plaintext(*watched_dirs) == []
    assert crypto.verify(path, [key]).authenticated


@pytest.mark.parametrize(
    "recording, consent, requires_consent",
    [("off", True, True), ("on", False, True)],
    ids=["recording-off", "no-consent"],
)
async def test_no_recording_no_notice(asterisk, tmp_path, keys, notice, recording, consent,
                                      requires_consent):
    _, public_file = keys
    config = make_config(tmp_path, asterisk, public_key_file=public_file)
    async with running(config) as service, \
            Phone(5081, "answer", tone_hz=440, answer_after_ms=200), \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300, hangup_after_ms=1500):
        widget = await add_widget(service.store, agents=("agent1",), recording=recording,
                                  recording_notice=NOTICE,
                                  recording_requires_consent=requires_consent)
        lead_id = await submit(service.base_url, widget, recording_consent=consent)
        progress = await watch_progress(service.store, lead_id)
        lead = await service.store.get_lead(lead_id)
        assert await service.store.list_recordings(lead_id=lead_id) == []
    assert lead.outcome == "connected"
    assert "recording-notice" not in progress
    assert not any(config.recordings_dir.glob("*")), list(config.recordings_dir.glob("*"))
    assert not any(asterisk.state_dir.joinpath("fifo").iterdir())


async def _changed(path: Path, mtime_ns: int) -> bool:
    return path.stat().st_mtime_ns != mtime_ns


async def test_engine_killed_mid_call_recording_kept_up_to_last_segment(
    asterisk, tmp_path, keys, notice
):
    """SIGKILL mid-call, while MixMonitor writes into the FIFO, then start again. The
    watchdog's interval is left at its default (5 s): the dead engine's FIFO must be gone as
    soon as the restarted engine answers, not at some later tick."""
    private, public_file = keys
    config_path, env = write_config(tmp_path, asterisk, port=free_port())
    fifo_dir = asterisk.state_dir / "fifo"
    with open(config_path, "a") as f:
        f.write(f"""
[ami]
user = "{asterisk.ami.username}"

[recording]
route = "fifo"
public_key_file = "{public_file}"
fifo_dir = "{fifo_dir}"
fifo_group = {asterisk.group_id if asterisk.group_id is not None else 0}
""")
    env["CALLENGINE_AMI_SECRET"] = asterisk.ami.secret
    async with Store.open(tmp_path / "callengine.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), recording="on",
                                  recording_notice=NOTICE, whisper=None)
    engine = EngineProcess(config_path, env)
    try:
        async with Phone(5081, "answer", tone_hz=440, answer_after_ms=200), \
                Phone(5070, "answer", tone_hz=1000, answer_after_ms=200):
            engine.start()
            base_url = f"http://127.0.0.1:{config_port(config_path)}"
            await wait_http(base_url)
            lead_id = await submit(base_url, widget, recording_consent=True)
            async with Store.open(tmp_path / "callengine.db", DATA_KEY) as store:
                await wait_for_lead(store, lead_id, status="calling", progress="connected")
                # > 2 sealed segments of 64 KiB (≈4.1 s each at 8 kHz), plus MixMonitor's
                # buffering (32 KiB blocks, ≈2 s) and one frame beyond the second segment.
                await asyncio.sleep(2 * 65520 / bytes_per_second(DEFAULT_SAMPLE_RATE) + 2.5)
                # Kill shortly after one of MixMonitor's writes (every ≈2 s, 32 KiB blocks): the
                # FIFO looks busy to a watchdog that goes by the time of the last write. Not in
                # the write's first 0.5 s, while the engine may be sealing a segment: a kill
                # there tears the last segment, which makes the pcm-length assertions below
                # depend on where the kill fell (torn segments are left out of the row and of
                # a recovering read alike: tests/recordings/test_recorder.py).
                fifo, = fifo_dir.iterdir()
                before = fifo.stat().st_mtime_ns
                await poll(lambda: _changed(fifo, before), timeout=5)
                await asyncio.sleep(0.5)
                engine.kill()
                assert scan_for_plaintext(tmp_path, asterisk.state_dir) == []
                killed_log = len(engine.log())
                engine.start()  # releases the FIFO, hangs up the orphans, marks the file
                await wait_http(base_url)
                assert sorted(p.name for p in fifo_dir.iterdir()) == [], \
                    "the restarted engine answers, but the dead engine's FIFO is still there"
                lead = await wait_for_lead(store, lead_id, timeout=30)
                recording, = await store.list_recordings(lead_id=lead_id)
                # … once its events are connected: wait for that before stopping it.
                left = await asyncio.to_thread(asterisk.wait_idle, 10)
                assert left == ([], []), left
    finally:
        engine.stop()
    assert lead.cause == "interrupted: the engine restarted", engine.log()
    # Released before the orphans' hangup (a MixMonitor blocked in open() would block that).
    restarted = engine.log()[killed_log:]
    assert restarted.index("released orphaned recording FIFO") < restarted.index(
        "hanging up orphaned channel"), restarted
    assert recording.status == "incomplete"
    path = tmp_path / "recordings" / recording.file_name
    key = await file_key(tmp_path / "keystore" / "keystore.db", recording.id, private)
    with pytest.raises(crypto.TruncatedError):
        decrypt(path, key)
    pcm = decrypt(path, key, recover=True)
    # Every sealed segment is there and authentic: the first holds 65,480 plaintext bytes
    # (the stream header shares it), the others 65,520; the one in memory died with the engine.
    assert len(pcm) >= 65480 + 65520
    assert (len(pcm) - 65480) % 65520 == 0
    assert recording.sample_rate == DEFAULT_SAMPLE_RATE
    assert recording.duration_s == pytest.approx(len(pcm) / bytes_per_second(DEFAULT_SAMPLE_RATE))
    assert_both_tones(pcm, DEFAULT_SAMPLE_RATE)
    assert not any((asterisk.state_dir / "fifo").iterdir())  # the watchdog released the FIFO
