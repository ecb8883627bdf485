"""Personal data at rest: the store's field cipher and its data key.

FieldCipher encrypts the store's personal columns (phone numbers, names, e-mails) and hashes
numbers for lookups; generate_data_key makes the 32-byte key it derives both from.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto.errors import TamperedError

DATA_KEY_INFO_ENC = b"callengine-fields-v1/aes-256-gcm"
DATA_KEY_INFO_MAC = b"callengine-fields-v1/hmac-sha256"


class FieldCipher:
    """Encrypts personal fields for the store and hashes numbers for lookups.

    One 32-byte secret (the store's data key) gives two independent keys through HKDF: AES-256-GCM
    for the fields (random 96-bit nonce each, the column and row id as associated data, so a
    value can't be moved to another row or column unnoticed) and HMAC-SHA256 for the keyed hash
    of a normalised number (lookups, de-duplication, rate limits without the number)."""

    def __init__(self, data_key: bytes):
        if len(data_key) != 32:
            raise ValueError("the store's data key must be 32 bytes")

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)

        self._aead = AESGCM(derive(DATA_KEY_INFO_ENC))
        self._mac_key = derive(DATA_KEY_INFO_MAC)

    def encrypt(self, value: str | None, context: str) -> bytes | None:
        if value is None:
            return None
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), context.encode())

    def decrypt(self, blob: bytes | None, context: str) -> str | None:
        if blob is None:
            return None
        try:
            return self._aead.decrypt(blob[:12], blob[12:], context.encode()).decode()
        except InvalidTag:
            raise TamperedError(f"stored field {context} fails authentication") from None

    def number_hash(self, e164: str) -> str:
        return hmac.new(self._mac_key, e164.encode(), hashlib.sha256).hexdigest()


def generate_data_key() -> bytes:
    return os.urandom(32)
