"""Encrypted backups of the store and the recordings, and restoring them.

A backup is one file in the recording format (docs/recording-format.md: streaming AES-256-GCM,
its data key wrapped for an X25519 recipient) holding a tar stream of:
    manifest.json      what, when, how many
    callengine.db      a consistent online snapshot of the store, with the leads the intake
                       journal holds (storage.snapshot)
    data.key           the store's data key (personal fields are encrypted with it)
    recordings/*.cerec the recordings' ciphertext files
The recording keystore is deliberately NOT in it: a recording erased after the backup was
taken has lost its keystore entry, so restoring the backup cannot bring it back. The keystore
is backed up on its own (docs/backup.md). Nothing plaintext is written to disk while backing
up: the snapshot lives in memory, everything goes through the encrypting writer.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from callengine import crypto
from callengine.recorder import FILE_SUFFIX
from callengine.storage.snapshot import snapshot

FORMAT = "callengine-backup-1"
Progress = Callable[[int, int], None]  # (done, total)


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    leads: int
    recordings: int
    bytes: int


class _WriterFile(io.RawIOBase):
    """tarfile writes here; the bytes go straight into the encrypting writer."""

    def __init__(self, writer: crypto.RecordingWriter):
        self._writer = writer

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._writer.write(bytes(data))
        return len(data)


class _ReaderFile(io.RawIOBase):
    """tarfile reads here; the bytes come from the decrypting, authenticating reader."""

    def __init__(self, segments: Iterator[bytes]):
        self._segments = segments
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._segments)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def create_backup(out: Path, *, database: Path, data_key: bytes, recordings_dir: Path,
                  recording_ids: list[str], recipient_public_key: bytes, leads: int,
                  progress: Progress | None = None) -> BackupSummary:
    store_bytes = snapshot(database)
    manifest = {
        "format": FORMAT,
        "created_at": time.time(),
        "leads": leads,
        "recordings": len(recording_ids),
        "recipient_key_id": crypto.key_id(recipient_public_key).hex(),
        "keystore_included": False,
    }
    writer = crypto.RecordingWriter(out, recipient_public_key)
    try:
        with tarfile.open(fileobj=_WriterFile(writer), mode="w|") as tar:
            _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
            _add_bytes(tar, "callengine.db", store_bytes)
            _add_bytes(tar, "data.key", base64.b64encode(data_key) + b"\n")
            for done, recording_id in enumerate(recording_ids, start=1):
                path = recordings_dir / f"{recording_id}{FILE_SUFFIX}"
                if path.exists():
                    tar.add(path, arcname=f"recordings/{path.name}")
                if progress:
                    progress(done, len(recording_ids))
        writer.close()
    except BaseException:
        writer.abort()
        out.unlink(missing_ok=True)
        raise
    return BackupSummary(out, leads, len(recording_ids), out.stat().st_size)


def restore_backup(backup: Path, private_keys: list[bytes], into: Path,
                   progress: Progress | None = None) -> dict:
    """Decrypt and unpack into an empty directory; returns the manifest.

    Unpacks into a staging directory beside `into` and renames it into place only when the
    whole backup has been authenticated: a failed restore leaves nothing half-written. Only
    the names a backup holds are accepted (no paths out of the directory, no links)."""
    if into.exists() and any(into.iterdir()):
        raise BackupError(f"{into} is not empty: restore only into an empty directory")
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = into.parent / f".{into.name}.restoring-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        manifest = _unpack(backup, private_keys, staging, progress)
        if into.exists():
            into.rmdir()  # empty, checked above
        os.rename(staging, into)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _unpack(backup: Path, private_keys: list[bytes], into: Path,
            progress: Progress | None) -> dict:
    (into / "recordings").mkdir(mode=0o700)
    manifest: dict = {}
    with crypto.open_recording(backup, private_keys) as reader:
        with tarfile.open(fileobj=_ReaderFile(iter(reader)), mode="r|") as tar:
            done = 0
            for member in tar:
                name = member.name
                allowed = name in ("manifest.json", "callengine.db", "data.key") or (
                    name.startswith("recordings/") and name.endswith(FILE_SUFFIX)
                    and "/" not in name[len("recordings/"):] and ".." not in name
                )
                if not member.isfile() or not allowed:
                    raise BackupError(f"unexpected entry {name!r} in the backup: refusing it")
                source = tar.extractfile(member)
                assert source is not None
                data = source.read()
                if name == "manifest.json":
                    manifest = json.loads(data)
                    if manifest.get("format") != FORMAT:
                        raise BackupError("not a callengine backup (unknown format)")
                target = into / name
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                if name.startswith("recordings/"):
                    done += 1
                    if progress:
                        progress(done, manifest.get("recordings", done))
    if not manifest or not (into / "callengine.db").exists():
        raise BackupError("the backup is incomplete (no manifest or no store)")
    return manifest
