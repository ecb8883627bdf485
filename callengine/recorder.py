"""Recordings: a media tap feeds PCM into a RecordingSink, which encrypts it as it arrives.

The sink never holds more than one segment of plaintext (inside crypto.RecordingWriter) and
writes only ciphertext, to a file named by a random id: nothing in a path says whose call it
is. The taps (how audio leaves Asterisk) live in callengine/media/; they all share the small
`Tap` protocol below so the engine can switch routes by configuration.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from callengine.audio import DEFAULT_SAMPLE_RATE, bytes_per_second, check_sample_rate
from callengine.crypto import RecordingWriter

FILE_SUFFIX = ".cerec"


def new_recording_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class RecordingSummary:
    recording_id: str
    path: Path
    key_id: str
    bytes_in: int
    segments: int
    sha256: str | None
    complete: bool
    sample_rate: int = DEFAULT_SAMPLE_RATE
    tracks: int = 1

    @property
    def duration_s(self) -> float:
        return self.bytes_in / bytes_per_second(self.sample_rate, self.tracks)


class RecordingSink:
    """One encrypted recording being written. Not thread-safe: one tap feeds one sink."""

    def __init__(
        self,
        directory: Path,
        recipient_public_key: bytes,
        *,
        recording_id: str | None = None,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        tracks: int = 1,
    ):
        self.recording_id = recording_id or new_recording_id()
        self.path = Path(directory) / f"{self.recording_id}{FILE_SUFFIX}"
        self.sample_rate = check_sample_rate(sample_rate)  # the taps take their format from it
        self.tracks = tracks
        self.bytes_in = 0
        self._writer = RecordingWriter(self.path, recipient_public_key)

    @property
    def key_id(self) -> str:
        return self._writer.key_id

    @property
    def bytes_per_second(self) -> int:
        return bytes_per_second(self.sample_rate, self.tracks)

    @property
    def closed(self) -> bool:
        return self._writer.closed

    def feed(self, pcm: bytes | memoryview) -> None:
        self._writer.write(pcm)
        self.bytes_in += len(pcm)

    def close(self) -> RecordingSummary:
        """The stream ended normally: seal the last segment (the file is complete)."""
        if not self._writer.closed:
            self._writer.close()
        return self._summary(complete=True)

    def abort(self) -> RecordingSummary:
        """The stream broke: keep every sealed segment, leave the file marked incomplete."""
        if not self._writer.closed:
            self._writer.abort()
        return self._summary(complete=False)

    def _summary(self, complete: bool) -> RecordingSummary:
        return RecordingSummary(
            recording_id=self.recording_id,
            path=self.path,
            key_id=self._writer.key_id,
            bytes_in=self.bytes_in,
            segments=self._writer.segments_written,
            sha256=self._writer.sha256,
            complete=complete,
            sample_rate=self.sample_rate,
            tracks=self.tracks,
        )


@dataclass(frozen=True)
class TapReport:
    """How a tap's stream went, beside what the sink wrote."""

    summary: RecordingSummary
    expected_bytes: int  # from the call's duration: what a lossless tap delivers
    lost_bytes: int  # known losses (RTP sequence gaps filled with silence, short FIFO reads)
    problem: str | None = None  # why the recording is short or broken, if it is


class Tap(Protocol):
    """Takes one bridged call's audio out of Asterisk into a sink, never via a plaintext file."""

    async def start(
        self,
        sink: RecordingSink,
        *,
        channel_id: str,
        channel_name: str,
        bridge_id: str,
        tap_channel_id: str,
    ) -> None:
        """Begin streaming, in the sink's sample rate. channel_* name a party of the bridged
        call; tap_channel_id is the id a tap must use for any channel it creates (the engine
        routes its events). Raises if the call cannot be recorded safely; then nothing of the
        tap is left (the sink is the caller's to abort)."""

    async def finish(self, *, talk_s: float, timeout: float = 5.0) -> TapReport:
        """The call ended: drain what is left, close the sink, report."""
