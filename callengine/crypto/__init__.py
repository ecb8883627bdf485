"""Encryption: the recording file format ("CEREC" v1) and the secrets kept beside it.

Audio is encrypted as it streams: the writer holds at most one segment of plaintext in memory
and puts only ciphertext on disk. A recording is a small header followed by a Tink
AES-GCM-HKDF streaming-AEAD ciphertext; the per-file data key is wrapped for a recipient X25519
key (X25519 + HKDF as in age, AES-256-GCM; not an age stanza), so the recording host needs the public key only. Byte-exact spec,
error semantics and test vectors: docs/recording-format.md. Nothing here knows about calls.

- errors: the RecordingError family (format, wrong key, tampered, truncated);
- keys: recipient X25519 key pairs, key ids, PEM key files;
- wrap: the data key wrapped for the recipient (KEK derivation) in a recording's header;
- stream: Tink's streaming AEAD (parameters, nonces, segment sealer and opener);
- header: the CEREC file header (layout, parsing, RecordingInfo, header_info);
- writer: RecordingWriter, a byte stream into an encrypted file;
- reader: RecordingReader (open_recording) and verify, the file back into bytes;
- shred: destroy_key and shred (crypto-shredding a recording);
- fields: FieldCipher for the store's personal columns, generate_data_key;
- seal: seal / open_sealed, small secrets (per-recording keys) for a recipient key.

Only this package imports `cryptography`.
"""

from callengine.crypto.errors import (
    FormatError,
    KeyUnwrapError,
    RecordingError,
    TamperedError,
    TruncatedError,
    WrongKeyError,
)
from callengine.crypto.fields import FieldCipher, generate_data_key
from callengine.crypto.header import (
    HEADER_SIZE,
    MAGIC,
    MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
    RecordingInfo,
    header_info,
)
from callengine.crypto.keys import (
    KeyLike,
    generate_recipient_keypair,
    key_id,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
)
from callengine.crypto.reader import RecordingReader, VerifyReport, open_recording, verify
from callengine.crypto.seal import open_sealed, seal
from callengine.crypto.shred import destroy_key, shred
from callengine.crypto.stream import DEFAULT_SEGMENT_SIZE
from callengine.crypto.writer import RecordingWriter

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_SEGMENT_SIZE",
    "MIN_SEGMENT_SIZE",
    "FieldCipher",
    "FormatError",
    "KeyLike",
    "KeyUnwrapError",
    "RecordingError",
    "RecordingInfo",
    "RecordingReader",
    "RecordingWriter",
    "TamperedError",
    "TruncatedError",
    "VerifyReport",
    "WrongKeyError",
    "destroy_key",
    "generate_data_key",
    "generate_recipient_keypair",
    "header_info",
    "key_id",
    "load_private_key",
    "load_public_key",
    "open_recording",
    "open_sealed",
    "save_private_key",
    "save_public_key",
    "seal",
    "shred",
    "verify",
]
