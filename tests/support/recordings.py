"""Seeding recordings the way the engine makes them: a key pair per recording, its private key
sealed in the keystore, the audio encrypted as it is fed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from callengine import crypto
from callengine.model import Attempt
from callengine.audio import DEFAULT_SAMPLE_RATE
from callengine.recorder import RecordingSink, new_recording_id
from callengine.recordings import RecordingVault, import_prompt
from callengine.storage import Store

NOTICE_NAME = "recording-notice"
NOTICE = f"sound:/var/lib/callengine-asterisk/prompts/{NOTICE_NAME}"  # as the widget names it


def recipient_keys(directory: Path) -> tuple[bytes, Path]:
    """A recording key pair in `directory`: the private key, and the public key's file."""
    private, public = crypto.generate_recipient_keypair()
    crypto.save_public_key(directory / "recording.pub", public)
    crypto.save_private_key(directory / "recording.key", private)
    return private, directory / "recording.pub"


def recording_notice(asterisk: Any, directory: Path) -> str:
    """A recording notice made the way an administrator would: any audio file, converted into
    the test Asterisk's prompts."""
    source = directory / "notice.ogg"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(source), "synth", "0.8",
                    "sine", "660"], check=True)
    return import_prompt(source, asterisk.host_path("/var/lib/callengine-asterisk/prompts"),
                         NOTICE_NAME)


def two_tones(seconds: float, rate: int = DEFAULT_SAMPLE_RATE) -> bytes:
    """The mix of a test call: the agent's 440 Hz and the visitor's 1000 Hz."""
    t = np.arange(int(seconds * rate)) / rate
    signal = 6000 * np.sin(2 * np.pi * 440 * t) + 6000 * np.sin(2 * np.pi * 1000 * t)
    return signal.astype("<i2").tobytes()


async def seed_recording(store: Store, vault: RecordingVault, attempt: Attempt,
                         recipient_public_key: bytes, pcm: bytes, *,
                         sample_rate: int = DEFAULT_SAMPLE_RATE,
                         started_at: float | None = None) -> str:
    """pcm: 16-bit mono at sample_rate (two_tones(seconds, sample_rate))."""
    recording_id = new_recording_id()
    file_key = await vault.new_file_key(recording_id, recipient_public_key, time.time())
    sink = RecordingSink(vault.directory, file_key, recording_id=recording_id,
                         sample_rate=sample_rate)
    await store.add_recording(recording_id, attempt, "rtp", sink.key_id,
                              started_at if started_at is not None else time.time(),
                              sample_rate=sample_rate)
    sink.feed(pcm)
    summary = sink.close()
    await store.finish_recording(recording_id, status="complete", now=time.time(),
                                 duration_s=summary.duration_s, bytes_in=summary.bytes_in,
                                 segments=summary.segments, sha256=summary.sha256, problem=None)
    return recording_id
