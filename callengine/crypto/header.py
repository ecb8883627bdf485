"""The CEREC v1 file header: its layout, parsing it, and what it says without keys.

magic | version | key id | segment size | ephemeral public key | wrapped data key (the outer
header, 98 bytes, the stream's associated data), then Tink's 40-byte stream header. Nothing
here is authenticated: segment 0 authenticates the header when a reader opens the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from callengine.crypto.errors import FormatError, TamperedError, TruncatedError
from callengine.crypto.stream import (
    _DERIVED_KEY_SIZE,
    TINK_NONCE_PREFIX_SIZE,
    TINK_TAG_SIZE,
    _segment_layout,
    _TinkParams,
)

MAGIC = b"CEREC"
FORMAT_VERSION = 1

# Outer header: magic | version | key id | segment size | ephemeral pub | wrapped key
_OUTER = struct.Struct(">5sB8sI32s48s")
OUTER_HEADER_SIZE = _OUTER.size  # 98

STREAM_HEADER_SIZE = 1 + _DERIVED_KEY_SIZE + TINK_NONCE_PREFIX_SIZE  # 40
HEADER_SIZE = OUTER_HEADER_SIZE + STREAM_HEADER_SIZE  # 138

# Tink requires CiphertextSegmentSize > len(stream header) + 16. The upper bound
# is ours: it caps what a reader must buffer for one segment.
MIN_SEGMENT_SIZE = STREAM_HEADER_SIZE + TINK_TAG_SIZE + 1  # 57
MAX_SEGMENT_SIZE = 1 << 24


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

    @property
    def whole_segments(self) -> tuple[int, int]:
        """(segments, plaintext bytes) of the whole segments alone, a short last slot left out:
        what a file its writer never closed holds for sure (a short slot there is a write torn
        by the writer's stop, which a recovering read rejects too)."""
        body = self.file_size - self.header_size  # after the stream header
        first = self.segment_size - STREAM_HEADER_SIZE  # the first shares with the header
        if body < first:
            return 0, 0
        whole = 1 + (body - first) // self.segment_size
        return whole, first + (whole - 1) * self.segment_size - whole * TINK_TAG_SIZE


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
