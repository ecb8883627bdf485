"""The audit chain's key and head, kept outside the store (docs/audit.md).

In one directory apart from the store and from its backups (by default the recording
keystore's):
    audit.key               32 random bytes (base64), the chain's HMAC key, made on first use
    audit-<store id>.head   the anchor: the last entry's seq and MAC (JSON, sealed by the key),
                            replaced atomically (temp file, fsync, rename, fsync of the dir)
    audit-<store id>.lock   flock'd around every append: row commit, then anchor write
Appends from every process (engine, CLI, the purge child) take the lock first, so the anchor
is never behind the table by more than the one entry a crash between commit and anchor write
leaves, and never ahead of it.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from callengine.access import AuditHead

KEY_FILE = "audit.key"
HEAD_FORMAT = "callengine-audit-head-2"


class AuditHeadError(Exception):
    """The audit key or anchor can't be read or written: an append must not pass silently."""


class AuditSeal:
    """The audit key and the anchors of the stores whose chains it keys."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._key: bytes | None = None
        self._lock = asyncio.Lock()  # this process's appenders, in turn (then the flock)

    def key(self, *, create: bool = True) -> bytes | None:
        """The audit key; made on first use (created once, even by processes racing)."""
        if self._key is None:
            path = self.directory / KEY_FILE
            if not path.exists():
                if not create:
                    return None
                self._create_key(path)
            try:
                key = base64.b64decode(path.read_text().strip(), validate=True)
            except (OSError, ValueError) as exc:
                raise AuditHeadError(f"the audit key {path} can't be read: {exc}") from None
            if len(key) != 32:
                raise AuditHeadError(f"the audit key {path} is not 32 bytes in base64")
            self._key = key
        return self._key

    def _create_key(self, path: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temp, path)  # atomic create-if-absent: a racing process's key wins
            except FileExistsError:
                pass
            _fsync_dir(self.directory)
        finally:
            temp.unlink(missing_ok=True)

    def head_path(self, store_id: str) -> Path:
        return self.directory / f"audit-{store_id}.head"

    def read_head(self, store_id: str) -> tuple[AuditHead, str] | None:
        """The anchor and its seal; None if there is none. AuditHeadError if unreadable."""
        path = self.head_path(store_id)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise AuditHeadError(f"the audit anchor {path} can't be read: {exc}") from None
        try:
            if raw["format"] != HEAD_FORMAT:
                raise ValueError(raw["format"])
            head = AuditHead(str(raw["store_id"]), int(raw["keyed_from"]), int(raw["seq"]),
                             str(raw["mac"]))
            return head, str(raw["seal"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AuditHeadError(f"the audit anchor {path} is malformed: {exc!r}") from None

    def write_head(self, head: AuditHead) -> None:
        key = self.key()
        assert key is not None
        path = self.head_path(head.store_id)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = {"format": HEAD_FORMAT, "store_id": head.store_id, "keyed_from": head.keyed_from,
                "seq": head.seq, "mac": head.mac, "seal": head.seal(key)}
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        _fsync_dir(self.directory)

    @asynccontextmanager
    async def locked(self, store_id: str) -> AsyncIterator[None]:
        """Every append of every process to this store's chain, in turn."""
        async with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"audit-{store_id}.lock", os.O_RDWR | os.O_CREAT,
                         0o600)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
