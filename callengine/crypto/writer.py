"""RecordingWriter: encrypts a byte stream into a CEREC file as it arrives.

It holds at most one segment of plaintext in memory and puts only ciphertext on disk; it needs
the recipient's public key only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from callengine.crypto.header import (
    _OUTER,
    FORMAT_VERSION,
    MAGIC,
    MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
)
from callengine.crypto.keys import KeyLike, _as_public_key, _create_exclusive, _write_all, key_id
from callengine.crypto.stream import (
    _DERIVED_KEY_SIZE,
    DEFAULT_SEGMENT_SIZE,
    TINK_NONCE_PREFIX_SIZE,
    _SegmentSealer,
    _TinkParams,
)
from callengine.crypto.wrap import DATA_KEY_SIZE, wrap_data_key


@dataclass(frozen=True)
class _InsecureFixedRandomness:
    """Fixed values for the random parts. FOR TEST VECTORS ONLY: reusing a
    salt/nonce prefix/data key across recordings destroys confidentiality."""

    data_key: bytes
    ephemeral_private_key: bytes
    salt: bytes
    nonce_prefix: bytes


class RecordingWriter(_SegmentSealer):
    """Write one encrypted recording. Needs only the recipient's public key.

    write(bytes) is cheap (a copy into a preallocated buffer); a segment is
    sealed and os.write()n as soon as the byte after it arrives. A kill -9
    therefore loses at most the one segment still in memory (<= 65,520
    plaintext bytes at the default size, about 4 s of 8 kHz audio, 2 s of 16 kHz).
    Not thread-safe: one writer per stream.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        recipient_public_key: KeyLike,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        fsync_every: int = 0,
        fsync_on_close: bool = True,
        _insecure_fixed_randomness: _InsecureFixedRandomness | None = None,
    ):
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise ValueError(f"segment_size must be in [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}]")
        if fsync_every < 0:
            raise ValueError("fsync_every must be >= 0")
        recipient = _as_public_key(recipient_public_key)
        fixed = _insecure_fixed_randomness

        # Wrap a fresh data key for the recipient (X25519 + HKDF as age derives its wrap key).
        data_key = fixed.data_key if fixed else os.urandom(DATA_KEY_SIZE)
        if len(data_key) != DATA_KEY_SIZE:  # the header field is fixed-size
            raise ValueError(f"data key must be {DATA_KEY_SIZE} bytes")
        eph = (
            X25519PrivateKey.from_private_bytes(fixed.ephemeral_private_key)
            if fixed
            else X25519PrivateKey.generate()
        )
        eph_pub, wrapped = wrap_data_key(data_key, recipient, eph)
        self._key_id = key_id(recipient)
        outer = _OUTER.pack(MAGIC, FORMAT_VERSION, self._key_id, segment_size, eph_pub, wrapped)

        salt = fixed.salt if fixed else os.urandom(_DERIVED_KEY_SIZE)
        prefix = fixed.nonce_prefix if fixed else os.urandom(TINK_NONCE_PREFIX_SIZE)
        # The whole outer header is the stream's associated data: changing
        # any byte of it changes the derived key, so segment 0 fails.
        super().__init__(_TinkParams(segment_size), data_key, outer, salt, prefix)
        del data_key

        self.path = os.fspath(path)
        self.segment_size = segment_size
        self.segments_written = 0
        self.bytes_written = 0
        self._fsync_every = fsync_every
        self._fsync_on_close = fsync_on_close
        self._sha = hashlib.sha256()
        self._digest: str | None = None
        header = outer + self.stream_header
        # Crypto is set up before the file exists, so failures leave no file.
        self._fd = _create_exclusive(self.path, 0o600)
        try:
            _write_all(self._fd, header)  # one write: a crash leaves all or nothing of it
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            os.unlink(self.path)
            raise
        self._sha.update(header)
        self.bytes_written = len(header)

    @property
    def key_id(self) -> str:
        return self._key_id.hex()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the complete ciphertext file; None until closed/aborted."""
        return self._digest

    def _emit(self, ciphertext: memoryview) -> None:
        try:
            _write_all(self._fd, ciphertext)
        except BaseException:
            # The file now ends in an unknown state; refuse further writes
            # rather than silently leave a hole in the middle of the stream.
            self._abort_fd()
            raise
        self._sha.update(ciphertext)
        self.segments_written += 1
        self.bytes_written += len(ciphertext)
        if self._fsync_every and self.segments_written % self._fsync_every == 0:
            os.fsync(self._fd)

    def close(self) -> None:
        """Seal the final segment (with the last-segment flag) and close the file."""
        if self._closed:
            return
        self._finish()
        try:
            if self._fsync_on_close:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1
        self._digest = self._sha.hexdigest()

    def abort(self) -> None:
        """Close without a final segment: the buffered plaintext is dropped and
        the file reads as truncated (open it with recover=True)."""
        if self._closed:
            return
        self._abort_fd()
        self._digest = self._sha.hexdigest()

    def _abort_fd(self) -> None:
        self._close_buffers()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On an exception the recording did not end normally: do not mark it
        # complete; leave it readable (recover=True) up to its last segment.
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            os.close(fd)  # never finalize from GC: an unclosed writer is an abnormal end
