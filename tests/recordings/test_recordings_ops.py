"""Operating on stored recordings, no Asterisk needed: the CLI (list, verify, export, delete),
the admin API (playback decrypted on the fly, crypto-shred), and what each refuses."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine import cli, crypto
from callengine.audio import DEFAULT_SAMPLE_RATE, bytes_per_second
from callengine.flow import Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.recordings import RecordingUnavailable, RecordingVault
from callengine.storage import KeyStore, Store
from tests.support.engine import DATA_KEY, DATA_KEY_B64
from callengine.services import Services
from callengine.web import WebDeps, make_app
from tests.support.audio import assert_both_tones, decrypt
from tests.support.recordings import seed_recording, two_tones

ADMIN = "admin-token-0123456789abcdef"
SECONDS = 5  # > one 64 KiB segment at 8 kHz: a bit flip mid-file hits a non-final segment


@pytest.fixture
def setup(tmp_path, monkeypatch, request):
    """A store with one recorded lead, a config file pointing at it, and the key pair. The
    recording's sample rate: the default, or the test's indirect parameter."""
    rate = getattr(request, "param", DEFAULT_SAMPLE_RATE)
    private, public = crypto.generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "rec.key", private)
    crypto.save_public_key(tmp_path / "rec.pub", public)
    (tmp_path / "callengine.toml").write_text(
        '[store]\ndatabase = "ce.db"\nrecordings_dir = "recordings"\nkeystore = "ks.db"\n'
        '[recording]\nroute = "rtp"\npublic_key_file = "rec.pub"\n'
        'private_key_files = ["rec.key"]\n'
    )
    (tmp_path / "nokey.toml").write_text(
        '[store]\ndatabase = "ce.db"\nrecordings_dir = "recordings"\nkeystore = "ks.db"\n'
    )
    monkeypatch.setenv("CALLENGINE_ARI_PASSWORD", "ari-secret")
    monkeypatch.setenv("CALLENGINE_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("CALLENGINE_DATA_KEY", DATA_KEY_B64)
    (tmp_path / "recordings").mkdir()

    async def make() -> str:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
                KeyStore.open(tmp_path / "ks.db") as keystore:
            vault = RecordingVault(tmp_path / "recordings", keystore)
            await store.add_agent(Agent("alice", "PJSIP/agent1"))
            await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
            widget = await store.add_widget(
                "shop", "Shop", widget_settings_from_input(
                    {"group": "sales", "allowed_regions": ["PL"]}), time.time())
            lead = await store.create_lead(
                widget, phone_e164="+48601234567", phone_region="PL", phone_kind="mobile",
                name=None, email=None, consent=Consent(False, True, "v1"), now=time.time())
            attempt = await store.start_attempt(lead.id, time.time())
            return await seed_recording(store, vault, attempt, public,
                                        two_tones(SECONDS, rate), sample_rate=rate)

    recording_id = asyncio.run(make())
    return tmp_path, recording_id, private


def run_cli(tmp_path, *args, config="callengine.toml") -> int:
    return cli.main(["--config", str(tmp_path / config), *args])


def test_list_masks_numbers(setup, capsys):
    tmp_path, recording_id, _ = setup
    assert run_cli(tmp_path, "recording", "list") == 0
    out = capsys.readouterr().out
    assert recording_id in out and "+48 *** *** 567" in out
    assert "601234567" not in out


def test_verify_authenticates_and_catches_tampering(setup, capsys):
    tmp_path, recording_id, _ = setup
    assert run_cli(tmp_path, "recording", "verify") == 0
    assert "AUTHENTICATED" in capsys.readouterr().out
    assert run_cli(tmp_path, "recording", "verify", config="nokey.toml") == 0
    assert "structure only" in capsys.readouterr().out
    path = tmp_path / "recordings" / f"{recording_id}.cerec"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert run_cli(tmp_path, "recording", "verify") == 1
    assert "FAILED: TamperedError" in capsys.readouterr().out


@pytest.mark.parametrize("setup", [8000, 16000], indirect=True)
@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg"])
def test_export_decrypts_to_audio(setup, capsys, fmt):
    """The WAV header and ffmpeg's input rate are the recording's own: read at another rate,
    3 s would last 1.5 or 6 s and the tones would sit at the wrong frequencies."""
    tmp_path, recording_id, _ = setup
    rate = recording_rate(tmp_path, recording_id)
    out = tmp_path / f"call.{fmt}"
    assert run_cli(tmp_path, "recording", "export", recording_id, "--out", str(out)) == 0
    assert f"exported {SECONDS:.1f} s ({rate} Hz)" in capsys.readouterr().out
    assert out.stat().st_mode & 0o777 == 0o600
    if fmt == "wav":
        with wave.open(str(out)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, 1, 2)
            pcm = w.readframes(w.getnframes())
    else:
        from pydub import AudioSegment

        audio = AudioSegment.from_file(out, format=fmt)
        assert audio.frame_rate == rate
        pcm = audio.set_channels(1).set_sample_width(2).raw_data
    assert abs(len(pcm) / bytes_per_second(rate) - SECONDS) < 0.1
    assert_both_tones(pcm, rate)


def recording_rate(tmp_path, recording_id: str) -> int:
    async def get() -> int:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
            return (await store.get_recording(recording_id)).sample_rate

    return asyncio.run(get())


def test_export_without_key_is_refused_clearly(setup, capsys):
    tmp_path, recording_id, _ = setup
    out = tmp_path / "call.wav"
    assert run_cli(tmp_path, "recording", "export", recording_id, "--out", str(out),
                   config="nokey.toml") == 1
    assert "no private key" in capsys.readouterr().err
    assert not out.exists()
    # … and works on "another machine" given the key file
    assert run_cli(tmp_path, "recording", "export", recording_id, "--out", str(out),
                   "--key", str(tmp_path / "rec.key"), config="nokey.toml") == 0


def test_delete_crypto_shreds(setup, capsys):
    tmp_path, recording_id, _ = setup
    path = tmp_path / "recordings" / f"{recording_id}.cerec"
    assert run_cli(tmp_path, "recording", "delete", recording_id) == 0
    assert "crypto-shredded" in capsys.readouterr().out
    assert not path.exists()
    assert run_cli(tmp_path, "recording", "list") == 0
    assert recording_id not in capsys.readouterr().out
    assert run_cli(tmp_path, "recording", "list", "--all") == 0
    assert '"status": "deleted"' in capsys.readouterr().out
    assert run_cli(tmp_path, "recording", "export", recording_id, "--out",
                   str(tmp_path / "x.wav")) == 1


async def test_shred_destroys_the_keys_before_the_file(setup, monkeypatch):
    """If removing the file fails (crash, full disk), what is left can't be decrypted: the
    keystore entry is gone and the file's own wrapped key is overwritten."""
    tmp_path, recording_id, private = setup
    path = tmp_path / "recordings" / f"{recording_id}.cerec"
    async with KeyStore.open(tmp_path / "ks.db") as keystore:
        vault = RecordingVault(tmp_path / "recordings", keystore, [private])
        file_key = await vault.file_key(recording_id)  # what a thief could have had before
        monkeypatch.setattr(Path, "unlink", lambda *a, **k: (_ for _ in ()).throw(
            OSError("disk gone")))
        with pytest.raises(OSError):
            await vault.shred([recording_id])
        monkeypatch.undo()
        assert path.exists()
        with pytest.raises(RecordingUnavailable, match="crypto-shredded"):
            await vault.file_key(recording_id)
    with pytest.raises(crypto.RecordingError):  # even the old file key no longer opens it
        decrypt(path, [file_key])


def test_a_copy_of_the_file_is_useless_after_the_shred(setup, capsys):
    """A backup copy of the ciphertext can't be opened once the keystore entry is gone."""
    tmp_path, recording_id, _ = setup
    path = tmp_path / "recordings" / f"{recording_id}.cerec"
    copy = tmp_path / "copy.cerec"
    copy.write_bytes(path.read_bytes())
    assert run_cli(tmp_path, "recording", "delete", recording_id) == 0
    path.write_bytes(copy.read_bytes())  # "restored from a backup"
    assert run_cli(tmp_path, "recording", "verify", recording_id) == 1
    assert "crypto-shredded" in capsys.readouterr().out


async def test_api_playback_and_delete(setup):
    tmp_path, recording_id, private = setup
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        no_key = make_app(WebDeps(Services(store, vault=RecordingVault(tmp_path / "recordings", keystore)),
                                  ADMIN))
        async with TestClient(TestServer(no_key)) as client:
            response = await client.get(f"/api/v1/recordings/{recording_id}/audio", headers=auth)
            assert response.status == 409
            assert (await response.json())["type"].endswith("playback-unavailable")
        app = make_app(WebDeps(Services(store, vault=RecordingVault(
            tmp_path / "recordings", keystore, [private])), ADMIN))
        async with TestClient(TestServer(app)) as client:
            url = f"/api/v1/recordings/{recording_id}/audio"
            assert (await client.get(url)).status == 401
            response = await client.get(url, headers=auth)
            assert response.status == 200 and response.content_type == "audio/wav"
            body = await response.read()
            with wave.open(io.BytesIO(body)) as w:
                assert w.getframerate() == DEFAULT_SAMPLE_RATE  # the recording's own
                pcm = w.readframes(w.getnframes())
            assert len(pcm) == SECONDS * bytes_per_second(DEFAULT_SAMPLE_RATE)
            assert_both_tones(pcm, DEFAULT_SAMPLE_RATE)
            listing = await client.get("/api/v1/recordings", headers=auth)
            assert "601234567" not in await listing.text()
            assert (await client.delete(f"/api/v1/recordings/{recording_id}",
                                        headers=auth)).status == 204
            assert (await client.get(url, headers=auth)).status == 404
    assert not (tmp_path / "recordings" / f"{recording_id}.cerec").exists()
