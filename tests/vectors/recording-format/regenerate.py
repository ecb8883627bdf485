"""Regenerate the CEREC v1 test vectors in this directory.

    .venv/bin/python tests/vectors/recording-format/regenerate.py

The vectors are the format's contract: only regenerate them on purpose (a new
format version), and review the diff. Intermediate values are computed here
directly from `cryptography` primitives following docs/recording-format.md,
independently of callengine.crypto; the file bytes come from RecordingWriter.
tests/crypto/test_vectors.py checks that the two agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from callengine import crypto  # noqa: E402
from callengine.crypto.writer import _InsecureFixedRandomness  # noqa: E402

# Fixed "random" inputs: simple byte ranges so they are easy to retype.
RECIPIENT_PRIVATE_KEY = bytes(range(0x00, 0x20))
EPHEMERAL_PRIVATE_KEY = bytes(range(0x20, 0x40))
DATA_KEY = bytes(range(0x40, 0x60))
SALT = bytes(range(0x60, 0x80))
NONCE_PREFIX = bytes(range(0x80, 0x87))

VECTORS = [
    {
        "name": "v1-multisegment",
        "description": "120-byte plaintext, segment size 64: segments of 8, 48, 48 and 16 plaintext bytes",
        "segment_size": 64,
        "plaintext": (b"The quick brown fox jumps over the lazy dog. " * 3)[:120],
    },
    {
        "name": "v1-exact-fill",
        "description": "56-byte plaintext, segment size 64: fills segments 0 and 1 exactly, so "
        "the last segment is full-size and flagged last (Tink look-ahead); no empty segment",
        "segment_size": 64,
        "plaintext": bytes(range(56)),
    },
    {
        "name": "v1-empty",
        "description": "empty recording at the default segment size: one empty final segment (tag only)",
        "segment_size": 65536,
        "plaintext": b"",
    },
    {
        # Too big to inline: the JSON gives the plaintext's rule and digest, and each
        # segment's nonce, size, digest and tag; the .cerec file has every byte.
        "name": "v1-production",
        "description": "production parameters (segment size 65536, HKDF-SHA256, 32-byte keys): "
        "132,000-byte plaintext, byte i = i mod 251; segments of 65,480 and 65,520 plaintext "
        "bytes (non-final) and 1,000 (final)",
        "segment_size": 65536,
        "plaintext": bytes(i % 251 for i in range(65_480 + 65_520 + 1_000)),
        "plaintext_rule": "byte i = i mod 251, for i in 0..131999",
    },
]


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def intermediates(segment_size: int, plaintext: bytes) -> dict:
    recipient = X25519PrivateKey.from_private_bytes(RECIPIENT_PRIVATE_KEY)
    recipient_pub = recipient.public_key().public_bytes_raw()
    eph = X25519PrivateKey.from_private_bytes(EPHEMERAL_PRIVATE_KEY)
    eph_pub = eph.public_key().public_bytes_raw()
    shared = eph.exchange(recipient.public_key())
    kek = hkdf(shared, eph_pub + recipient_pub, b"callengine-recording-v1/X25519-data-key-wrap")
    wrapped = AESGCM(kek).encrypt(bytes(12), DATA_KEY, None)
    kid = hashlib.sha256(recipient_pub).digest()[:8]
    outer = b"CEREC" + bytes([1]) + kid + struct.pack(">I", segment_size) + eph_pub + wrapped
    derived = hkdf(DATA_KEY, SALT, outer)
    stream_header = bytes([40]) + SALT + NONCE_PREFIX
    # Split per Tink: segment 0 holds segment_size-40-16 bytes, the others
    # segment_size-16; a full segment is final if nothing follows it.
    sizes, rest, cap = [], len(plaintext), segment_size - 40 - 16
    while True:
        take = min(cap, rest)
        sizes.append(take)
        rest -= take
        cap = segment_size - 16
        if rest == 0:
            break
    segments, nonces, pos = [], [], 0
    for i, size in enumerate(sizes):
        nonce = NONCE_PREFIX + struct.pack(">IB", i, 1 if i == len(sizes) - 1 else 0)
        nonces.append(nonce.hex())
        segments.append(AESGCM(derived).encrypt(nonce, plaintext[pos : pos + size], None))
        pos += size
    return {
        "recipient_public_key": recipient_pub,
        "key_id": kid,
        "ephemeral_public_key": eph_pub,
        "shared_secret": shared,
        "kek": kek,
        "wrapped_key": wrapped,
        "outer_header": outer,
        "stream_header": stream_header,
        "derived_key": derived,
        "nonces": nonces,
        "segments": segments,
    }


def main() -> None:
    for vec in VECTORS:
        mid = intermediates(vec["segment_size"], vec["plaintext"])
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "out.cerec")
            w = crypto.RecordingWriter(
                path,
                mid["recipient_public_key"],
                segment_size=vec["segment_size"],
                _insecure_fixed_randomness=_InsecureFixedRandomness(
                    DATA_KEY, EPHEMERAL_PRIVATE_KEY, SALT, NONCE_PREFIX
                ),
            )
            w.write(vec["plaintext"])
            w.close()
            file_bytes = Path(path).read_bytes()
        expected = mid["outer_header"] + mid["stream_header"] + b"".join(mid["segments"])
        if file_bytes != expected:
            raise SystemExit(f"{vec['name']}: RecordingWriter disagrees with the spec computation")
        inputs = {
            "recipient_private_key": RECIPIENT_PRIVATE_KEY.hex(),
            "ephemeral_private_key": EPHEMERAL_PRIVATE_KEY.hex(),
            "data_key": DATA_KEY.hex(),
            "salt": SALT.hex(),
            "nonce_prefix": NONCE_PREFIX.hex(),
            "segment_size": vec["segment_size"],
        }
        if "plaintext_rule" in vec:
            inputs["plaintext_rule"] = vec["plaintext_rule"]
            inputs["plaintext_size"] = len(vec["plaintext"])
            inputs["plaintext_sha256"] = hashlib.sha256(vec["plaintext"]).hexdigest()
            segments = [
                {"nonce": n, "size": len(seg), "sha256": hashlib.sha256(seg).hexdigest(),
                 "tag": seg[-16:].hex()}
                for n, seg in zip(mid["nonces"], mid["segments"])
            ]
        else:
            inputs["plaintext"] = vec["plaintext"].hex()
            segments = [seg.hex() for seg in mid["segments"]]
        doc = {
            "name": vec["name"],
            "description": vec["description"],
            "inputs": inputs,
            "intermediate": {
                k: (v.hex() if isinstance(v, bytes) else v)
                for k, v in mid.items()
                if k != "segments"
            },
            "output": {
                "header": (mid["outer_header"] + mid["stream_header"]).hex(),
                "segments": segments,
                "file_size": len(file_bytes),
                "file_sha256": hashlib.sha256(file_bytes).hexdigest(),
            },
        }
        (HERE / f"{vec['name']}.json").write_text(json.dumps(doc, indent=2) + "\n")
        (HERE / f"{vec['name']}.cerec").write_bytes(file_bytes)
        print(f"wrote {vec['name']}: {len(file_bytes)} bytes, sha256 {doc['output']['file_sha256']}")


if __name__ == "__main__":
    main()
