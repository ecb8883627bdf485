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

# The kernel cuts a write short (SIGKILL, a full disk) only between pages, and after a power cut
# a file's size is where a write ended or a page boundary: a torn last segment leaves the file
# ending on a multiple of the page size (4 KiB, or a multiple of it).
TORN_WRITE_BOUNDARY = 4096


class RecordingReader:
    """Iterate to get plaintext segments (each authenticated before it is
    yielded). Single pass, like a file. Use open_recording() to create one.

    Header and segment 0 are checked when the reader is opened, so a wrong
    key or modified header raises from open_recording(). Later segments raise
    during iteration.

    Strict (the default) is for recordings that were closed: anything but a
    complete stream raises - TruncatedError only for a cut at a segment
    boundary, TamperedError for every other change. recover=True is for
    recordings whose writer did not close them (killed, aborted, still
    writing): a cut at a segment boundary, or a torn last write, ends the
    stream after the last authentic segment (`complete` becomes False);
    tampering still raises. The rules: docs/recording-format.md.
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
            plain = self._opener.open(i, view, last=True) if size >= TINK_TAG_SIZE else None
            if plain is not None:
                self.complete = True
                yield self._count(plain)
                break
            if size == full:
                plain = self._opener.open(i, view, last=False)
                if plain is None:
                    raise TamperedError(
                        f"final segment {i} fails authentication both as the last segment and "
                        "as a middle one (modified)"
                    )
                yield self._count(plain)
                self._stop_truncated(
                    f"stream ends after segment {i} without a last-segment flag "
                    "(truncated at a segment boundary: writer killed or never closed)"
                )
                break
            self._partial_tail(i, size, full)
            break

    def _partial_tail(self, i: int, size: int, full: int) -> None:
        """The last slot is shorter than a segment and does not open as final.

        A recording that was closed is never torn, so in strict mode this is a modified file
        (bits changed, bytes appended, or cut mid-segment: they look the same). In recovery
        mode it may be a write torn by a crash - but only if an authentic segment precedes it
        (otherwise nothing vouches for the header) and the file ends on a page boundary, where
        the kernel stops a write cut short by a kill, a full disk or a power cut."""
        what = f"final segment {i} is partial ({size} of {full} bytes) and does not authenticate"
        if not self.recover:
            raise TamperedError(
                f"{what}: the file was modified or cut mid-segment "
                "(a closed recording is never torn)"
            )
        if i == 0:
            raise TamperedError(
                f"{what}, and no segment before it vouches for the header: the header or "
                "segment 0 was modified (a first write torn by a crash looks the same, and "
                "holds nothing authentic)"
            )
        if self.info.file_size % TORN_WRITE_BOUNDARY:
            raise TamperedError(
                f"{what}: the file ({self.info.file_size} bytes) does not end on a "
                f"{TORN_WRITE_BOUNDARY}-byte boundary, so this is no torn write: modified"
            )
        self._stop_truncated(
            f"{what}: a write torn by a crash (the file ends on a {TORN_WRITE_BOUNDARY}-byte "
            f"boundary); its bytes are not released, the recording ends after segment {i - 1}"
        )

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
    complete: bool = True  # False: recover=True found an authentic prefix only
    truncation: str | None = None  # why it is incomplete

    @property
    def method(self) -> str:
        return "authenticated" if self.authenticated else "structural"

    def __str__(self) -> str:
        if self.authenticated:
            state = "complete" if self.complete else f"INCOMPLETE ({self.truncation})"
            return (
                f"AUTHENTICATED: {self.segments} segments, {self.plaintext_size} plaintext bytes, "
                f"{state} (key id {self.info.key_id})"
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


def verify(path: str | os.PathLike, private_keys=None, *, recover: bool = False) -> VerifyReport:
    """With keys: decrypt and authenticate everything (raises on any failure; with
    recover=True, for a recording that was never closed, an authentic prefix is reported as
    incomplete, under open_recording's rules). Without keys: structural check only - header
    parses, sizes are possible; this can detect truncation mid-segment but not modification."""
    if private_keys is None:
        info = header_info(path)
        if info.segments == 0:
            raise TruncatedError("no segments after the header")
        if info.plaintext_size is None:
            raise TruncatedError("trailing partial segment shorter than a tag")
        return VerifyReport(False, info, _file_sha256(path), info.plaintext_size, info.segments)
    with open_recording(path, private_keys, recover=recover) as reader:
        for _ in reader:
            pass
        return VerifyReport(
            True, reader.info, _file_sha256(path), reader.bytes_out, reader.segments_read,
            complete=bool(reader.complete), truncation=reader.truncation,
        )
