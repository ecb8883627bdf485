"""Playback, export and verify through the services, as a user reaches them: an altered file is
never served as an "incomplete" recording (issue 11, finding 3).

A recording the store marks complete reads strictly; one marked incomplete reads in recovery
mode (its authentic prefix), and even there a modified segment is tampering."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callengine import crypto
from callengine.access import Principal, Role
from callengine.audio import bytes_per_second
from callengine.crypto import TamperedError, TruncatedError, WrongKeyError
from callengine.model import RECORDING_INCOMPLETE, Agent, Consent, widget_settings_from_input
from callengine.flow import Strategy
from callengine.recorder import RecordingSink, new_recording_id
from callengine.recordings import RecordingVault
from callengine.services import Services
from callengine.storage import KeyStore, Store
from tests.support.engine import DATA_KEY
from tests.support.recordings import seed_recording, two_tones

ADMIN = Principal("ops", Role.ADMIN)
SHORT_S = 2  # 32,000 bytes at 8 kHz: one segment, shorter than 65,480 bytes
LONG_S = 10  # 160,000 bytes: segments 0 and 1 sealed, the rest buffered when the engine dies
SALT = 99 + 5  # a byte of Tink's salt in the header


@pytest.fixture
async def world(tmp_path):
    private, public = crypto.generate_recipient_keypair()
    (tmp_path / "recordings").mkdir()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        vault = RecordingVault(tmp_path / "recordings", keystore, [private])
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"]}), time.time())
        lead = await store.create_lead(
            widget, phone_e164="+48601234567", phone_region="PL", phone_kind="mobile",
            name=None, email=None, consent=Consent(False, True, "v1"), now=time.time())
        attempt = await store.start_attempt(lead.id, time.time())
        complete = await seed_recording(store, vault, attempt, public, two_tones(SHORT_S))
        # An engine killed mid-call: the sealed segments are on disk, the row says incomplete.
        incomplete = new_recording_id()
        file_key = await vault.new_file_key(incomplete, public, time.time())
        sink = RecordingSink(vault.directory, file_key, recording_id=incomplete)
        await store.add_recording(incomplete, attempt, "rtp", sink.key_id, time.time(),
                                  sample_rate=8000)
        sink.feed(two_tones(LONG_S))
        summary = sink.abort()
        await store.finish_recording(
            incomplete, status=RECORDING_INCOMPLETE, now=time.time(), duration_s=LONG_S,
            bytes_in=summary.bytes_in, segments=summary.segments, sha256=summary.sha256,
            problem="the engine stopped during the recording")
        yield Services(store, vault=vault), tmp_path / "recordings", complete, incomplete


def alter(directory: Path, recording_id: str, how: str) -> None:
    path = directory / f"{recording_id}.cerec"
    data = bytearray(path.read_bytes())
    if how == "salt":
        data[SALT] ^= 0x10
    elif how == "segment size":
        data[17] ^= 0x01  # 65,536 -> 65,537: still a valid size
    elif how == "body":
        data[crypto.HEADER_SIZE + 100] ^= 0x01
    elif how == "last byte":
        data[-1] ^= 0x80
    elif how == "garbage":
        data += b"\x00" * 13
    elif how == "cut mid-segment":
        del data[-7:]
    path.write_bytes(bytes(data))


async def outcomes(services: Services, recording_id: str, out: Path):
    """What play, export and verify say: the exception each raised (or the Plaintext)."""
    got = []
    for action in ("play", "export"):
        try:
            if action == "play":
                plain = await services.recordings.play(ADMIN, recording_id)
            else:
                plain = await services.recordings.export(ADMIN, recording_id, out, "wav")
            got.append(plain)
        except crypto.RecordingError as exc:
            got.append(exc)
    (result,) = await services.recordings.verify([recording_id])
    got.append(result.error if result.error is not None else result.report)
    return got


async def test_untouched_recordings_play(world, tmp_path):
    services, _, complete, incomplete = world
    plain = await services.recordings.play(ADMIN, complete)
    assert plain.complete and plain.size == SHORT_S * bytes_per_second(8000)
    plain = await services.recordings.play(ADMIN, incomplete)
    assert not plain.complete and plain.size == 65_480 + 65_520  # the two sealed segments
    (result,) = await services.recordings.verify([incomplete])
    assert result.ok and not result.report.complete and "INCOMPLETE" in str(result.report)


@pytest.mark.parametrize("how", ["salt", "segment size", "body", "last byte", "garbage",
                                 "cut mid-segment"])
@pytest.mark.parametrize("which", ["complete", "incomplete"])
async def test_an_altered_file_is_never_served(world, tmp_path, how, which):
    services, directory, complete, incomplete = world
    recording_id = complete if which == "complete" else incomplete
    alter(directory, recording_id, how)
    for got in await outcomes(services, recording_id, tmp_path / "out.wav"):
        assert isinstance(got, TamperedError), got
    assert not (tmp_path / "out.wav").exists()


async def test_a_complete_recording_cut_at_a_boundary_is_not_served(world, tmp_path):
    """Marked complete, a file ending without its last segment is an error, not a prefix."""
    services, _, _, incomplete = world
    # The engine-killed file ends at a segment boundary; say in the store it was complete.
    await services.context.store.finish_recording(
        incomplete, status="complete", now=time.time(), duration_s=1.0, bytes_in=1,
        segments=2, sha256=None, problem=None)
    for got in await outcomes(services, incomplete, tmp_path / "out.wav"):
        assert isinstance(got, TruncatedError) and not isinstance(got, WrongKeyError), got
