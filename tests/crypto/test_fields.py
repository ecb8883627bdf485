"""FieldCipher (callengine/crypto/fields.py): the store's personal columns and number hashes."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto import FieldCipher, TamperedError, generate_data_key

KEY = bytes(range(32))


def derived(info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(KEY)


def test_round_trip_and_none():
    cipher = FieldCipher(KEY)
    blob = cipher.encrypt("+48601000001", "leads.phone:lead-1")
    assert cipher.decrypt(blob, "leads.phone:lead-1") == "+48601000001"
    assert cipher.encrypt(None, "leads.name:lead-1") is None
    assert cipher.decrypt(None, "leads.name:lead-1") is None


def test_format_is_nonce_then_aes_gcm_with_the_context_as_associated_data():
    """The bytes in the database: 12-byte random nonce | AES-256-GCM(ciphertext + tag), with a
    key derived by HKDF-SHA256 (no salt, info callengine-fields-v1/aes-256-gcm)."""
    blob = FieldCipher(KEY).encrypt("Anna", "leads.name:lead-7")
    assert len(blob) == 12 + len("Anna") + 16
    aead = AESGCM(derived(b"callengine-fields-v1/aes-256-gcm"))
    assert aead.decrypt(blob[:12], blob[12:], b"leads.name:lead-7") == b"Anna"


def test_fresh_nonce_each_time():
    cipher = FieldCipher(KEY)
    assert cipher.encrypt("same", "c") != cipher.encrypt("same", "c")


@pytest.mark.parametrize("context", ["leads.name:lead-2", "leads.email:lead-1"])
def test_a_value_cannot_move_to_another_row_or_column(context):
    cipher = FieldCipher(KEY)
    blob = cipher.encrypt("Anna", "leads.name:lead-1")
    with pytest.raises(TamperedError, match=context):
        cipher.decrypt(blob, context)


def test_number_hash_is_a_keyed_hmac():
    expected = hmac.new(derived(b"callengine-fields-v1/hmac-sha256"), b"+48601000001",
                        hashlib.sha256).hexdigest()
    assert FieldCipher(KEY).number_hash("+48601000001") == expected
    assert FieldCipher(generate_data_key()).number_hash("+48601000001") != expected


def test_data_key_must_be_32_bytes():
    assert len(generate_data_key()) == 32
    with pytest.raises(ValueError):
        FieldCipher(bytes(16))
