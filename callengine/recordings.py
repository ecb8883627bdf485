"""Recordings after the tap: recording a call (key, file, row, tap; finishing it; closing the
ones a killed engine left open), operations on stored recordings shared by the CLI and the
admin API (verify, decrypt to a stream, export, crypto-shred), and importing the prompts
Asterisk plays (recording notice).

Plaintext audio exists only in memory here, on its way to an explicit destination (an HTTP
response, an export file the operator asked for). pydub is used to convert prompts (not personal
data); exports to MP3/OGG pipe PCM into ffmpeg's stdin instead of going through pydub, because
pydub's export writes a temporary WAV file to disk — a plaintext copy of the call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callengine import crypto
from callengine.audio import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE, bytes_per_second
from callengine.model import (
    RECORDING_COMPLETE,
    RECORDING_FAILED,
    RECORDING_INCOMPLETE,
    Attempt,
    Recording,
)
from callengine.recorder import FILE_SUFFIX, RecordingSink, Tap, new_recording_id
from callengine.storage import KeyStore, Store

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("wav", "mp3", "ogg")


class RecordingUnavailable(Exception):
    """The recording can't be played or exported here (no key, deleted, file missing)."""


@dataclass(frozen=True)
class Plaintext:
    """A decrypted recording as a stream of PCM chunks (16-bit LE mono at sample_rate: the
    recording's own rate, from the store; the file does not say)."""

    size: int
    complete: bool
    chunks: Iterator[bytes]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.size / bytes_per_second(self.sample_rate)

    def wav_header(self) -> bytes:
        return wav_header(self.size, self.sample_rate)


def recording_path(directory: Path, recording: Recording) -> Path:
    return directory / recording.file_name


def key_context(recording_id: str) -> bytes:
    return b"callengine-recording-key:" + recording_id.encode()


def reads_in_recovery(recording: Recording) -> bool:
    """How a recording's file is read, from the store's word on it. A recording marked complete
    was closed: it reads strictly, so a cut or a change is an error. Any other (incomplete, failed,
    still being written) is read in recovery mode: its authentic prefix, tampering still raising."""
    return recording.status != RECORDING_COMPLETE


UNLINK_THREADS = 4


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


class RecordingVault:
    """Where recordings live and how they open: ciphertext files in a directory, one sealed
    key per recording in the keystore, and (optionally, on hosts that may play them back) the
    recipient's private keys.

    Each recording gets its own X25519 key pair: the file is written to its public key, its
    private key is sealed for the recipient and kept only in the keystore. Opening a recording
    takes the recipient's private key *and* the keystore entry; shredding deletes the entry,
    which makes every copy of the file undecryptable, backups included."""

    def __init__(self, directory: Path, keystore: KeyStore, private_keys: list[bytes] | None = None):
        self.directory = directory
        self.keystore = keystore
        self.private_keys = list(private_keys or [])

    async def new_file_key(self, recording_id: str, recipient_public_key: bytes,
                           now: float) -> bytes:
        """Make, seal and store the recording's key pair; return the public key to write to."""
        file_private, file_public = crypto.generate_recipient_keypair()
        sealed = crypto.seal(file_private, recipient_public_key, key_context(recording_id))
        await self.keystore.put(recording_id, sealed, now)
        return file_public

    async def file_key(self, recording_id: str) -> bytes:
        if not self.private_keys:
            raise RecordingUnavailable(
                "no private key is configured here: playback is refused on this host "
                "(export it with `callengine recording export --key …` on a machine holding "
                "the key)"
            )
        sealed = await self.keystore.get(recording_id)
        if sealed is None:
            raise RecordingUnavailable(
                f"recording {recording_id} has no key in the keystore: it was crypto-shredded"
            )
        return crypto.open_sealed(sealed, self.private_keys, key_context(recording_id))

    async def open(self, recording: Recording) -> Plaintext:
        key = await self.file_key(recording.id)
        return decrypt(recording_path(self.directory, recording), [key], recording.sample_rate,
                       recover=reads_in_recovery(recording))

    async def verify(self, recording: Recording) -> crypto.VerifyReport:
        path = recording_path(self.directory, recording)
        if not self.private_keys:
            return crypto.verify(path)
        return crypto.verify(path, [await self.file_key(recording.id)],
                             recover=reads_in_recovery(recording))

    async def export(self, recording: Recording, out: Path, fmt: str) -> Plaintext:
        key = await self.file_key(recording.id)
        return export(recording_path(self.directory, recording), [key], out, fmt,
                      recording.sample_rate, recover=reads_in_recovery(recording))

    async def shred(self, recording_ids: list[str]) -> int:
        """Keys out of the keystore first (the shred), then the files. Returns files removed."""
        if not recording_ids:
            return 0
        await self.destroy_keys(recording_ids)
        return await asyncio.to_thread(self.remove_files, recording_ids)

    async def destroy_keys(self, recording_ids: list[str], *, final: bool = True) -> None:
        """The crypto-shred itself: with its keystore entry gone, every copy of a file,
        backups included, is undecryptable. The files still have to go (`remove_files`).
        final=False (a purge, batch after batch): the keystore's log keeps the deletions until
        the purge's checked scrub (Store.forget_deleted_pages) truncates it."""
        if recording_ids:
            await self.keystore.delete(recording_ids, truncate_log=final)

    def remove_files(self, recording_ids: list[str]) -> int:
        """Blocking (run it in a thread). Each file's wrapped key is overwritten and made
        durable before the unlink (the kernel drops an unlinked file's unwritten pages), then
        the files go. Returns files removed."""
        present = []
        for recording_id in recording_ids:
            path = self.directory / f"{recording_id}{FILE_SUFFIX}"
            try:
                crypto.destroy_key(path, sync=False)
                present.append(path)
            except FileNotFoundError:
                pass  # removed by an earlier, interrupted run
        if not present:
            return 0
        os.sync()  # one sync for the whole batch
        if len(present) < UNLINK_THREADS * 16:
            for path in present:
                path.unlink(missing_ok=True)
        else:
            # An unlink mostly waits on the file system's journal, not on a CPU: several at
            # once went 3x as fast here (ext4: 5,200 files/s in one thread, 16,000 in eight).
            with ThreadPoolExecutor(UNLINK_THREADS, thread_name_prefix="unlink") as pool:
                list(pool.map(_unlink, present, chunksize=32))
        return len(present)

    async def orphan_files(self, live_ids: set[str]) -> list[str]:
        """Ids of files no live recording row names and whose key is gone: what a purge
        interrupted between shredding keys and removing files leaves behind. Both conditions,
        so a restore whose keystore is not back yet, or a recording whose row is being
        written, is never touched."""
        suffix = len(FILE_SUFFIX)
        candidates = await asyncio.to_thread(
            lambda: [entry.name[:-suffix] for entry in os.scandir(self.directory)
                     if entry.name.endswith(FILE_SUFFIX)
                     and entry.name[:-suffix] not in live_ids])
        return [rid for rid in candidates if await self.keystore.get(rid) is None]


# ---- recording a call --------------------------------------------------------------------------

Clock = Callable[[], float]
CallLogger = logging.Logger | logging.LoggerAdapter


@dataclass(frozen=True)
class RecordingSetup:
    """How this engine records: where ciphertext goes, for whom, through which tap."""

    route: str
    vault: RecordingVault  # files and their sealed keys
    public_key: bytes  # the recipient's public key: this host can write, never read
    new_tap: Callable[[], Tap]
    # A background check the route needs for as long as the engine runs (FIFO: orphans).
    watchdog: Callable[[], Coroutine[Any, Any, None]] | None = None
    sample_rate: int = DEFAULT_SAMPLE_RATE  # of new recordings; the taps follow the sink's
    # Whether the route's own link to Asterisk is up (FIFO: logged in to AMI); /readyz's.
    link_up: Callable[[], bool] | None = None
    # Hears each finished recording's status and audio bytes (the metrics' recording_finished).
    on_finished: Callable[[str, int], None] = lambda status, audio_bytes: None

    async def start(
        self, store: Store, attempt: Attempt, *, channel_id: str, channel_name: str,
        bridge_id: str, tap_channel_id: str, clock: Clock, call_log: CallLogger,
    ) -> ActiveRecording | None:
        """Record the call in `bridge_id`: a file key, an encrypting sink, the store's row, a
        tap. None if it could not start: the call goes on unrecorded (and the row, once
        written, says why)."""
        recording_id = new_recording_id()
        try:
            file_key = await self.vault.new_file_key(recording_id, self.public_key, clock())
            sink = RecordingSink(self.vault.directory, file_key, recording_id=recording_id,
                                 sample_rate=self.sample_rate)
        except OSError as exc:
            call_log.error("recording not started: %s", exc)
            return None
        await store.add_recording(
            sink.recording_id, attempt, self.route, crypto.key_id(self.public_key).hex(),
            clock(), sample_rate=sink.sample_rate,
        )
        tap = self.new_tap()
        try:
            await tap.start(sink, channel_id=channel_id, channel_name=channel_name,
                            bridge_id=bridge_id, tap_channel_id=tap_channel_id)
        except Exception as exc:  # the call goes on unrecorded; the row says why
            call_log.error("recording %s could not start: %s", sink.recording_id, exc)
            summary = sink.abort()
            await store.finish_recording(
                sink.recording_id, status=RECORDING_FAILED, now=clock(), duration_s=0.0,
                bytes_in=summary.bytes_in, segments=summary.segments, sha256=summary.sha256,
                problem=f"tap failed to start: {exc}",
            )
            self.on_finished(RECORDING_FAILED, summary.bytes_in)
            return None
        call_log.info("recording %s started (%s route)", sink.recording_id, self.route)
        return ActiveRecording(tap, sink, store, clock, call_log, self.on_finished)


@dataclass
class ActiveRecording:
    """A call's recording in progress; `finish` once, when the call ends."""

    tap: Tap
    sink: RecordingSink
    store: Store
    clock: Clock
    call_log: CallLogger
    on_finished: Callable[[str, int], None] = lambda status, audio_bytes: None

    async def finish(self, talk_s: float | None) -> None:
        """End the tap, close the file, write what it holds to the row. Never raises for a
        tap that fails: the row says what went wrong."""
        try:
            report = await self.tap.finish(talk_s=talk_s or 0.0)
            summary, problem = report.summary, report.problem
        except Exception as exc:
            self.call_log.exception("recording %s did not end cleanly", self.sink.recording_id)
            summary, problem = self.sink.abort(), f"tap failed: {exc}"
        status = RECORDING_COMPLETE if summary.complete else RECORDING_INCOMPLETE
        await self.store.finish_recording(
            summary.recording_id, status=status,
            now=self.clock(), duration_s=summary.duration_s, bytes_in=summary.bytes_in,
            segments=summary.segments, sha256=summary.sha256, problem=problem,
        )
        self.on_finished(status, summary.bytes_in)
        self.call_log.info(
            "recording %s ended: %.1f s%s", summary.recording_id, summary.duration_s,
            f" ({problem})" if problem else "",
        )


async def close_interrupted_recordings(store: Store, vault: RecordingVault,
                                       clock: Clock, attempt_ids: list[str]) -> None:
    """Recordings of these attempts left 'recording' by a killed engine: every sealed segment
    is still there (and decrypts); mark them incomplete with what the file holds (a file on
    another host than this engine's reads as unreadable: marked so).

    Counted from the file's structure (this host may hold no private key): only whole
    segments. The writer never closed the file, so a short last slot is a segment whose write
    the stop tore, which a recovering read rejects too (docs/recording-format.md)."""
    for recording in await store.recordings_in_progress(attempt_ids):
        path = recording_path(vault.directory, recording)
        try:
            info = crypto.header_info(path)
            segments, size = info.whole_segments
            problem = "the engine stopped during the recording; sealed segments kept"
        except (OSError, crypto.RecordingError) as exc:
            segments, size, problem = 0, 0, f"unreadable after an engine stop: {exc}"
        await store.finish_recording(
            recording.id, status=RECORDING_INCOMPLETE, now=clock(),
            duration_s=size / bytes_per_second(recording.sample_rate), bytes_in=size,
            segments=segments, sha256=None, problem=problem,
        )
        log.warning("[lead %s] recording %s marked incomplete", recording.lead_id, recording.id)


# ---- opening stored recordings ------------------------------------------------------------------


def load_private_keys(paths: tuple[Path, ...] | list[Path]) -> list[bytes]:
    return [crypto.load_private_key(path) for path in paths]


def decrypt(path: Path, file_keys: list[bytes], sample_rate: int, *, recover: bool) -> Plaintext:
    """Authenticate and decrypt. recover=True (a recording not marked complete: engine killed)
    yields its sealed prefix; strict, anything but the whole stream raises.

    Two passes: the first learns the exact size (a WAV header needs it up front), the second
    streams. AES-GCM runs at GB/s, so the extra pass costs little and keeps memory flat."""
    if not path.exists():
        raise RecordingUnavailable(f"the file of this recording is gone ({path.name})")
    with crypto.open_recording(path, file_keys, recover=recover) as reader:
        size = sum(len(chunk) for chunk in reader)
        complete = bool(reader.complete)

    def chunks() -> Iterator[bytes]:
        with crypto.open_recording(path, file_keys, recover=recover) as reader:
            yield from reader

    return Plaintext(size, complete, chunks(), sample_rate)


def wav_header(data_size: int, sample_rate: int, channels: int = 1) -> bytes:
    # A 44-byte canonical PCM WAV header; `wave` can't write one for a stream it doesn't hold.
    byte_rate = sample_rate * channels * BYTES_PER_SAMPLE
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_size, b"WAVE", b"fmt ", 16, 1, channels,
        sample_rate, byte_rate, channels * BYTES_PER_SAMPLE, 8 * BYTES_PER_SAMPLE, b"data",
        data_size,
    )


def export(path: Path, file_keys: list[bytes], out: Path, fmt: str,
           sample_rate: int, *, recover: bool) -> Plaintext:
    """Decrypt into `out` (WAV, MP3 or OGG). The operator asked for this plaintext file."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    plain = decrypt(path, file_keys, sample_rate, recover=recover)
    if fmt == "wav":
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(plain.wav_header())
            for chunk in plain.chunks:
                f.write(chunk)
        return plain
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RecordingUnavailable("ffmpeg is needed for MP3/OGG export: apt-get install ffmpeg")
    if out.exists():
        raise FileExistsError(f"{out} exists already")
    codec = ["-c:a", "libmp3lame", "-q:a", "4"] if fmt == "mp3" else ["-c:a", "libvorbis"]
    process = subprocess.Popen(
        [ffmpeg, "-loglevel", "error", "-f", "s16le", "-ar", str(plain.sample_rate), "-ac", "1",
         "-i", "pipe:0", *codec, "-f", fmt, str(out)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stderr is not None
    try:
        for chunk in plain.chunks:
            process.stdin.write(chunk)
    finally:
        process.stdin.close()
    err = process.stderr.read()  # -loglevel error: a few lines at most, no pipe deadlock
    process.wait()
    if process.returncode != 0:
        out.unlink(missing_ok=True)
        raise RecordingUnavailable(f"ffmpeg failed: {err.decode(errors='replace')[-300:]}")
    os.chmod(out, 0o600)
    return plain


# ---- prompts -------------------------------------------------------------------------------------


def import_prompt(source: Path, prompts_dir: Path, name: str) -> Path:
    """Convert any audio file pydub/ffmpeg reads into 8 kHz mono 16-bit WAV for Asterisk."""
    from pydub import AudioSegment  # imported here: only this command needs it

    audio = AudioSegment.from_file(source)
    audio = audio.set_channels(1).set_frame_rate(8000).set_sample_width(2)
    prompts_dir.mkdir(parents=True, exist_ok=True)
    target = prompts_dir / f"{name}.wav"
    partial = target.with_suffix(".wav.partial")
    audio.export(partial, format="wav")
    os.chmod(partial, 0o644)  # Asterisk (another user) must read it
    os.replace(partial, target)  # never a half-written prompt under the real name
    return target
