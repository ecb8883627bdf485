"""Reading a CEREC file back: RecordingReader (open_recording) and verify.

Every segment is authenticated before its plaintext is handed out; truncation, tampering and a
wrong key each raise their own RecordingError (or, with recover=True, truncation just ends the
stream).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from callengine.crypto.errors import TamperedError, TruncatedError
from callengine.crypto.header import HEADER_SIZE, RecordingInfo, _info, _read_header, header_info
from callengine.crypto.keys import KeyLike
from callengine.crypto.stream import TINK_TAG_SIZE, _segment_layout, _SegmentOpener
from callengine.crypto.wrap import unwrap_data_key


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
            data_key = unwrap_data_key(
                header.key_id, header.ephemeral_pub, header.wrapped_key, private_keys
            )
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
