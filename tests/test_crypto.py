"""Tests for the CEREC v1 recording format (callengine/crypto.py)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine import crypto
from callengine.crypto import (
    FormatError,
    KeyUnwrapError,
    RecordingError,
    RecordingWriter,
    TamperedError,
    TruncatedError,
    WrongKeyError,
    generate_recipient_keypair,
    header_info,
    open_recording,
    verify,
)
from tests.support.ci import unavailable

VECTOR_DIR = Path(__file__).parent / "vectors" / "recording-format"
HDR = crypto.HEADER_SIZE  # 138
SMALL = 64  # segment size used where many segments are wanted cheaply
FIRST_PT = SMALL - 40 - 16  # 8 plaintext bytes in segment 0
PT = SMALL - 16  # 48 plaintext bytes in later segments


@pytest.fixture(scope="module")
def keys():
    return generate_recipient_keypair()


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


# --------------------------------------------------------------------------
# Tink conformance: the framing layer reproduces Tink's own known answers.
# Source: tink-java src/main/java/com/google/crypto/tink/streamingaead/
# internal/testing/AesGcmHkdfStreamingTestUtil.java (from Tink's cross-language
# test_manually_created_test_vector). Tuple: hash, ikm, derived key size,
# ciphertext segment size, plaintext, associated data, ciphertext.
# --------------------------------------------------------------------------

_K16 = "6eb56cdc726dfbe5d57f2fcdc6e9345b"
_K32 = "00112233445566778899aabbccddeeff6eb56cdc726dfbe5d57f2fcdc6e9345b"
TINK_VECTORS = [
    (hashes.SHA1, _K16, 16, 64,
     b"This is a fairly long plaintext. It is of the exact length to create three output blocks. ",
     b"aad",
     "1893b3af5e14ab378d065addfc8484da642c0862877baea8"
     "db92d9c77406a406168478821c4298eab3e6d531277f4c1a051714faebcaefcbca7b7be05e9445ea"
     "a0bb2904153398a25084dd80ae0edcd1c3079fcea2cd3770630ee36f7539207b8ec9d754956d486b"
     "71cdf989f0ed6fba6779b63558be0a66e668df14e1603cd2"
     "af8944844078345286d0b292e772e7190775c51a0f83e40c0b75821027e7e538e111"),
    (hashes.SHA1, _K16, 16, 64, b"", b"",
     "18ec99b2c3884194023bd41bb9bff309205354c750fa0cb3c0d02609abf71f88eaeaa48d7deca27f"),
    (hashes.SHA256, _K16, 16, 64, b"", b"",
     "18be78bce0cab6fd38a9041eea8ab0ffc4cf17e3c00b661d3927f5f79069f41a210fedc40b25648c"),
    (hashes.SHA512, _K16, 16, 64, b"", b"",
     "18fec8139ccb406e0f140d7e2bcc41e1b899bc1b121574cc31d1c78ed2ca1cdf324665b8dce21095"),
    (hashes.SHA1, _K32, 16, 64, b"", b"",
     "180880e85a24207a7b72cefde26306ed09d7d76e58104b751d005a3ffd72dd6151f0d9c8ccf163f7"),
    (hashes.SHA1, _K32, 32, 64, b"", b"",
     "28fae780c70a82d1256c8303a1261ac6a98cf557b4e173967a62f3c149517ba5b2431da93b3c6e90"
     "f508b34dc14bfda59bab05681c6ad3fa"),
    (hashes.SHA1, _K32, 32, 128, b"", b"",
     "28fae780c70a82d1256c8303a1261ac6a98cf557b4e173967a62f3c149517ba5b2431da93b3c6e90"
     "f508b34dc14bfda59bab05681c6ad3fa"),
    # Plaintext exactly fills segment 0: Tink emits ONE (final) segment.
    (hashes.SHA1, _K32, 32, 120,
     b"BLOCK 1.BLOCK 2.BLOCK 3.BLOCK 4.BLOCK 5.BLOCK 6.BLOCK 7.BLOCK 8.",
     bytes([0, 1, 2, 3]),
     "28782994617714a80fa085e15051a16854522330d6d0f26c049b2192f09cdd98b2eb90c753bfff27"
     "7a29e54fa4afb15d648c28477eb07f012535c767f5fdce24ffffae318480c1d37357d6d3c5111593"
     "18afa09ef38aa3f5456fd7817c5c02dd6e1a7fef174c8bd24e38b5982ac105497c0101ac5581fe5b"),
]


class _BytesSealer(crypto._SegmentSealer):
    def __init__(self, *args):
        self.out = bytearray()
        super().__init__(*args)

    def _emit(self, ct):
        self.out += ct


@pytest.mark.parametrize("vec", TINK_VECTORS, ids=range(len(TINK_VECTORS)))
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_tink_known_answers_encrypt(vec, chunk):
    hash_alg, ikm, dks, css, plaintext, ad, ct_hex = vec
    ct = bytes.fromhex(ct_hex)
    params = crypto._TinkParams(css, dks, hash_alg)
    salt, prefix = ct[1 : 1 + dks], ct[1 + dks : params.header_size]
    s = _BytesSealer(params, bytes.fromhex(ikm), ad, salt, prefix)
    for i in range(0, len(plaintext), chunk):
        s.write(plaintext[i : i + chunk])
    s._finish()
    assert s.stream_header + bytes(s.out) == ct


@pytest.mark.parametrize("vec", TINK_VECTORS, ids=range(len(TINK_VECTORS)))
def test_tink_known_answers_decrypt(vec):
    hash_alg, ikm, dks, css, plaintext, ad, ct_hex = vec
    ct = bytes.fromhex(ct_hex)
    params = crypto._TinkParams(css, dks, hash_alg)
    opener = crypto._SegmentOpener(params, bytes.fromhex(ikm), ad, ct[: params.header_size])
    body = ct[params.header_size :]
    n, _ = crypto._segment_layout(len(body), params)
    out, pos = b"", 0
    for i in range(n):
        size = (css - params.header_size) if i == 0 else css
        seg = body[pos : pos + size]
        pos += len(seg)
        plain = opener.open(i, seg, last=(i == n - 1))
        assert plain is not None
        out += plain
    assert out == plaintext


# --------------------------------------------------------------------------
# CEREC v1 vectors (tests/vectors/recording-format/)
# --------------------------------------------------------------------------

VECTOR_NAMES = sorted(p.stem for p in VECTOR_DIR.glob("*.json"))


def load_vector(name):
    return json.loads((VECTOR_DIR / f"{name}.json").read_text())


def test_vectors_present():
    assert VECTOR_NAMES == ["v1-empty", "v1-exact-fill", "v1-multisegment"]


@pytest.mark.parametrize("name", VECTOR_NAMES)
@pytest.mark.parametrize("chunk", [None, 1, 5, 640])
def test_vector_encrypt_reproduces_file(tmp_path, name, chunk):
    v = load_vector(name)
    i = {k: (bytes.fromhex(x) if isinstance(x, str) else x) for k, x in v["inputs"].items()}
    pub = X25519PrivateKey.from_private_bytes(i["recipient_private_key"]).public_key()
    out = tmp_path / "out.cerec"
    w = RecordingWriter(
        out,
        pub,
        segment_size=i["segment_size"],
        _insecure_fixed_randomness=crypto._InsecureFixedRandomness(
            i["data_key"], i["ephemeral_private_key"], i["salt"], i["nonce_prefix"]
        ),
    )
    pt = i["plaintext"]
    step = chunk or max(1, len(pt))
    for pos in range(0, len(pt), step):
        w.write(pt[pos : pos + step])
    w.close()
    expected = (VECTOR_DIR / f"{name}.cerec").read_bytes()
    got = out.read_bytes()
    assert got == expected
    assert got.hex() == v["output"]["header"] + "".join(v["output"]["segments"])
    assert w.sha256 == v["output"]["file_sha256"] == hashlib.sha256(expected).hexdigest()
    assert w.segments_written == len(v["output"]["segments"])
    assert w.bytes_in == len(pt)


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_decrypts(name):
    v = load_vector(name)
    priv = bytes.fromhex(v["inputs"]["recipient_private_key"])
    with open_recording(VECTOR_DIR / f"{name}.cerec", [priv]) as r:
        assert r.read_all() == bytes.fromhex(v["inputs"]["plaintext"])
        assert r.complete is True
        assert r.info.key_id == v["intermediate"]["key_id"]
        assert r.info.segments == len(v["output"]["segments"])


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_intermediates_follow_the_spec(name):
    """Recompute each step of docs/recording-format.md with bare primitives."""
    v = load_vector(name)
    i = {k: (bytes.fromhex(x) if isinstance(x, str) else x) for k, x in v["inputs"].items()}
    m = {k: (bytes.fromhex(x) if isinstance(x, str) else x) for k, x in v["intermediate"].items()}
    rpriv = X25519PrivateKey.from_private_bytes(i["recipient_private_key"])
    rpub = rpriv.public_key().public_bytes_raw()
    assert rpub == m["recipient_public_key"]
    assert hashlib.sha256(rpub).digest()[:8] == m["key_id"]
    # Reader side: the recipient computes the same shared secret.
    assert rpriv.exchange(
        X25519PrivateKey.from_private_bytes(i["ephemeral_private_key"]).public_key()
    ) == m["shared_secret"]
    kek = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=m["ephemeral_public_key"] + rpub,
        info=b"callengine-recording-v1/X25519-data-key-wrap",
    ).derive(m["shared_secret"])
    assert kek == m["kek"]
    assert AESGCM(kek).decrypt(bytes(12), m["wrapped_key"], None) == i["data_key"]
    outer = (b"CEREC\x01" + m["key_id"] + struct.pack(">I", i["segment_size"])
             + m["ephemeral_public_key"] + m["wrapped_key"])
    assert outer == m["outer_header"] and len(outer) == 98
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=i["salt"], info=outer
    ).derive(i["data_key"])
    assert derived == m["derived_key"]
    segs = [bytes.fromhex(s) for s in v["output"]["segments"]]
    plain = b"".join(
        AESGCM(derived).decrypt(bytes.fromhex(n), s, None) for n, s in zip(m["nonces"], segs)
    )
    assert plain == i["plaintext"]


def test_stream_part_is_a_plain_tink_ciphertext():
    """file[98:] is a Tink AES-GCM-HKDF ciphertext with AD = file[:98]."""
    v = load_vector("v1-multisegment")
    data = (VECTOR_DIR / "v1-multisegment.cerec").read_bytes()
    ad, stream = data[:98], data[98:]
    params = crypto._TinkParams(64)
    opener = crypto._SegmentOpener(params, bytes.fromhex(v["inputs"]["data_key"]), ad, stream[:40])
    first = opener.open(0, stream[40:64], last=False)
    assert first == bytes.fromhex(v["inputs"]["plaintext"])[:8]


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------

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
    monkeypatch.setattr(crypto, "_HAS_ENCRYPT_INTO", False)
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


# --------------------------------------------------------------------------
# Truncation and crash recovery
# --------------------------------------------------------------------------


@pytest.fixture
def five_segments(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(FIRST_PT + 3 * PT + 20)  # segments: 8, 48, 48, 48, 20
    path = tmp_path / "f.cerec"
    write_file(path, pub, data)
    return path, priv, data


def test_truncated_at_segment_boundary(five_segments):
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[3][0])  # keep segments 0..2, all non-final
    with pytest.raises(TruncatedError, match="without a last-segment flag"):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == data[: FIRST_PT + 2 * PT]
    assert r.complete is False and "segment boundary" in r.truncation


def test_truncated_mid_segment(five_segments):
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[2][0] + 30)  # segment 2 cut in half
    with pytest.raises(TruncatedError, match="partial"):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == data[: FIRST_PT + PT]
    assert r.complete is False


def test_truncated_tail_shorter_than_tag(five_segments):
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[4][0] + 5)
    with pytest.raises(TruncatedError, match="shorter than a tag"):
        open_recording(path, priv).read_all()
    with pytest.raises(TruncatedError):
        verify(path)  # also visible without keys
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == data[: FIRST_PT + 3 * PT]
    assert r.complete is False


def test_dropping_the_final_segment_is_truncation(five_segments):
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[4][0])
    with pytest.raises(TruncatedError):
        open_recording(path, priv).read_all()


def test_header_only_file(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "h.cerec"
    w = RecordingWriter(path, pub)
    w.abort()  # as if killed right after open
    with pytest.raises(TruncatedError, match="no segments"):
        open_recording(path, priv)
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == b"" and r.complete is False


@pytest.mark.parametrize("size", [0, 3, 5, 6, 50, HDR - 1])
def test_truncated_inside_header(tmp_path, keys, size):
    priv, pub = keys
    path = tmp_path / "x.cerec"
    write_file(path, pub, b"hello")
    os.truncate(path, size)
    with pytest.raises(TruncatedError, match="header"):
        open_recording(path, priv, recover=True)
    with pytest.raises(TruncatedError):
        header_info(path)


def test_kill_9_loses_at_most_the_buffered_segment(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "killed.cerec"
    seg = 4096
    total = 50 * 640 + 123
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from callengine.crypto import RecordingWriter
w = RecordingWriter({str(path)!r}, bytes.fromhex({pub.hex()!r}), segment_size={seg})
data = bytes(i % 251 for i in range({total}))
for i in range(0, len(data), 640):
    w.write(data[i:i + 640])
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    expected = bytes(i % 251 for i in range(total))
    with pytest.raises(TruncatedError):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    got = r.read_all()
    assert r.complete is False
    assert expected.startswith(got)
    assert total - len(got) <= seg - 16  # at most one segment of plaintext lost
    assert len(got) == (seg - 56) + (len(got) - (seg - 56)) // (seg - 16) * (seg - 16)


def test_context_manager_abort_on_exception(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "cm.cerec"
    with pytest.raises(RuntimeError):
        with RecordingWriter(path, pub, segment_size=SMALL) as w:
            w.write(b"z" * 100)
            raise RuntimeError("call dropped")
    with pytest.raises(TruncatedError):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == b"z" * (FIRST_PT + PT)  # complete segments survive
    with RecordingWriter(tmp_path / "ok.cerec", pub) as w:
        w.write(b"fine")
    assert open_recording(tmp_path / "ok.cerec", priv).read_all() == b"fine"


def test_reader_accepts_empty_final_segment(tmp_path, keys):
    """Our writer never emits an empty last segment after full ones (Tink's
    writer doesn't either), but Tink readers accept one, and so do we."""
    priv, pub = keys
    path = tmp_path / "e.cerec"
    w = RecordingWriter(path, pub, segment_size=SMALL)
    w.write(b"q" * FIRST_PT)
    w._seal(last=False)  # force segment 0 out as non-final
    w.close()  # final segment is then empty: a bare tag
    assert path.stat().st_size == HDR + (SMALL - 40) + 16
    r = open_recording(path, priv)
    assert r.read_all() == b"q" * FIRST_PT and r.complete is True


# --------------------------------------------------------------------------
# Tampering
# --------------------------------------------------------------------------


def test_reordered_segments(five_segments):
    path, priv, _ = five_segments
    offs = segment_offsets(path.stat().st_size)
    data = bytearray(path.read_bytes())
    (a0, a1), (b0, b1) = offs[1], offs[2]
    seg1, seg2 = bytes(data[a0:a1]), bytes(data[b0:b1])
    data[a0:a1], data[b0:b1] = seg2, seg1
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedError, match="segment 1"):
        open_recording(path, priv).read_all()
    with pytest.raises(TamperedError):
        open_recording(path, priv, recover=True).read_all()  # recover does not hide tampering


def test_segment_from_another_recording(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(FIRST_PT + 3 * PT)
    write_file(tmp_path / "a.cerec", pub, data)
    write_file(tmp_path / "b.cerec", pub, data)
    a = bytearray((tmp_path / "a.cerec").read_bytes())
    b = (tmp_path / "b.cerec").read_bytes()
    s0, s1 = segment_offsets(len(a))[1]
    a[s0:s1] = b[s0:s1]
    (tmp_path / "a.cerec").write_bytes(bytes(a))
    with pytest.raises(TamperedError):
        open_recording(tmp_path / "a.cerec", priv).read_all()


def test_bit_flip_in_segment(five_segments):
    path, priv, _ = five_segments
    offs = segment_offsets(path.stat().st_size)
    flip(path, offs[2][0] + 10, 3)
    with pytest.raises(TamperedError, match="segment 2"):
        open_recording(path, priv).read_all()
    assert verify(path).authenticated is False  # structure alone cannot see it
    with pytest.raises(TamperedError):
        verify(path, priv)


@pytest.mark.parametrize("where", ["ciphertext", "tag"])
def test_bit_flip_in_segment_zero_fails_at_open(five_segments, where):
    path, priv, _ = five_segments
    flip(path, HDR + (0 if where == "ciphertext" else SMALL - 40 - 1))
    with pytest.raises(TamperedError, match="segment 0"):
        open_recording(path, priv)


def test_bit_flip_in_final_segment_is_never_accepted(five_segments):
    path, priv, data = five_segments
    flip(path, path.stat().st_size - 1)
    with pytest.raises(RecordingError):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == data[: FIRST_PT + 3 * PT]  # the modified segment is not released
    assert r.complete is False


def test_bit_flip_in_full_size_final_segment(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "ff.cerec"
    write_file(path, pub, b"k" * (FIRST_PT + PT))  # final segment is full size
    flip(path, path.stat().st_size - 20)
    with pytest.raises(TamperedError, match="final segment"):
        open_recording(path, priv).read_all()


# Header field offsets: magic 0-4, version 5, key id 6-13, segment size 14-17,
# ephemeral pub 18-49, wrapped key 50-97, stream header length 98, salt
# 99-130, nonce prefix 131-137.
HEADER_FLIPS = [
    (0, FormatError),  # magic
    (4, FormatError),
    (5, FormatError),  # version
    (6, WrongKeyError),  # key id: no key matches
    (13, WrongKeyError),
    (14, TamperedError),  # segment size -> out of range
    (17, TamperedError),  # segment size -> other valid size, derived key differs
    (18, KeyUnwrapError),  # ephemeral public key
    (49, KeyUnwrapError),
    (50, KeyUnwrapError),  # wrapped data key
    (97, KeyUnwrapError),
    (98, TamperedError),  # stream header length byte
    (99, TamperedError),  # salt
    (130, TamperedError),
    (131, TamperedError),  # nonce prefix
    (137, TamperedError),
]


@pytest.mark.parametrize("offset,exc", HEADER_FLIPS)
def test_bit_flip_in_header(five_segments, offset, exc):
    path, priv, _ = five_segments
    flip(path, offset, 1)
    with pytest.raises(exc):
        open_recording(path, priv).read_all()
    with pytest.raises(RecordingError):
        open_recording(path, priv, recover=True).read_all()


def test_wrapped_key_flip_is_both_wrong_key_and_tampered(five_segments):
    path, priv, _ = five_segments
    flip(path, 60)
    with pytest.raises(WrongKeyError) as e1:
        open_recording(path, priv)
    assert isinstance(e1.value, TamperedError)
    assert "wrapped" in str(e1.value)


def test_wrong_private_key(tmp_path, keys):
    _, pub = keys
    other_priv, _ = generate_recipient_keypair()
    write_file(tmp_path / "w.cerec", pub, b"secret")
    with pytest.raises(WrongKeyError, match=crypto.key_id(pub).hex()):
        open_recording(tmp_path / "w.cerec", [other_priv])
    with pytest.raises(WrongKeyError):
        open_recording(tmp_path / "w.cerec", [])
    with pytest.raises(WrongKeyError):
        verify(tmp_path / "w.cerec", [other_priv])


def test_key_rotation(tmp_path):
    old_priv, old_pub = generate_recipient_keypair()
    new_priv, new_pub = generate_recipient_keypair()
    write_file(tmp_path / "old.cerec", old_pub, b"recorded before rotation")
    write_file(tmp_path / "new.cerec", new_pub, b"recorded after rotation")
    assert header_info(tmp_path / "old.cerec").key_id == crypto.key_id(old_pub).hex()
    assert header_info(tmp_path / "new.cerec").key_id == crypto.key_id(new_pub).hex()
    both = [new_priv, old_priv]
    assert open_recording(tmp_path / "old.cerec", both).read_all() == b"recorded before rotation"
    assert open_recording(tmp_path / "new.cerec", both).read_all() == b"recorded after rotation"
    with pytest.raises(WrongKeyError):
        open_recording(tmp_path / "old.cerec", [new_priv])


def test_not_a_recording(tmp_path, keys):
    priv, _ = keys
    (tmp_path / "x.wav").write_bytes(b"RIFF" + bytes(500))
    with pytest.raises(FormatError, match="magic"):
        open_recording(tmp_path / "x.wav", priv)
    with pytest.raises(FormatError):
        header_info(tmp_path / "x.wav")


# --------------------------------------------------------------------------
# Files on disk: mode, exclusivity, no plaintext
# --------------------------------------------------------------------------


def test_file_mode_0600_even_with_permissive_umask(tmp_path, keys):
    _, pub = keys
    old = os.umask(0)
    try:
        write_file(tmp_path / "m.cerec", pub, b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.cerec").stat().st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "o.cerec"
    write_file(path, pub, b"first")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        RecordingWriter(path, pub)
    assert path.read_bytes() == before
    (tmp_path / "link.cerec").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        RecordingWriter(tmp_path / "link.cerec", pub)
    assert not (tmp_path / "elsewhere").exists()


def test_no_plaintext_on_disk(tmp_path, keys):
    priv, pub = keys
    marker = b"PLAINTEXT-AUDIO-MARKER-0123456789"
    data = marker * 3000 + bytes(100_000)  # recognisable pattern and long zero runs
    path = tmp_path / "p.cerec"
    frames = [640] * (len(data) // 640) + [len(data) % 640]
    write_file(path, pub, data, segment_size=crypto.DEFAULT_SEGMENT_SIZE, chunks=frames)
    blob = path.read_bytes()
    assert marker not in blob
    assert marker[:8] not in blob
    assert bytes(64) not in blob
    assert [p for p in tmp_path.iterdir()] == [path]  # no temp or side files
    assert open_recording(path, priv).read_all() == data


def test_writer_needs_only_the_public_key(tmp_path, keys):
    priv, pub = keys
    with pytest.raises(TypeError):
        RecordingWriter(tmp_path / "n.cerec", X25519PrivateKey.from_private_bytes(priv))
    assert not (tmp_path / "n.cerec").exists()


def test_rejects_low_order_recipient_key(tmp_path):
    with pytest.raises(ValueError):
        RecordingWriter(tmp_path / "lo.cerec", bytes(32))
    assert not (tmp_path / "lo.cerec").exists()


@pytest.mark.parametrize("size", [0, 56, crypto.MAX_SEGMENT_SIZE + 1])
def test_segment_size_bounds(tmp_path, keys, size):
    with pytest.raises(ValueError):
        RecordingWriter(tmp_path / "s.cerec", keys[1], segment_size=size)
    assert not (tmp_path / "s.cerec").exists()


# --------------------------------------------------------------------------
# Key files
# --------------------------------------------------------------------------


def test_key_files_round_trip(tmp_path):
    priv, pub = generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "rec.key", priv)
    crypto.save_public_key(tmp_path / "rec.pub", pub)
    assert stat.S_IMODE((tmp_path / "rec.key").stat().st_mode) == 0o600
    assert (tmp_path / "rec.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "rec.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert crypto.load_private_key(tmp_path / "rec.key") == priv
    assert crypto.load_public_key(tmp_path / "rec.pub") == pub
    with pytest.raises(FileExistsError):
        crypto.save_private_key(tmp_path / "rec.key", priv)
    # PEM bytes work anywhere a key is accepted.
    write_file(tmp_path / "k.cerec", (tmp_path / "rec.pub").read_bytes(), b"pem")
    pem_priv = (tmp_path / "rec.key").read_bytes()
    assert open_recording(tmp_path / "k.cerec", pem_priv).read_all() == b"pem"


def test_openssl_key_files_interoperate(tmp_path):
    """Operators may generate the recipient key offline with plain openssl."""
    if shutil.which("openssl") is None:
        unavailable("openssl not installed")
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "X25519", "-out", str(tmp_path / "r.key")], check=True
    )
    subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "r.key"), "-pubout", "-out", str(tmp_path / "r.pub")],
        check=True,
    )
    priv = crypto.load_private_key(tmp_path / "r.key")
    pub = crypto.load_public_key(tmp_path / "r.pub")
    write_file(tmp_path / "o.cerec", pub, b"openssl")
    assert open_recording(tmp_path / "o.cerec", priv).read_all() == b"openssl"
    crypto.save_private_key(tmp_path / "ours.key", priv)
    out = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "ours.key"), "-pubout"], check=True, capture_output=True
    ).stdout
    assert out == (tmp_path / "r.pub").read_bytes()


def test_encrypted_private_key_file(tmp_path):
    priv, _ = generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "enc.key", priv, password=b"correct horse")
    assert "ENCRYPTED" in (tmp_path / "enc.key").read_text()
    assert crypto.load_private_key(tmp_path / "enc.key", password=b"correct horse") == priv
    with pytest.raises((TypeError, ValueError)):
        crypto.load_private_key(tmp_path / "enc.key")


# --------------------------------------------------------------------------
# verify / header_info
# --------------------------------------------------------------------------


def test_verify_and_header_info(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(1000)
    path = tmp_path / "v.cerec"
    w = write_file(path, pub, data, segment_size=256)
    info = header_info(path)
    assert info.key_id == crypto.key_id(pub).hex()
    assert info.segment_size == 256 and info.version == 1
    assert info.segments == w.segments_written and info.plaintext_size == 1000
    structural = verify(path)
    assert structural.authenticated is False and structural.method == "structural"
    assert "STRUCTURE ONLY" in str(structural) and "nothing authenticated" in str(structural)
    full = verify(path, [priv])
    assert full.authenticated is True and full.method == "authenticated"
    assert full.plaintext_size == 1000 and full.segments == w.segments_written
    assert full.sha256 == structural.sha256 == w.sha256
    assert str(full).startswith("AUTHENTICATED")


def test_reader_is_single_pass(tmp_path, keys):
    priv, pub = keys
    write_file(tmp_path / "s.cerec", pub, b"once")
    r = open_recording(tmp_path / "s.cerec", priv)
    assert r.read_all() == b"once"
    with pytest.raises(RuntimeError):
        r.read_all()
