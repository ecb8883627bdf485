"""Google's Tink as the oracle (issue 11, build item 4): the body of a CEREC file is a plain Tink
AES-GCM-HKDF streaming ciphertext at the production parameters (HKDF-SHA256, 32-byte key,
32-byte derived key, 64 KiB segments) with the 98-byte outer header as associated data.

Tink decrypts what the engine writes; the engine's reader decrypts what Tink writes; and the
published whole-file vector at production parameters (tests/vectors/recording-format/
v1-production.*) is reproduced by the writer, by Tink and by bare primitives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct

import pytest
import tink
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tink import secret_key_access, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

from callengine import crypto
from callengine.crypto.header import _OUTER, _parse_header
from callengine.crypto.wrap import unwrap_data_key, wrap_data_key
from callengine.crypto.writer import _InsecureFixedRandomness
from tests.support.cerec import VECTOR_DIR

streaming_aead.register()

PRODUCTION = crypto.DEFAULT_SEGMENT_SIZE
OUTER = 98
FIRST, REST = PRODUCTION - 56, PRODUCTION - 16  # 65,480 and 65,520 plaintext bytes
SIZES = [0, 1, 640, FIRST - 1, FIRST, FIRST + 1, FIRST + REST, FIRST + REST + 1,
         FIRST + 3 * REST + 12_345]


def tink_streaming_aead(data_key: bytes, segment_size: int = PRODUCTION):
    """A Tink StreamingAead holding this raw key, at the parameters the format names."""
    key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
        version=0, key_value=data_key,
        params=aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
            ciphertext_segment_size=segment_size, derived_key_size=32,
            hkdf_hash_type=common_pb2.SHA256))
    keyset = tink_pb2.Keyset(primary_key_id=1, key=[tink_pb2.Keyset.Key(
        key_data=tink_pb2.KeyData(
            type_url="type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey",
            value=key.SerializeToString(), key_material_type=tink_pb2.KeyData.SYMMETRIC),
        status=tink_pb2.ENABLED, key_id=1, output_prefix_type=tink_pb2.RAW)])
    handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
    return handle.primitive(streaming_aead.StreamingAead)


def tink_decrypt(data_key: bytes, file_bytes: bytes, segment_size: int = PRODUCTION) -> bytes:
    primitive = tink_streaming_aead(data_key, segment_size)
    with primitive.new_decrypting_stream(io.BytesIO(file_bytes[OUTER:]),
                                         file_bytes[:OUTER]) as stream:
        return stream.read()


class _Sink(io.BytesIO):
    def close(self) -> None:  # Tink closes its destination; keep the bytes readable
        self.kept = self.getvalue()
        super().close()


def tink_encrypt(data_key: bytes, associated_data: bytes, plaintext: bytes,
                 segment_size: int = PRODUCTION) -> bytes:
    sink = _Sink()
    with tink_streaming_aead(data_key, segment_size).new_encrypting_stream(
            sink, associated_data) as stream:
        for pos in range(0, len(plaintext), 640):
            stream.write(plaintext[pos : pos + 640])
    return sink.kept


@pytest.mark.parametrize("size", SIZES)
def test_tink_decrypts_what_the_engine_writes(tmp_path, keys, size):
    private, public = keys
    plaintext = os.urandom(size)
    path = tmp_path / "engine.cerec"
    with crypto.RecordingWriter(path, public) as writer:
        for pos in range(0, size, 640):
            writer.write(plaintext[pos : pos + 640])
    blob = path.read_bytes()
    header = _parse_header(blob, len(blob))
    # The data key, unwrapped from the header with the recipient's key (no fixed randomness).
    data_key = unwrap_data_key(header.key_id, header.ephemeral_pub, header.wrapped_key,
                               [private])
    assert tink_decrypt(data_key, blob) == plaintext
    # Tink, too, refuses the stream under another header (the header is its associated data).
    altered = bytearray(blob)
    altered[20] ^= 1
    with pytest.raises(tink.TinkError):
        tink_decrypt(data_key, bytes(altered))


@pytest.mark.parametrize("size", SIZES)
def test_the_engine_reads_what_tink_writes(tmp_path, keys, size):
    private, public = keys
    recipient = crypto.keys._as_public_key(public)
    data_key = os.urandom(32)
    eph_pub, wrapped = wrap_data_key(data_key, recipient, X25519PrivateKey.generate())
    outer = _OUTER.pack(b"CEREC", 1, crypto.key_id(public), PRODUCTION, eph_pub, wrapped)
    plaintext = os.urandom(size)
    path = tmp_path / "tink.cerec"
    path.write_bytes(outer + tink_encrypt(data_key, outer, plaintext))
    with crypto.open_recording(path, [private]) as reader:
        assert reader.read_all() == plaintext and reader.complete is True
    assert crypto.verify(path, [private]).plaintext_size == size


def test_tink_and_the_engine_agree_at_another_segment_size(tmp_path, keys):
    """The header's segment size is Tink's CiphertextSegmentSize, whatever it is."""
    private, public = keys
    plaintext = os.urandom(50_000)
    path = tmp_path / "small.cerec"
    with crypto.RecordingWriter(path, public, segment_size=4096) as writer:
        writer.write(plaintext)
    blob = path.read_bytes()
    header = _parse_header(blob, len(blob))
    data_key = unwrap_data_key(header.key_id, header.ephemeral_pub, header.wrapped_key,
                               [private])
    assert tink_decrypt(data_key, blob, 4096) == plaintext


# ---- the whole-file vector at production parameters -----------------------------------------

VECTOR = json.loads((VECTOR_DIR / "v1-production.json").read_text())
VECTOR_FILE = (VECTOR_DIR / "v1-production.cerec").read_bytes()
INPUTS = VECTOR["inputs"]


def vector_plaintext() -> bytes:
    assert INPUTS["plaintext_rule"] == "byte i = i mod 251, for i in 0..131999"
    plain = bytes(i % 251 for i in range(INPUTS["plaintext_size"]))
    assert hashlib.sha256(plain).hexdigest() == INPUTS["plaintext_sha256"]
    return plain


def test_production_vector_is_the_file():
    assert len(VECTOR_FILE) == VECTOR["output"]["file_size"] == 132_186
    assert hashlib.sha256(VECTOR_FILE).hexdigest() == VECTOR["output"]["file_sha256"]
    assert VECTOR_FILE.hex().startswith(VECTOR["output"]["header"])
    assert INPUTS["segment_size"] == PRODUCTION


@pytest.mark.parametrize("chunk", [640, 65_536, None])
def test_production_vector_is_what_the_writer_writes(tmp_path, chunk):
    plain = vector_plaintext()
    private = bytes.fromhex(INPUTS["recipient_private_key"])
    public = X25519PrivateKey.from_private_bytes(private).public_key()
    path = tmp_path / "v.cerec"
    fixed = _InsecureFixedRandomness(*(bytes.fromhex(INPUTS[k]) for k in (
        "data_key", "ephemeral_private_key", "salt", "nonce_prefix")))
    with crypto.RecordingWriter(path, public, _insecure_fixed_randomness=fixed) as writer:
        step = chunk or len(plain)
        for pos in range(0, len(plain), step):
            writer.write(plain[pos : pos + step])
    assert path.read_bytes() == VECTOR_FILE


def test_production_vector_decrypts_with_the_engine_and_with_tink(tmp_path):
    plain = vector_plaintext()
    path = tmp_path / "v.cerec"
    path.write_bytes(VECTOR_FILE)
    with crypto.open_recording(path, [bytes.fromhex(INPUTS["recipient_private_key"])]) as r:
        assert r.read_all() == plain and r.complete is True and r.info.segments == 3
    assert tink_decrypt(bytes.fromhex(INPUTS["data_key"]), VECTOR_FILE) == plain


def test_production_vector_follows_the_spec_from_bare_primitives():
    mid = {k: bytes.fromhex(v) if isinstance(v, str) else v
           for k, v in VECTOR["intermediate"].items()}
    recipient = X25519PrivateKey.from_private_bytes(bytes.fromhex(INPUTS["recipient_private_key"]))
    shared = recipient.exchange(X25519PrivateKey.from_private_bytes(
        bytes.fromhex(INPUTS["ephemeral_private_key"])).public_key())
    assert shared == mid["shared_secret"]
    rpub = recipient.public_key().public_bytes_raw()
    kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=mid["ephemeral_public_key"] + rpub,
               info=b"callengine-recording-v1/X25519-data-key-wrap").derive(shared)
    assert kek == mid["kek"]
    assert AESGCM(kek).decrypt(bytes(12), mid["wrapped_key"], None).hex() == INPUTS["data_key"]
    outer = VECTOR_FILE[:OUTER]
    assert outer == mid["outer_header"] and outer[14:18] == struct.pack(">I", PRODUCTION)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes.fromhex(INPUTS["salt"]),
                   info=outer).derive(bytes.fromhex(INPUTS["data_key"]))
    assert derived == mid["derived_key"]
    pos, plain = 138, b""
    for segment in VECTOR["output"]["segments"]:
        blob = VECTOR_FILE[pos : pos + segment["size"]]
        assert hashlib.sha256(blob).hexdigest() == segment["sha256"]
        assert blob[-16:].hex() == segment["tag"]
        plain += AESGCM(derived).decrypt(bytes.fromhex(segment["nonce"]), blob, None)
        pos += segment["size"]
    assert pos == len(VECTOR_FILE) and plain == vector_plaintext()
