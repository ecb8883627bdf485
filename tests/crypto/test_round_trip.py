"""Recordings written and read back (callengine/crypto/writer.py, reader.py)."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from callengine import crypto
from callengine.crypto import RecordingWriter, open_recording, stream
from tests.support.cerec import FIRST_PT, HDR, PT, SMALL, write_file


ROUND_TRIP_SIZES = [
    0,
    1,
    FIRST_PT - 1,
    FIRST_PT,  # segment 0 exactly full -> single final segment
    FIRST_PT + 1,
    FIRST_PT + PT,  # two exactly full segments
    FIRST_PT + PT + 1,
    FIRST_PT + 5 * PT,
    3000,
]


@pytest.mark.parametrize("size", ROUND_TRIP_SIZES)
def test_round_trip_sizes(tmp_path, keys, size):
    priv, pub = keys
    data = os.urandom(size)
    w = write_file(tmp_path / "r.cerec", pub, data)
    with open_recording(tmp_path / "r.cerec", priv) as r:
        assert r.read_all() == data
        assert r.complete is True
        assert r.segments_read == w.segments_written
    # Segment count follows Tink's look-ahead: never an empty trailing segment.
    expected_segments = 1 if size <= FIRST_PT else 1 + -(-(size - FIRST_PT) // PT)
    assert w.segments_written == expected_segments
    assert w.bytes_in == size


def test_round_trip_default_segment_size_boundaries(tmp_path, keys):
    priv, pub = keys
    first = crypto.DEFAULT_SEGMENT_SIZE - 56
    for size in (first, first + 1, first + crypto.DEFAULT_SEGMENT_SIZE - 16):
        data = os.urandom(size)
        path = tmp_path / f"d{size}.cerec"
        frames = [640] * (size // 640) + [size % 640]
        write_file(path, pub, data, segment_size=crypto.DEFAULT_SEGMENT_SIZE, chunks=frames)
        assert open_recording(path, priv).read_all() == data


def test_round_trip_random_write_sizes(tmp_path, keys):
    priv, pub = keys
    rng = random.Random(1234)
    for trial in range(25):
        seg = rng.choice([57, 64, 100, 333, 4096])
        total = rng.randrange(0, 20_000)
        data = rng.randbytes(total)
        chunks, left = [], total
        while left:
            n = min(left, rng.choice([0, 1, 2, 3, rng.randrange(1, 700), rng.randrange(1, 9000)]))
            chunks.append(n)
            left -= n
        path = tmp_path / f"t{trial}.cerec"
        w = write_file(path, pub, data, segment_size=seg, chunks=chunks)
        assert open_recording(path, [priv]).read_all() == data
        assert w.bytes_in == total


def test_iteration_yields_segments(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(FIRST_PT + 2 * PT + 5)
    write_file(tmp_path / "i.cerec", pub, data)
    parts = list(open_recording(tmp_path / "i.cerec", priv))
    assert [len(p) for p in parts] == [FIRST_PT, PT, PT, 5]
    assert b"".join(parts) == data


def test_write_accepts_bytearray_and_memoryview(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(500)
    w = RecordingWriter(tmp_path / "m.cerec", pub, segment_size=SMALL)
    w.write(bytearray(data[:100]))
    w.write(memoryview(data)[100:400])
    w.write(data[400:])
    w.close()
    assert open_recording(tmp_path / "m.cerec", priv).read_all() == data


def test_interleaved_writers_and_threads(tmp_path, keys):
    """Writers share a per-thread scratch buffer; interleaving must not mix them."""
    import threading

    priv, pub = keys

    def run(tag: str, sizes: list[int]) -> dict:
        rng = random.Random(tag)
        ws = {s: RecordingWriter(tmp_path / f"{tag}-{s}.cerec", pub, segment_size=s) for s in sizes}
        data = {s: bytearray() for s in sizes}
        for _ in range(400):
            s = rng.choice(sizes)
            chunk = rng.randbytes(rng.randrange(1, 700))
            ws[s].write(chunk)
            data[s] += chunk
        for w in ws.values():
            w.close()
        return data

    results = {}
    threads = [
        threading.Thread(target=lambda t=t: results.__setitem__(t, run(t, [57, 64, 1000, 70000])))
        for t in ("a", "b", "c")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tag, data in results.items():
        for s, expected in data.items():
            assert open_recording(tmp_path / f"{tag}-{s}.cerec", priv).read_all() == expected


def test_fallback_without_encrypt_into(tmp_path, keys, monkeypatch):
    priv, pub = keys
    data = os.urandom(1000)
    write_file(tmp_path / "a.cerec", pub, data)
    monkeypatch.setattr(stream, "_HAS_ENCRYPT_INTO", False)
    write_file(tmp_path / "b.cerec", pub, data)
    assert open_recording(tmp_path / "b.cerec", priv).read_all() == data
    assert os.path.getsize(tmp_path / "a.cerec") == os.path.getsize(tmp_path / "b.cerec")


def test_writer_counters_and_digest(tmp_path, keys):
    _, pub = keys
    w = RecordingWriter(tmp_path / "c.cerec", pub, segment_size=SMALL, fsync_every=2)
    assert w.sha256 is None and w.segments_written == 0
    w.write(b"x" * (FIRST_PT + PT + 1))
    assert w.segments_written == 2  # both full segments are on disk before close
    assert w.bytes_in == FIRST_PT + PT + 1
    w.close()
    data = (tmp_path / "c.cerec").read_bytes()
    assert w.segments_written == 3
    assert w.bytes_written == len(data)
    assert w.sha256 == hashlib.sha256(data).hexdigest()
    assert w.key_id == crypto.key_id(pub).hex()
    w.close()  # idempotent
    with pytest.raises(ValueError):
        w.write(b"more")


def test_segments_reach_disk_before_close(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "live.cerec"
    w = RecordingWriter(path, pub, segment_size=SMALL)
    assert path.stat().st_size == HDR  # header written at open
    w.write(b"a" * FIRST_PT)
    assert path.stat().st_size == HDR  # full segment held until the next byte (look-ahead)
    w.write(b"b")
    assert path.stat().st_size == HDR + SMALL - 40
    w.close()
