"""The tamper matrix: every kind of change to a recording, and what the reader says about it.

Run it to print the table (against any checkout: it uses only `callengine.crypto` and
tests/support/cerec.py):

    PYTHONPATH=/path/to/checkout python tests/crypto/tamper_matrix.py

tests/crypto/test_tamper_matrix.py asserts that every row is 100 % right. Files are written at
the production segment size (64 KiB). Expected results follow docs/recording-format.md's table:

* any change to a header byte: TamperedError or WrongKeyError (FormatError for the magic and
  the version: a reader cannot tell a flipped version byte from a file of a later version);
* any change to a segment, a swap, a duplicate, a dropped segment before the last, appended
  bytes: TamperedError, in strict and in recovery mode alike;
* a cut at a segment boundary: TruncatedError (strict), the exact authentic prefix (recovery);
* a cut inside a segment: TamperedError (strict: a closed file is never torn); in recovery the
  authentic prefix only where the cut could be a torn write (the file ends on a 4096-byte page
  boundary, after at least one authentic segment), else TamperedError;
* a wrong key: WrongKeyError.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from callengine import crypto
from callengine.crypto import (
    FormatError,
    RecordingError,
    TamperedError,
    TruncatedError,
    WrongKeyError,
)
from tests.support.cerec import segment_offsets

SEG = crypto.DEFAULT_SEGMENT_SIZE
HDR = crypto.HEADER_SIZE  # 138
PAGE = 4096
FIRST_PT = SEG - 40 - 16  # 65,480 plaintext bytes in segment 0
PT = SEG - 16  # 65,520 in the others

# A one-segment file (shorter than one segment: the case of finding 3, about 2.5 s at 8 kHz),
# a small one whose every body bit is flipped, and a four-segment file (3 full + a partial).
FILES = {
    "one-segment": 40_000,
    "one-segment-small": 1_000,
    "multi-segment": FIRST_PT + 2 * PT + 7_000,
}
BODY_SAMPLE = 48  # bit flips per segment of the larger files (plus each segment's edges)
GARBAGE = [*range(1, 17), 17, 100, 1_000, SEG, SEG + 1]  # 21 appended lengths


@dataclass
class Row:
    family: str
    file: str
    mode: str
    total: int = 0
    right: int = 0
    wrong: Counter = field(default_factory=Counter)

    def add(self, ok: bool, got: str) -> None:
        self.total += 1
        if ok:
            self.right += 1
        else:
            self.wrong[got] += 1


def outcome(path: Path, keys, recover: bool) -> tuple[str, object]:
    """("complete" | "incomplete", plaintext) or ("error", the exception)."""
    try:
        with crypto.open_recording(path, keys, recover=recover) as reader:
            data = reader.read_all()
            return ("complete" if reader.complete else "incomplete"), data
    except RecordingError as exc:
        return "error", exc


def describe(kind: str, value) -> str:
    if kind == "error":
        return type(value).__name__
    return f"{kind} ({len(value)} B)"


def segment_bounds(size: int) -> list[tuple[int, int]]:
    return segment_offsets(size, SEG)


def header_expected(offset: int) -> tuple[type, ...]:
    if offset < 6:  # magic, version
        return (FormatError,)
    if offset < 14:  # key id: no key matches
        return (WrongKeyError,)
    return (TamperedError, WrongKeyError)  # KeyUnwrapError is both


def _is(kind, value, types) -> bool:
    return kind == "error" and isinstance(value, types)


class Matrix:
    def __init__(self, workdir: Path, seed: int = 11):
        self.dir = workdir
        self.rng = random.Random(seed)
        self.private, self.public = crypto.generate_recipient_keypair()
        self.rows: dict[tuple[str, str, str], Row] = {}

    def row(self, family: str, file: str, mode: str) -> Row:
        key = (family, file, mode)
        if key not in self.rows:
            self.rows[key] = Row(family, file, mode)
        return self.rows[key]

    def write(self, name: str, size: int) -> tuple[Path, bytes]:
        data = self.rng.randbytes(size)
        path = self.dir / f"{name}.cerec"
        path.unlink(missing_ok=True)
        with crypto.RecordingWriter(path, self.public, fsync_on_close=False) as w:
            for i in range(0, size, 640):
                w.write(data[i : i + 640])
        return path, data

    def check(self, family: str, file: str, path: Path, strict_ok: Callable,
              recover_ok: Callable, keys=None) -> None:
        keys = [self.private] if keys is None else keys
        for mode, ok in (("strict", strict_ok), ("recover", recover_ok)):
            kind, value = outcome(path, keys, mode == "recover")
            self.row(family, file, mode).add(ok(kind, value), describe(kind, value))

    # ---- the families --------------------------------------------------------------------

    def flips(self, family: str, file: str, path: Path, bits: Iterator[tuple[int, int]],
              expected: Callable[[int], tuple[type, ...]]) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            for offset, bit in bits:
                (byte,) = os.pread(fd, 1, offset)
                os.pwrite(fd, bytes([byte ^ (1 << bit)]), offset)
                types = expected(offset)
                self.check(family, file, path, lambda k, v: _is(k, v, types),
                           lambda k, v: _is(k, v, types))
                os.pwrite(fd, bytes([byte]), offset)
        finally:
            os.close(fd)

    def variant(self, family: str, file: str, name: str, blob: bytes, strict_ok: Callable,
                recover_ok: Callable, keys=None) -> None:
        path = self.dir / f"{name}.cerec"
        path.write_bytes(blob)
        self.check(family, file, path, strict_ok, recover_ok, keys)
        path.unlink()

    def run(self) -> list[Row]:
        tampered = lambda k, v: _is(k, v, TamperedError)  # noqa: E731
        for file, size in FILES.items():
            path, plain = self.write(file, size)
            blob = path.read_bytes()
            bounds = segment_bounds(len(blob))
            assert len(blob) % PAGE, "the matrix files must not end on a page boundary"

            self.flips("header bit flip", file, path,
                       itertools.product(range(HDR), range(8)), header_expected)
            if file == "one-segment-small":
                body = itertools.product(range(HDR, len(blob)), range(8))
            else:
                body = [(off, self.rng.randrange(8)) for start, end in bounds
                        for off in (start, end - 1, *(self.rng.randrange(start, end)
                                                      for _ in range(BODY_SAMPLE)))]
            self.flips("body bit flip", file, path, iter(body), lambda _: (TamperedError,))

            # Cuts at every segment boundary (the header alone included): truncation.
            prefix = 0
            for j, (start, _) in enumerate(bounds):
                want = plain[:prefix]
                self.variant("cut at a segment boundary", file, "cut", blob[:start],
                             lambda k, v: _is(k, v, TruncatedError),
                             lambda k, v, want=want: k == "incomplete" and v == want)
                prefix += FIRST_PT if j == 0 else PT
            # Cuts inside each segment: never on a page boundary (not a torn write) ...
            for j, (start, end) in enumerate(bounds):
                for cut in {start + 1, start + 15, start + 16, (start + end) // 2, end - 1}:
                    if start < cut < end and cut % PAGE:
                        self.variant("cut mid-segment", file, "cut", blob[:cut], tampered,
                                     tampered)
            # ... and on page boundaries: a torn write, if an authentic segment precedes it.
            for cut in range(PAGE, len(blob), PAGE):
                j = next(i for i, (s, e) in enumerate(bounds) if s <= cut < e)
                if cut == bounds[j][0]:
                    continue
                want = plain[: FIRST_PT + (j - 1) * PT] if j else None
                self.variant(
                    "cut mid-segment on a page boundary", file, "cut", blob[:cut], tampered,
                    (lambda k, v, want=want: k == "incomplete" and v == want) if j else tampered)

            segs = [blob[s:e] for s, e in bounds]
            head = blob[:HDR]
            for a, b in itertools.combinations(range(len(segs)), 2):
                swapped = list(segs)
                swapped[a], swapped[b] = segs[b], segs[a]
                self.variant("swap segments", file, "v", head + b"".join(swapped), tampered,
                             tampered)
            for j in range(len(segs)):
                self.variant("duplicate a segment", file, "v",
                             head + b"".join(segs[: j + 1] + segs[j:]), tampered, tampered)
            for j in range(len(segs) - 1):  # dropping the last one is a boundary cut
                self.variant("drop a segment", file, "v",
                             head + b"".join(segs[:j] + segs[j + 1 :]), tampered, tampered)
            for n in GARBAGE:
                extra = self.rng.randbytes(n)
                if (len(blob) + n) % PAGE == 0:
                    extra += b"\0"
                self.variant("append garbage", file, "v", blob + extra, tampered, tampered)
            other_private, _ = crypto.generate_recipient_keypair()
            wrong = lambda k, v: _is(k, v, WrongKeyError)  # noqa: E731
            for name, keys in (("another key", [other_private]), ("no key", [])):
                self.variant(f"wrong key ({name})", file, "v", blob, wrong, wrong, keys)
            path.unlink()
        return list(self.rows.values())


def run_matrix() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="cerec-matrix-") as tmp:
        return Matrix(Path(tmp)).run()


def table(rows: list[Row]) -> str:
    lines = [f"{'case':38} {'file':18} {'mode':8} {'right':>13}  wrong outcomes"]
    for r in rows:
        wrong = ", ".join(f"{n}× {what}" for what, n in r.wrong.most_common()) or "-"
        lines.append(f"{r.family:38} {r.file:18} {r.mode:8} {r.right:>6}/{r.total:<6}  {wrong}")
    total = sum(r.total for r in rows)
    right = sum(r.right for r in rows)
    lines.append(f"TOTAL {right} of {total} cases read as docs/recording-format.md says")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run_matrix()))
    sys.exit(0)
