"""Sealed secrets: a small secret (a recording's file key in the keystore) encrypted for a
recipient X25519 key, with the same ephemeral X25519 + HKDF + AES-256-GCM wrap as a recording
header, and a context that is authenticated so a sealed value can't be moved elsewhere.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callengine.crypto.errors import TamperedError, WrongKeyError
from callengine.crypto.keys import KeyLike, _as_public_key, _private_key_list, key_id
from callengine.crypto.wrap import _WRAP_NONCE, GCM_TAG_SIZE, _derive_kek

SEAL_INFO = b"callengine-seal-v1/X25519"
_SEAL = struct.Struct(">8s32s")  # key id, ephemeral public key; then AES-256-GCM ciphertext


def seal(secret: bytes, recipient_public_key: KeyLike, context: bytes) -> bytes:
    """Encrypt a small secret for a recipient key (the same X25519 + HKDF + AES-256-GCM wrap as
    a recording header). `context` is authenticated: a sealed value can't be moved elsewhere."""
    recipient = _as_public_key(recipient_public_key)
    recipient_raw = recipient.public_bytes_raw()
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes_raw()
    kek = _derive_kek(ephemeral.exchange(recipient), eph_pub, recipient_raw, SEAL_INFO)
    kid = key_id(recipient)
    return _SEAL.pack(kid, eph_pub) + AESGCM(kek).encrypt(_WRAP_NONCE, secret, context)


def open_sealed(blob: bytes, private_keys, context: bytes) -> bytes:
    if len(blob) < _SEAL.size + GCM_TAG_SIZE:
        raise TamperedError("sealed key is too short")
    kid, eph_pub = _SEAL.unpack_from(blob)
    for priv in _private_key_list(private_keys):
        pub = priv.public_key().public_bytes_raw()
        if key_id(pub) != kid:
            continue
        kek = _derive_kek(priv.exchange(X25519PublicKey.from_public_bytes(eph_pub)),
                          eph_pub, pub, SEAL_INFO)
        try:
            return AESGCM(kek).decrypt(_WRAP_NONCE, blob[_SEAL.size:], context)
        except InvalidTag:
            raise TamperedError("sealed key does not authenticate") from None
    raise WrongKeyError(f"sealed for key id {kid.hex()}; no private key given matches")

