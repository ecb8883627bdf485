"""Tink's AES-GCM-HKDF streaming AEAD: parameters, nonces, segment layout, sealer and opener.

The body of a recording is a plain Tink ciphertext (tests replay Tink's own known answers): a
stream header (length byte, HKDF salt, nonce prefix), then segments, each AES-256-GCM sealed
with a nonce of prefix | segment index | last-segment flag. This module knows nothing of the
CEREC file around it; the whole outer header goes in as associated data.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto.errors import TamperedError

DEFAULT_SEGMENT_SIZE = 64 * 1024  # ciphertext bytes per segment

# Tink AES-GCM-HKDF constants (fixed by Tink, not by us).
TINK_NONCE_PREFIX_SIZE = 7
TINK_TAG_SIZE = 16

# Our Tink parameter choice: KeyValue = 32-byte data key, DerivedKeySize = 32,
# HkdfHashType = SHA256, CiphertextSegmentSize from the header.
_DERIVED_KEY_SIZE = 32

# The segment counter is a 32-bit field of the nonce.
_MAX_SEGMENT_INDEX = 0xFFFFFFFF

# encrypt_into avoids allocating a fresh ciphertext buffer per segment; older
# `cryptography` releases lack it, so fall back to encrypt().
_HAS_ENCRYPT_INTO = hasattr(AESGCM, "encrypt_into")

# Ciphertext scratch buffer, one per thread rather than one per writer: a
# sealed segment is written out before the next seal on the same thread, so
# 2,000 open recordings need 2,000 plaintext buffers but only one of these.
_scratch = threading.local()


def _scratch_view(size: int) -> memoryview:
    buf = getattr(_scratch, "view", None)
    if buf is None or len(buf) < size:
        buf = _scratch.view = memoryview(bytearray(max(size, DEFAULT_SEGMENT_SIZE)))
    return buf[:size]


@dataclass(frozen=True)
class _TinkParams:
    """Tink AesGcmHkdfStreaming parameters. Production uses SHA256/32 bytes;
    the other values exist so tests can replay Tink's published vectors."""

    segment_size: int
    derived_key_size: int = _DERIVED_KEY_SIZE
    hkdf_hash: type = hashes.SHA256

    @property
    def header_size(self) -> int:
        return 1 + self.derived_key_size + TINK_NONCE_PREFIX_SIZE

    @property
    def first_plaintext_size(self) -> int:
        # Segment 0 is shorter by the stream header so header + segment 0
        # fill exactly one ciphertext segment (firstSegmentOffset = 0).
        return self.segment_size - self.header_size - TINK_TAG_SIZE

    @property
    def plaintext_size(self) -> int:
        return self.segment_size - TINK_TAG_SIZE

    def check(self) -> None:
        if self.derived_key_size not in (16, 32):
            raise ValueError("derived key size must be 16 or 32")
        if not self.header_size + TINK_TAG_SIZE < self.segment_size <= 0x7FFFFFFF:
            raise ValueError(
                f"segment size {self.segment_size} must exceed "
                f"{self.header_size + TINK_TAG_SIZE} (Tink's minimum)"
            )


def _tink_aead(params: _TinkParams, ikm: bytes, salt: bytes, ad: bytes) -> AESGCM:
    # Tink: DerivedKey = HKDF(ikm=KeyValue, salt=Salt, info=AssociatedData).
    # The associated data is authenticated only through this derivation.
    if len(ikm) < max(16, params.derived_key_size):
        raise ValueError("input key material too short")
    key = HKDF(
        algorithm=params.hkdf_hash(), length=params.derived_key_size, salt=salt, info=ad
    ).derive(ikm)
    return AESGCM(key)


def _tink_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index > _MAX_SEGMENT_INDEX:
        raise OverflowError("more than 2**32 segments")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


class _SegmentSealer:
    """Buffers plaintext and seals it segment by segment (Tink's encrypter).

    Follows Tink's writer exactly: a full segment is sealed only once the
    first byte of the next one arrives, because the last-segment flag must be
    known when a segment is sealed. So segments are never empty unless the
    whole stream is, and the output equals Tink's for the same salt/prefix.
    Subclasses implement _emit().
    """

    def __init__(
        self, params: _TinkParams, ikm: bytes, ad: bytes, salt: bytes, nonce_prefix: bytes
    ):
        params.check()
        if len(salt) != params.derived_key_size:
            raise ValueError(f"salt must be {params.derived_key_size} bytes")
        if len(nonce_prefix) != TINK_NONCE_PREFIX_SIZE:
            raise ValueError(f"nonce prefix must be {TINK_NONCE_PREFIX_SIZE} bytes")
        self._aead = _tink_aead(params, ikm, salt, ad)
        self.stream_header = bytes([params.header_size]) + salt + nonce_prefix
        self._seg_plain = params.plaintext_size
        # Preallocated once: each write() is a copy into this buffer.
        self._buf = bytearray(params.plaintext_size)
        self._mv = memoryview(self._buf)
        self._nonce = bytearray(nonce_prefix + bytes(5))
        self._limit = params.first_plaintext_size
        self._fill = 0
        self._index = 0
        self._closed = False
        self.bytes_in = 0

    def write(self, data) -> None:
        """Append plaintext (bytes-like). Every segment that is complete once
        the next byte is known is sealed and handed to disk before returning."""
        n = len(data)
        fill = self._fill
        # Fast path (almost every 640-byte frame). "<=" keeps an exactly full
        # segment buffered: Tink look-ahead. A closed writer has _limit = -1.
        if fill + n <= self._limit:
            self._mv[fill : fill + n] = data
            self._fill = fill + n
            self.bytes_in += n
            return
        self._write_spanning(data)

    def _write_spanning(self, data) -> None:
        if self._closed:
            raise ValueError("write to a closed recording writer")
        src = memoryview(data).cast("B")
        n = len(src)
        pos = 0
        while True:
            fill = self._fill
            take = min(self._limit - fill, n - pos)
            self._mv[fill : fill + take] = src[pos : pos + take]
            self._fill = fill + take
            pos += take
            if pos == n:
                break
            self._seal(last=False)  # buffer full and more data follows
        self.bytes_in += n

    def _seal(self, last: bool) -> None:
        if self._index > _MAX_SEGMENT_INDEX:
            raise OverflowError("more than 2**32 segments")
        struct.pack_into(">IB", self._nonce, TINK_NONCE_PREFIX_SIZE, self._index, 1 if last else 0)
        plain = self._mv[: self._fill]
        size = self._fill + TINK_TAG_SIZE
        if _HAS_ENCRYPT_INTO:
            out = _scratch_view(size)
            self._aead.encrypt_into(self._nonce, plain, None, out)
        else:
            out = memoryview(self._aead.encrypt(bytes(self._nonce), plain, None))
        self._emit(out)
        self._index += 1
        self._fill = 0
        self._limit = self._seg_plain

    def _finish(self) -> None:
        # The final segment carries the last-segment flag; for an empty stream
        # it is an empty plaintext (a bare 16-byte tag).
        self._seal(last=True)
        self._close_buffers()

    def _close_buffers(self) -> None:
        self._closed = True
        self._limit = -1  # forces write() onto the slow path, which raises
        self._mv[:] = bytes(len(self._mv))  # drop buffered plaintext from memory

    def _emit(self, ciphertext: memoryview) -> None:  # pragma: no cover - abstract
        """Consume one sealed segment; the view is only valid during the call."""
        raise NotImplementedError


class _SegmentOpener:
    """Decrypts individual segments of one Tink stream."""

    def __init__(self, params: _TinkParams, ikm: bytes, ad: bytes, stream_header: bytes):
        self.params = params
        if len(stream_header) != params.header_size or stream_header[0] != params.header_size:
            raise TamperedError(
                f"stream header length byte is {stream_header[0] if stream_header else None}, "
                f"expected {params.header_size}"
            )
        salt = stream_header[1 : 1 + params.derived_key_size]
        self._prefix = bytes(stream_header[1 + params.derived_key_size :])
        self._aead = _tink_aead(params, ikm, salt, ad)

    def open(self, index: int, ciphertext, last: bool) -> bytes | None:
        """Plaintext, or None if the segment does not authenticate at this position."""
        try:
            return self._aead.decrypt(_tink_nonce(self._prefix, index, last), ciphertext, None)
        except InvalidTag:
            return None


def _segment_layout(body_size: int, params: _TinkParams) -> tuple[int, int]:
    """(number of segment slots, size of the last slot) for a stream body
    (everything after the stream header). The last slot may be partial."""
    first = params.segment_size - params.header_size
    if body_size <= 0:
        return 0, 0
    if body_size <= first:
        return 1, body_size
    rest = body_size - first
    full, tail = divmod(rest, params.segment_size)
    if tail:
        return 1 + full + 1, tail
    return 1 + full, params.segment_size
