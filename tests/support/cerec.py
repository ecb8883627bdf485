"""Helpers for the CEREC format tests: small segments, writing a file in chunks, finding and
flipping its bytes."""

from __future__ import annotations

from pathlib import Path

from callengine import crypto
from callengine.crypto import RecordingWriter

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors" / "recording-format"
HDR = crypto.HEADER_SIZE  # 138
SMALL = 64  # segment size used where many segments are wanted cheaply
FIRST_PT = SMALL - 40 - 16  # 8 plaintext bytes in segment 0
PT = SMALL - 16  # 48 plaintext bytes in later segments


def write_file(path, pub, data: bytes, *, segment_size=SMALL, chunks=None) -> RecordingWriter:
    w = RecordingWriter(path, pub, segment_size=segment_size)
    if chunks is None:
        w.write(data)
    else:
        pos = 0
        for n in chunks:
            w.write(data[pos : pos + n])
            pos += n
        assert pos == len(data)
    w.close()
    return w


def segment_offsets(file_size: int, segment_size: int = SMALL) -> list[tuple[int, int]]:
    """(start, end) file offsets of each segment."""
    out, pos, size = [], HDR, segment_size - 40
    while pos < file_size:
        out.append((pos, min(pos + size, file_size)))
        pos += size
        size = segment_size
    return out


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
