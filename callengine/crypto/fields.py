"""Personal data at rest: the store's field cipher, its data key, and the data subjects' keys.

FieldCipher derives from the store's data key (generate_data_key) the keyed hash of numbers and
the key that wraps each data subject's own key; SubjectCipher encrypts one subject's personal
fields (phone number, name, e-mail) under that subject's key. The wrapped subject keys live in
the keystore, never in the store or its backups: deleting one makes every copy of that
person's fields unreadable (docs/backup.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto.errors import TamperedError

DATA_KEY_INFO_ENC = b"callengine-fields-v1/aes-256-gcm"
DATA_KEY_INFO_MAC = b"callengine-fields-v1/hmac-sha256"
DATA_KEY_INFO_WRAP = b"callengine-subjects-v1/key-wrap"
DATA_KEY_INFO_CHALLENGE = b"callengine-widget-v1/altcha-hmac"
DATA_KEY_INFO_CLIENT = b"callengine-clients-v1/hmac-sha256"
CLIENT_IPV6_PREFIX = 64  # one IPv6 client is its /64: a host picks addresses inside it freely
SUBJECT_KEY_SIZE = 32


class SubjectCipher:
    """AES-256-GCM under one data subject's key: a random 96-bit nonce each, the column and
    row id as associated data (a value can't be moved to another row or column unnoticed)."""

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

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


class FieldCipher(SubjectCipher):
    """The store's data key, one 32-byte secret, gives three independent keys through HKDF:
    HMAC-SHA256 for the keyed hash of a normalised number (the keystore's number → subject
    index: lookups and rate limits without the number), AES-256-GCM that wraps each subject's
    key (with the subject id as associated data), and the AES-256-GCM of the fields as stores
    before per-subject keys held them (SubjectCipher's methods: read once, by the migration)."""

    def __init__(self, data_key: bytes):
        if len(data_key) != 32:
            raise ValueError("the store's data key must be 32 bytes")

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)

        super().__init__(derive(DATA_KEY_INFO_ENC))
        self._mac_key = derive(DATA_KEY_INFO_MAC)
        self._wrap = AESGCM(derive(DATA_KEY_INFO_WRAP))
        self._challenge_key = derive(DATA_KEY_INFO_CHALLENGE)
        self._client_key = derive(DATA_KEY_INFO_CLIENT)

    def challenge_key(self) -> bytes:
        """The HMAC key of the widget's ALTCHA challenges when none is configured: a fourth
        HKDF key of the data key (a challenge's signature reveals nothing of the others)."""
        return self._challenge_key

    def number_hash(self, e164: str) -> str:
        return hmac.digest(self._mac_key, e164.encode(), "sha256").hex()

    def client_hash(self, address: str | None) -> str | None:
        """The keyed hash (HMAC-SHA256, its own key) of a client's address, for the per-client
        rate limits: an IPv4 address as it is (an IPv4-mapped IPv6 one as its IPv4), an IPv6
        address by its /64. The address itself is never kept. None: no address (not IP)."""
        if not address:
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.version == 6:
            group = str(ipaddress.IPv6Network((ip, CLIENT_IPV6_PREFIX), strict=False))
        else:
            group = str(ip)
        return hmac.digest(self._client_key, group.encode(), "sha256").hex()[:32]

    def new_subject_key(self, subject_id: str) -> tuple[SubjectCipher, bytes]:
        """A fresh random key for a new data subject: its cipher, and the key wrapped (what
        the keystore keeps)."""
        key = os.urandom(SUBJECT_KEY_SIZE)
        nonce = os.urandom(12)
        wrapped = nonce + self._wrap.encrypt(nonce, key, b"subject:" + subject_id.encode())
        return SubjectCipher(key), wrapped

    def subject_cipher(self, subject_id: str, wrapped: bytes) -> SubjectCipher:
        try:
            key = self._wrap.decrypt(wrapped[:12], wrapped[12:], b"subject:" + subject_id.encode())
        except InvalidTag:
            raise TamperedError(f"the key of subject {subject_id} fails authentication") from None
        return SubjectCipher(key)


def generate_data_key() -> bytes:
    return os.urandom(32)
