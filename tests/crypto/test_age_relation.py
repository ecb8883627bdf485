"""How the data-key wrap relates to age's X25519 recipient stanza (issue 11, finding 7), proven
against the real `age` (apt-get install age; C2SP age v1).

docs/recording-format.md claims: the wrap is age's X25519 key agreement and KEK derivation -
X25519 with a fresh ephemeral key, HKDF-SHA256 over the shared secret with salt = ephemeral
public key || recipient public key, 32 bytes, a zero nonce - with a different HKDF info string,
AES-256-GCM instead of ChaCha20-Poly1305, a 32-byte data key instead of age's 16-byte file key,
and binary header fields instead of a text stanza under a header MAC. So `age -d` cannot read a
CEREC file; it is not meant to.

The proof: age encrypts; callengine's own KEK derivation (wrap._derive_kek), given age's info
string, derives age's wrap key from the stanza, which opens age's file key, whose header MAC and
payload check out. And age refuses our wrap even when it is put in an age stanza."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.crypto.wrap import KEK_INFO, _derive_kek, wrap_data_key
from tests.support.ci import unavailable

AGE, AGE_KEYGEN = shutil.which("age"), shutil.which("age-keygen")


@pytest.fixture(autouse=True)
def _age_installed() -> None:
    if not (AGE and AGE_KEYGEN):
        unavailable("needs age (apt-get install -y age; scripts/setup installs it) to compare with")

AGE_INFO = b"age-encryption.org/v1/X25519"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32_payload(text: str) -> bytes:
    """The 32 key bytes of an age bech32 string (the checksum is age's business)."""
    data = text.lower().rpartition("1")[2][:-6]
    bits = "".join(f"{BECH32.index(c):05b}" for c in data)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))


def b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


@pytest.fixture
def identity(tmp_path):
    path = tmp_path / "age.key"
    subprocess.run([AGE_KEYGEN, "-o", str(path)], check=True, capture_output=True)
    secret = next(line for line in path.read_text().splitlines()
                  if line.startswith("AGE-SECRET-KEY-1"))
    public = subprocess.run([AGE_KEYGEN, "-y", str(path)], check=True, capture_output=True,
                            text=True).stdout.strip()
    private = bech32_payload(secret)
    pub = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
    assert bech32_payload(public) == pub
    return path, private, pub, public


def test_our_kek_derivation_with_ages_info_string_is_ages_wrap_key(tmp_path, identity):
    path, private, pub, recipient = identity
    message = b"a call recording is not an age file, but its key wrap is age's agreement"
    blob = subprocess.run([AGE, "-r", recipient], input=message, check=True,
                          capture_output=True).stdout
    header, _, payload = blob.partition(b"\n--- ")
    lines = header.decode().split("\n")
    assert lines[0] == "age-encryption.org/v1"
    kind, share = lines[1].split(" ")[1:3]
    assert kind == "X25519"
    ephemeral, body = b64(share), b64("".join(lines[2:]))

    shared = X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(ephemeral))
    wrap_key = _derive_kek(shared, ephemeral, pub, info=AGE_INFO)  # our code, age's info
    file_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), body, None)
    assert len(file_key) == 16  # age's file key; ours is a 32-byte data key

    mac_line, _, rest = payload.partition(b"\n")
    mac = hmac.new(hkdf(file_key, b"", b"header"), header + b"\n---", hashlib.sha256).digest()
    assert mac == b64(mac_line.decode())
    nonce, chunk = rest[:16], rest[16:]
    plain = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload")).decrypt(
        bytes(11) + b"\x01", chunk, None)
    assert plain == message
    # The one difference in the derivation: the info string.
    assert _derive_kek(shared, ephemeral, pub) != wrap_key and KEK_INFO != AGE_INFO


def test_age_refuses_our_wrap_even_in_an_age_stanza(tmp_path, identity):
    """A CEREC wrap (AES-256-GCM over a 32-byte data key, our info string) laid out as an age
    X25519 stanza, with a correct header MAC: age still cannot unwrap it."""
    path, private, pub, _ = identity
    data_key = bytes(range(32))
    eph_pub, wrapped = wrap_data_key(data_key, X25519PublicKey.from_public_bytes(pub),
                                     X25519PrivateKey.generate())
    body = b64e(wrapped)  # 48 bytes: exactly 64 characters, so age wants an empty line after
    assert len(body) == 64
    header = f"age-encryption.org/v1\n-> X25519 {b64e(eph_pub)}\n{body}\n\n---"
    mac = hmac.new(hkdf(data_key[:16], b"", b"header"), header.encode(), hashlib.sha256)
    forged = tmp_path / "forged.age"
    forged.write_bytes(header.encode() + f" {b64e(mac.digest())}\n".encode() + bytes(32))
    result = subprocess.run([AGE, "-d", "-i", str(path), str(forged)], capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert "incorrect file key size" in result.stderr, result.stderr  # age checks size first
