"""seal / open_sealed (callengine/crypto/seal.py): a recording's file key kept for a recipient."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto import (
    RecordingError,
    TamperedError,
    WrongKeyError,
    generate_recipient_keypair,
    key_id,
    open_sealed,
    seal,
)

SECRET = bytes(range(32))


def test_round_trip_with_one_key_or_several(keys):
    priv, pub = keys
    other, _ = generate_recipient_keypair()
    blob = seal(SECRET, pub, b"recording:r1")
    assert open_sealed(blob, priv, b"recording:r1") == SECRET
    assert open_sealed(blob, [other, priv], b"recording:r1") == SECRET


def test_layout_follows_the_recording_header_wrap(keys):
    """key id (8) | ephemeral public key (32) | AES-256-GCM(secret) under a KEK from X25519 +
    HKDF-SHA256 (salt = ephemeral | recipient public key, info callengine-seal-v1/X25519),
    zero nonce, the context as associated data."""
    priv, pub = keys
    blob = seal(SECRET, pub, b"ctx")
    assert len(blob) == 8 + 32 + len(SECRET) + 16
    assert blob[:8] == key_id(pub)
    eph = blob[8:40]
    shared = X25519PrivateKey.from_private_bytes(priv).exchange(
        X25519PublicKey.from_public_bytes(eph))
    kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=eph + pub,
               info=b"callengine-seal-v1/X25519").derive(shared)
    assert AESGCM(kek).decrypt(bytes(12), blob[40:], b"ctx") == SECRET


def test_fresh_ephemeral_key_each_time(keys):
    _, pub = keys
    assert seal(SECRET, pub, b"c")[8:40] != seal(SECRET, pub, b"c")[8:40]


def test_context_is_authenticated(keys):
    priv, pub = keys
    blob = seal(SECRET, pub, b"recording:r1")
    with pytest.raises(TamperedError, match="does not authenticate"):
        open_sealed(blob, priv, b"recording:r2")


def test_modified_or_short_blob(keys):
    priv, pub = keys
    blob = bytearray(seal(SECRET, pub, b"c"))
    blob[-1] ^= 1
    with pytest.raises(TamperedError):
        open_sealed(bytes(blob), priv, b"c")
    with pytest.raises(TamperedError, match="too short"):
        open_sealed(bytes(blob[:55]), priv, b"c")


def test_wrong_key(keys):
    _, pub = keys
    other, _ = generate_recipient_keypair()
    with pytest.raises(WrongKeyError, match=key_id(pub).hex()):
        open_sealed(seal(SECRET, pub, b"c"), [other], b"c")
    assert issubclass(WrongKeyError, RecordingError)


def test_refuses_a_private_key_as_recipient(keys):
    priv, _ = keys
    with pytest.raises(TypeError):
        seal(SECRET, X25519PrivateKey.from_private_bytes(priv), b"c")
