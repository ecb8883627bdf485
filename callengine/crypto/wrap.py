"""The recording's data key, wrapped for a recipient X25519 key (age's X25519 + HKDF agreement,
but AES-256-GCM and its own info string: not an age stanza; docs/recording-format.md).

The writer agrees a secret between a fresh ephemeral key and the recipient's public key, derives
a key-encryption key (KEK) from it with HKDF-SHA256 (KEK_INFO) and seals the 32-byte data key
with AES-256-GCM; the header keeps the ephemeral public key and the wrapped key. So the recording
host needs the public key only. Byte-exact spec: docs/recording-format.md.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto.errors import KeyUnwrapError, WrongKeyError
from callengine.crypto.keys import _private_key_list, key_id

DATA_KEY_SIZE = 32
GCM_TAG_SIZE = 16
WRAPPED_KEY_SIZE = DATA_KEY_SIZE + GCM_TAG_SIZE  # AES-256-GCM ciphertext + tag

# KEK derivation (as age's X25519 stanza derives its wrap key, with this info string). The version is in the string so
# a v2 format can never unwrap (or be confused with) a v1 key.
KEK_INFO = b"callengine-recording-v1/X25519-data-key-wrap"
# A zero nonce is safe: each KEK comes from a fresh ephemeral key and seals
# exactly one message (same reasoning as age's X25519 stanza).
_WRAP_NONCE = bytes(12)


def _derive_kek(
    shared: bytes, ephemeral_pub: bytes, recipient_pub: bytes, info: bytes = KEK_INFO
) -> bytes:
    # Both public keys go in the salt (as in age) so the KEK is bound to this
    # exact ephemeral/recipient pair.
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral_pub + recipient_pub,
        info=info,
    ).derive(shared)


def wrap_data_key(
    data_key: bytes, recipient: X25519PublicKey, ephemeral: X25519PrivateKey
) -> tuple[bytes, bytes]:
    """(ephemeral public key, wrapped data key): the header's two key fields."""
    eph_pub = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError:
        raise ValueError("recipient public key is invalid (low-order point)") from None
    kek = _derive_kek(shared, eph_pub, recipient.public_bytes_raw())
    return eph_pub, AESGCM(kek).encrypt(_WRAP_NONCE, data_key, None)


def unwrap_data_key(
    kid: bytes, ephemeral_pub: bytes, wrapped_key: bytes, private_keys
) -> bytes:
    """The data key, with whichever of private_keys matches the header's key id."""
    keys = {}
    for priv in _private_key_list(private_keys):
        pub = priv.public_key().public_bytes_raw()
        keys[key_id(pub)] = (priv, pub)
    match = keys.get(kid)
    if match is None:
        have = ", ".join(sorted(k.hex() for k in keys)) or "none"
        raise WrongKeyError(
            f"recording is encrypted to key id {kid.hex()}; "
            f"no private key given matches (have: {have})"
        )
    priv, pub = match
    try:
        shared = priv.exchange(X25519PublicKey.from_public_bytes(ephemeral_pub))
    except ValueError:
        raise KeyUnwrapError(
            "header ephemeral public key is invalid: the header was modified"
        ) from None
    kek = _derive_kek(shared, ephemeral_pub, pub)
    try:
        return AESGCM(kek).decrypt(_WRAP_NONCE, wrapped_key, None)
    except InvalidTag:
        raise KeyUnwrapError(
            f"key id {kid.hex()} matches but the wrapped data key does not "
            "authenticate: the header's ephemeral key or wrapped key was modified"
        ) from None
