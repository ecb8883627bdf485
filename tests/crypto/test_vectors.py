"""The CEREC v1 test vectors (tests/vectors/recording-format/): the byte format, bit for bit."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto import RecordingWriter, open_recording
from callengine.crypto.stream import _SegmentOpener, _TinkParams
from callengine.crypto.writer import _InsecureFixedRandomness
from tests.support.cerec import VECTOR_DIR


ALL_VECTORS = sorted(p.stem for p in VECTOR_DIR.glob("*.json"))
# The vectors whose plaintext and segments are inlined as hex; v1-production (production
# parameters, 132 KB) is checked, against Tink too, in test_tink_oracle.py.
VECTOR_NAMES = [n for n in ALL_VECTORS if n != "v1-production"]


def load_vector(name):
    return json.loads((VECTOR_DIR / f"{name}.json").read_text())


def test_vectors_present():
    assert ALL_VECTORS == ["v1-empty", "v1-exact-fill", "v1-multisegment", "v1-production"]


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
        _insecure_fixed_randomness=_InsecureFixedRandomness(
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
    params = _TinkParams(64)
    opener = _SegmentOpener(params, bytes.fromhex(v["inputs"]["data_key"]), ad, stream[:40])
    first = opener.open(0, stream[40:64], last=False)
    assert first == bytes.fromhex(v["inputs"]["plaintext"])[:8]
