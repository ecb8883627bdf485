"""Encrypted recording file format ("CEREC" v1).

Audio is encrypted as it streams: the writer holds at most one segment of
plaintext in memory and puts only ciphertext on disk. The file is a small
header followed by a Tink AES-GCM-HKDF streaming-AEAD ciphertext; the per-file
data key is wrapped for a recipient X25519 key the way age does it, so the
recording host needs the public key only. Byte-exact spec, error semantics and
test vectors: docs/recording-format.md.

This module knows nothing about calls; it only turns a byte stream into a
file and back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "FormatError",
    "KeyUnwrapError",
    "RecordingError",
    "RecordingInfo",
    "RecordingReader",
    "RecordingWriter",
    "TamperedError",
    "TruncatedError",
    "VerifyReport",
    "WrongKeyError",
    "generate_recipient_keypair",
    "header_info",
    "key_id",
    "load_private_key",
    "load_public_key",
    "open_recording",
    "save_private_key",
    "save_public_key",
    "verify",
]

# --------------------------------------------------------------------------
# Format constants (see docs/recording-format.md)
# --------------------------------------------------------------------------

MAGIC = b"CEREC"
FORMAT_VERSION = 1
KEY_ID_SIZE = 8
DATA_KEY_SIZE = 32
X25519_KEY_SIZE = 32
WRAPPED_KEY_SIZE = DATA_KEY_SIZE + 16  # AES-256-GCM ciphertext + tag
DEFAULT_SEGMENT_SIZE = 64 * 1024  # ciphertext bytes per segment

# Outer header: magic | version | key id | segment size | ephemeral pub | wrapped key
_OUTER = struct.Struct(">5sB8sI32s48s")
OUTER_HEADER_SIZE = _OUTER.size  # 98

# KEK derivation for the age-style X25519 wrap. The version is in the string so
# a v2 format can never unwrap (or be confused with) a v1 key.
KEK_INFO = b"callengine-recording-v1/X25519-data-key-wrap"
# A zero nonce is safe: each KEK comes from a fresh ephemeral key and seals
# exactly one message (same reasoning as age's X25519 stanza).
_WRAP_NONCE = bytes(12)

# Tink AES-GCM-HKDF constants (fixed by Tink, not by us).
TINK_NONCE_PREFIX_SIZE = 7
TINK_TAG_SIZE = 16

# Our Tink parameter choice: KeyValue = 32-byte data key, DerivedKeySize = 32,
# HkdfHashType = SHA256, CiphertextSegmentSize from the header.
_DERIVED_KEY_SIZE = 32
STREAM_HEADER_SIZE = 1 + _DERIVED_KEY_SIZE + TINK_NONCE_PREFIX_SIZE  # 40
HEADER_SIZE = OUTER_HEADER_SIZE + STREAM_HEADER_SIZE  # 138

# Tink requires CiphertextSegmentSize > len(stream header) + 16. The upper bound
# is ours: it caps what a reader must buffer for one segment.
MIN_SEGMENT_SIZE = STREAM_HEADER_SIZE + TINK_TAG_SIZE + 1  # 57
MAX_SEGMENT_SIZE = 1 << 24

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


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class RecordingError(Exception):
    """Base class for every problem with a recording file."""


class FormatError(RecordingError):
    """Not a CEREC file, or a version this code does not read."""


class WrongKeyError(RecordingError):
    """No private key given matches the file's key id, or the data key does not unwrap."""


class TamperedError(RecordingError):
    """The header or a segment fails authentication (modified, reordered or spliced)."""


class TruncatedError(RecordingError):
    """The stream ends without a last-segment flag, or ends in a partial segment."""


class KeyUnwrapError(WrongKeyError, TamperedError):
    """The key id matches but the wrapped data key does not authenticate.

    Since the key id is a hash of the recipient public key and we check the
    private key against it, this in practice means the header's ephemeral key
    or wrapped key was modified. It is both a WrongKeyError (the data key could
    not be unwrapped) and a TamperedError, so callers catching either see it.
    """


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

KeyLike = Union[bytes, bytearray, str, X25519PrivateKey, X25519PublicKey]


def generate_recipient_keypair() -> tuple[bytes, bytes]:
    """Return (private_key, public_key) as raw 32-byte X25519 keys."""
    priv = X25519PrivateKey.generate()
    return priv.private_bytes_raw(), priv.public_key().public_bytes_raw()


def _as_public_key(key: KeyLike) -> X25519PublicKey:
    if isinstance(key, X25519PublicKey):
        return key
    if isinstance(key, X25519PrivateKey):
        raise TypeError("expected a public key, got a private key; the recorder must not hold it")
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(raw) == X25519_KEY_SIZE:
        return X25519PublicKey.from_public_bytes(raw)
    if raw.lstrip().startswith(b"-----BEGIN"):
        obj = serialization.load_pem_public_key(raw)
        if isinstance(obj, X25519PublicKey):
            return obj
        raise TypeError(f"PEM public key is {type(obj).__name__}, not X25519")
    raise TypeError("public key must be 32 raw bytes, PEM, or X25519PublicKey")


def _as_private_key(key: KeyLike, password: bytes | None = None) -> X25519PrivateKey:
    if isinstance(key, X25519PrivateKey):
        return key
    if isinstance(key, X25519PublicKey):
        raise TypeError("expected a private key, got a public key")
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(raw) == X25519_KEY_SIZE:
        return X25519PrivateKey.from_private_bytes(raw)
    if raw.lstrip().startswith(b"-----BEGIN"):
        obj = serialization.load_pem_private_key(raw, password=password)
        if isinstance(obj, X25519PrivateKey):
            return obj
        raise TypeError(f"PEM private key is {type(obj).__name__}, not X25519")
    raise TypeError("private key must be 32 raw bytes, PEM, or X25519PrivateKey")


def key_id(public_key: KeyLike) -> bytes:
    """Key id = first 8 bytes of SHA-256 of the raw 32-byte recipient public key."""
    raw = _as_public_key(public_key).public_bytes_raw()
    return hashlib.sha256(raw).digest()[:KEY_ID_SIZE]


def _create_exclusive(path: str | os.PathLike, mode: int) -> int:
    # O_EXCL: never clobber an existing file (and refuse symlinks at path).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # umask may have stripped bits; make the mode exact
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def save_private_key(
    path: str | os.PathLike, private_key: KeyLike, *, password: bytes | None = None
) -> None:
    """Write a PKCS#8 PEM private key (encrypted if password), mode 0600, refusing to overwrite."""
    priv = _as_private_key(private_key)
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = _create_exclusive(path, 0o600)
    try:
        _write_all(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def save_public_key(path: str | os.PathLike, public_key: KeyLike) -> None:
    """Write a SubjectPublicKeyInfo PEM public key, mode 0644, refusing to overwrite."""
    pub = _as_public_key(public_key)
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = _create_exclusive(path, 0o644)
    try:
        _write_all(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: str | os.PathLike, *, password: bytes | None = None) -> bytes:
    """Read a PEM private key file; return the raw 32-byte X25519 private key."""
    with open(path, "rb") as f:
        return _as_private_key(f.read(), password).private_bytes_raw()


def load_public_key(path: str | os.PathLike) -> bytes:
    """Read a PEM public key file; return the raw 32-byte X25519 public key."""
    with open(path, "rb") as f:
        return _as_public_key(f.read()).public_bytes_raw()


def _derive_kek(shared: bytes, ephemeral_pub: bytes, recipient_pub: bytes) -> bytes:
    # Both public keys go in the salt (as in age) so the KEK is bound to this
    # exact ephemeral/recipient pair.
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral_pub + recipient_pub,
        info=KEK_INFO,
    ).derive(shared)


# --------------------------------------------------------------------------
# Tink AES-GCM-HKDF streaming AEAD framing
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# File header
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    raw_outer: bytes  # the associated data of the stream
    version: int
    key_id: bytes
    segment_size: int
    ephemeral_pub: bytes
    wrapped_key: bytes
    stream_header: bytes

    @property
    def params(self) -> _TinkParams:
        return _TinkParams(self.segment_size)


def _parse_header(data: bytes, file_size: int) -> _Header:
    if len(data) < len(MAGIC) + 1:
        if MAGIC.startswith(data[: len(MAGIC)]):
            raise TruncatedError(
                f"file is {file_size} bytes, it ends inside the header (writer killed at creation?)"
            )
        raise FormatError("not a callengine recording (bad magic)")
    if data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a callengine recording (bad magic)")
    if data[len(MAGIC)] != FORMAT_VERSION:
        raise FormatError(f"unsupported recording format version {data[len(MAGIC)]}")
    if len(data) < HEADER_SIZE:
        raise TruncatedError(
            f"file is {file_size} bytes, it ends inside the {HEADER_SIZE}-byte header"
        )
    _, version, kid, seg, eph, wrapped = _OUTER.unpack_from(data)
    if not MIN_SEGMENT_SIZE <= seg <= MAX_SEGMENT_SIZE:
        # A v1 writer never produces this, so the field was modified.
        raise TamperedError(
            f"header segment size {seg} is outside [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}]"
        )
    stream_header = bytes(data[OUTER_HEADER_SIZE:HEADER_SIZE])
    if stream_header[0] != STREAM_HEADER_SIZE:
        raise TamperedError(
            f"stream header length byte is {stream_header[0]}, expected {STREAM_HEADER_SIZE}"
        )
    return _Header(bytes(data[:OUTER_HEADER_SIZE]), version, kid, seg, eph, wrapped, stream_header)


@dataclass(frozen=True)
class RecordingInfo:
    """What the header and file size say, without keys (nothing here is authenticated)."""

    path: str
    version: int
    key_id: str  # hex
    segment_size: int  # ciphertext bytes per segment
    header_size: int
    file_size: int
    segments: int  # segment slots present; the last may be partial
    plaintext_size: int | None  # implied if intact; None if the sizes are impossible


def _info(path, header: _Header, file_size: int) -> RecordingInfo:
    n, last = _segment_layout(file_size - HEADER_SIZE, header.params)
    plain = None
    if n and last >= TINK_TAG_SIZE:
        plain = file_size - HEADER_SIZE - n * TINK_TAG_SIZE
    return RecordingInfo(
        path=os.fspath(path),
        version=header.version,
        key_id=header.key_id.hex(),
        segment_size=header.segment_size,
        header_size=HEADER_SIZE,
        file_size=file_size,
        segments=n,
        plaintext_size=plain,
    )


def _read_header(f, path) -> tuple[_Header, int]:
    size = os.fstat(f.fileno()).st_size
    data = f.read(HEADER_SIZE)
    return _parse_header(data, size), size


def header_info(path: str | os.PathLike) -> RecordingInfo:
    """Parse the header without keys (key id, segment size, sizes) - for the CLI."""
    with open(path, "rb") as f:
        header, size = _read_header(f, path)
    return _info(path, header, size)


# --------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------


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
        recipient_raw = recipient.public_bytes_raw()
        fixed = _insecure_fixed_randomness

        # Wrap a fresh data key for the recipient (age-style X25519 stanza).
        data_key = fixed.data_key if fixed else os.urandom(DATA_KEY_SIZE)
        if len(data_key) != DATA_KEY_SIZE:  # the header field is fixed-size
            raise ValueError(f"data key must be {DATA_KEY_SIZE} bytes")
        eph = (
            X25519PrivateKey.from_private_bytes(fixed.ephemeral_private_key)
            if fixed
            else X25519PrivateKey.generate()
        )
        eph_pub = eph.public_key().public_bytes_raw()
        try:
            shared = eph.exchange(recipient)
        except ValueError:
            raise ValueError("recipient public key is invalid (low-order point)") from None
        kek = _derive_kek(shared, eph_pub, recipient_raw)
        wrapped = AESGCM(kek).encrypt(_WRAP_NONCE, data_key, None)
        self._key_id = hashlib.sha256(recipient_raw).digest()[:KEY_ID_SIZE]
        outer = _OUTER.pack(MAGIC, FORMAT_VERSION, self._key_id, segment_size, eph_pub, wrapped)

        salt = fixed.salt if fixed else os.urandom(_DERIVED_KEY_SIZE)
        prefix = fixed.nonce_prefix if fixed else os.urandom(TINK_NONCE_PREFIX_SIZE)
        # The whole outer header is the stream's associated data: changing
        # any byte of it changes the derived key, so segment 0 fails.
        super().__init__(_TinkParams(segment_size), data_key, outer, salt, prefix)
        del data_key, kek, shared

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


# --------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------


def _private_key_list(private_keys) -> list[X25519PrivateKey]:
    if isinstance(private_keys, (bytes, bytearray, str, X25519PrivateKey)):
        private_keys = [private_keys]
    return [_as_private_key(k) for k in private_keys]


def _unwrap_data_key(header: _Header, private_keys) -> bytes:
    keys = {}
    for priv in _private_key_list(private_keys):
        pub = priv.public_key().public_bytes_raw()
        keys[hashlib.sha256(pub).digest()[:KEY_ID_SIZE]] = (priv, pub)
    match = keys.get(header.key_id)
    if match is None:
        have = ", ".join(sorted(k.hex() for k in keys)) or "none"
        raise WrongKeyError(
            f"recording is encrypted to key id {header.key_id.hex()}; "
            f"no private key given matches (have: {have})"
        )
    priv, pub = match
    try:
        shared = priv.exchange(X25519PublicKey.from_public_bytes(header.ephemeral_pub))
    except ValueError:
        raise KeyUnwrapError(
            "header ephemeral public key is invalid: the header was modified"
        ) from None
    kek = _derive_kek(shared, header.ephemeral_pub, pub)
    try:
        return AESGCM(kek).decrypt(_WRAP_NONCE, header.wrapped_key, None)
    except InvalidTag:
        raise KeyUnwrapError(
            f"key id {header.key_id.hex()} matches but the wrapped data key does not "
            "authenticate: the header's ephemeral key or wrapped key was modified"
        ) from None


class RecordingReader:
    """Iterate to get plaintext segments (each authenticated before it is
    yielded). Single pass, like a file. Use open_recording() to create one.

    Header and segment 0 are checked when the reader is opened, so a wrong
    key or modified header raises from open_recording(). Later segments raise
    during iteration. With recover=True truncation does not raise: iteration
    stops after the last authentic segment and `complete` becomes False.
    """

    def __init__(self, path, private_keys, *, recover: bool = False):
        self.path = os.fspath(path)
        self.recover = recover
        self.complete: bool | None = None  # known once the end is reached
        self.truncation: str | None = None  # why complete is False
        self.segments_read = 0
        self.bytes_out = 0
        self._file = open(self.path, "rb", buffering=0)
        try:
            header, size = _read_header(self._file, self.path)
            self.info = _info(self.path, header, size)
            data_key = _unwrap_data_key(header, private_keys)
            self._opener = _SegmentOpener(
                header.params, data_key, header.raw_outer, header.stream_header
            )
            del data_key
            self._body_size = size - HEADER_SIZE
            self._gen = self._segments()
            # Pull segment 0 now: it authenticates the header.
            self._first = next(self._gen, None)
        except BaseException:
            self._file.close()
            raise
        self._started = False

    def _stop_truncated(self, why: str) -> None:
        if not self.recover:
            raise TruncatedError(why)
        self.complete = False
        self.truncation = why

    def _segments(self) -> Iterator[bytes]:
        try:
            yield from self._decrypt_segments()
        finally:
            self._file.close()

    def _decrypt_segments(self) -> Iterator[bytes]:
        p = self._opener.params
        n, last_size = _segment_layout(self._body_size, p)
        if n == 0:
            self._stop_truncated(
                "no segments after the header (writer stopped before the first segment)"
            )
            return
        first = p.segment_size - p.header_size
        buf = bytearray(p.segment_size)
        for i in range(n):
            full = first if i == 0 else p.segment_size
            size = full if i < n - 1 else last_size
            view = memoryview(buf)[:size]
            got = self._file.readinto(view)
            if got != size:
                raise TruncatedError(f"file shrank while reading segment {i}")
            if i < n - 1:
                plain = self._opener.open(i, view, last=False)
                if plain is None:
                    raise TamperedError(
                        f"segment {i} fails authentication "
                        "(modified, reordered, or from another recording)"
                    )
                yield self._count(plain)
                continue
            # Final slot: a complete stream ends with a segment flagged "last".
            if size < TINK_TAG_SIZE:
                self._stop_truncated(
                    f"trailing partial segment {i} ({size} bytes, shorter than a tag)"
                )
                break
            plain = self._opener.open(i, view, last=True)
            if plain is not None:
                self.complete = True
                yield self._count(plain)
                break
            if size == full:
                plain = self._opener.open(i, view, last=False)
                if plain is None:
                    raise TamperedError(f"final segment {i} fails authentication (modified)")
                yield self._count(plain)
                self._stop_truncated(
                    f"stream ends after segment {i} without a last-segment flag "
                    "(truncated at a segment boundary: writer killed or never closed)"
                )
                break
            self._stop_truncated(
                f"final segment {i} is partial ({size} of {full} bytes) and does not authenticate: "
                "truncated mid-segment (a modified final segment looks the same)"
            )
            break

    def _count(self, plain: bytes) -> bytes:
        self.segments_read += 1
        self.bytes_out += len(plain)
        return plain

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise RuntimeError("a RecordingReader can be iterated only once")
        self._started = True
        if self._first is not None:
            yield self._first
            self._first = None
        yield from self._gen

    def read_all(self) -> bytes:
        """All plaintext. Raises on truncation unless recover=True."""
        return b"".join(self)

    def close(self) -> None:
        self._gen.close()
        self._file.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_recording(
    path: str | os.PathLike, private_keys: KeyLike | Iterable[KeyLike], *, recover: bool = False
) -> RecordingReader:
    """Open a recording with one or several private keys (picked by key id)."""
    return RecordingReader(path, private_keys, recover=recover)


# --------------------------------------------------------------------------
# Verify
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    authenticated: bool  # True: every segment was decrypted and authenticated
    info: RecordingInfo
    sha256: str  # of the file as it is on disk
    plaintext_size: int | None  # exact if authenticated, else implied by sizes
    segments: int

    @property
    def method(self) -> str:
        return "authenticated" if self.authenticated else "structural"

    def __str__(self) -> str:
        if self.authenticated:
            return (
                f"AUTHENTICATED: {self.segments} segments, {self.plaintext_size} plaintext bytes, "
                f"complete (key id {self.info.key_id})"
            )
        return (
            f"STRUCTURE ONLY (no keys given, nothing authenticated): header parses, "
            f"{self.segments} segments, sizes consistent with {self.plaintext_size} plaintext bytes "
            f"(key id {self.info.key_id})"
        )


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: str | os.PathLike, private_keys=None) -> VerifyReport:
    """With keys: decrypt and authenticate everything (raises on any failure).
    Without keys: structural check only - header parses, sizes are possible;
    this can detect truncation mid-segment but not modification."""
    if private_keys is None:
        info = header_info(path)
        if info.segments == 0:
            raise TruncatedError("no segments after the header")
        if info.plaintext_size is None:
            raise TruncatedError("trailing partial segment shorter than a tag")
        return VerifyReport(False, info, _file_sha256(path), info.plaintext_size, info.segments)
    with open_recording(path, private_keys) as reader:
        for _ in reader:
            pass
        return VerifyReport(
            True, reader.info, _file_sha256(path), reader.bytes_out, reader.segments_read
        )


# --------------------------------------------------------------------------
# Crypto-shredding
# --------------------------------------------------------------------------

# The ephemeral public key and the wrapped data key: without them no private key can recover
# the data key, so overwriting them makes every segment undecryptable for good.
_KEY_MATERIAL_OFFSET = len(MAGIC) + 1 + KEY_ID_SIZE + 4
_KEY_MATERIAL_SIZE = 32 + WRAPPED_KEY_SIZE


def destroy_key(path: str | os.PathLike, *, sync: bool = True) -> None:
    """Overwrite a recording's ephemeral key and wrapped data key with random bytes in place.

    With sync=False the caller makes it durable (one os.sync() for a batch of files)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, os.urandom(_KEY_MATERIAL_SIZE), _KEY_MATERIAL_OFFSET)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def shred(path: str | os.PathLike) -> None:
    """Destroy a recording: overwrite its wrapped key in place (fsync), then unlink the file.

    The key goes first, so a crash between the two steps leaves an undecryptable file, never a
    readable one. Copies elsewhere (backups) hold the same wrapped key: see docs/recording-format.md.
    """
    destroy_key(path)
    os.unlink(path)


# --------------------------------------------------------------------------
# Personal data at rest (phone numbers, names, e-mails in the store)
# --------------------------------------------------------------------------

DATA_KEY_INFO_ENC = b"callengine-fields-v1/aes-256-gcm"
DATA_KEY_INFO_MAC = b"callengine-fields-v1/hmac-sha256"


class FieldCipher:
    """Encrypts personal fields for the store and hashes numbers for lookups.

    One 32-byte secret (the store's data key) gives two independent keys through HKDF: AES-256-GCM
    for the fields (random 96-bit nonce each, the column and row id as associated data, so a
    value can't be moved to another row or column unnoticed) and HMAC-SHA256 for the keyed hash
    of a normalised number (lookups, de-duplication, rate limits without the number)."""

    def __init__(self, data_key: bytes):
        if len(data_key) != 32:
            raise ValueError("the store's data key must be 32 bytes")

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)

        self._aead = AESGCM(derive(DATA_KEY_INFO_ENC))
        self._mac_key = derive(DATA_KEY_INFO_MAC)

    def encrypt(self, value: str | None, context: str) -> bytes | None:
        if value is None:
            return None
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), context.encode())

    def decrypt(self, blob: bytes | None, context: str) -> str | None:
        if blob is None:
            return None
        try:
            return self._aead.decrypt(blob[:12], blob[12:], context.encode()).decode()
        except InvalidTag:
            raise TamperedError(f"stored field {context} fails authentication") from None

    def number_hash(self, e164: str) -> str:
        return hmac.new(self._mac_key, e164.encode(), hashlib.sha256).hexdigest()


def generate_data_key() -> bytes:
    return os.urandom(32)


# --------------------------------------------------------------------------
# Sealed secrets: the per-recording keys kept in the keystore
# --------------------------------------------------------------------------

SEAL_INFO = b"callengine-seal-v1/X25519"
_SEAL = struct.Struct(">8s32s")  # key id, ephemeral public key; then AES-256-GCM ciphertext


def seal(secret: bytes, recipient_public_key: KeyLike, context: bytes) -> bytes:
    """Encrypt a small secret for a recipient key (the same X25519 + HKDF + AES-256-GCM wrap as
    a recording header). `context` is authenticated: a sealed value can't be moved elsewhere."""
    recipient = _as_public_key(recipient_public_key)
    recipient_raw = recipient.public_bytes_raw()
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes_raw()
    kek = _derive_seal_key(ephemeral.exchange(recipient), eph_pub, recipient_raw)
    kid = hashlib.sha256(recipient_raw).digest()[:KEY_ID_SIZE]
    return _SEAL.pack(kid, eph_pub) + AESGCM(kek).encrypt(_WRAP_NONCE, secret, context)


def open_sealed(blob: bytes, private_keys, context: bytes) -> bytes:
    if len(blob) < _SEAL.size + TINK_TAG_SIZE:
        raise TamperedError("sealed key is too short")
    kid, eph_pub = _SEAL.unpack_from(blob)
    for priv in _private_key_list(private_keys):
        pub = priv.public_key().public_bytes_raw()
        if hashlib.sha256(pub).digest()[:KEY_ID_SIZE] != kid:
            continue
        kek = _derive_seal_key(priv.exchange(X25519PublicKey.from_public_bytes(eph_pub)),
                               eph_pub, pub)
        try:
            return AESGCM(kek).decrypt(_WRAP_NONCE, blob[_SEAL.size:], context)
        except InvalidTag:
            raise TamperedError("sealed key does not authenticate") from None
    raise WrongKeyError(f"sealed for key id {kid.hex()}; no private key given matches")


def _derive_seal_key(shared: bytes, ephemeral_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_pub + recipient_pub,
                info=SEAL_INFO).derive(shared)
