"""Recipient key files (callengine/crypto/keys.py): PEM, mode 0600, openssl-compatible."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

from callengine import crypto
from callengine.crypto import generate_recipient_keypair, open_recording
from tests.support.cerec import write_file
from tests.support.ci import unavailable


def test_key_files_round_trip(tmp_path):
    priv, pub = generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "rec.key", priv)
    crypto.save_public_key(tmp_path / "rec.pub", pub)
    assert stat.S_IMODE((tmp_path / "rec.key").stat().st_mode) == 0o600
    assert (tmp_path / "rec.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "rec.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert crypto.load_private_key(tmp_path / "rec.key") == priv
    assert crypto.load_public_key(tmp_path / "rec.pub") == pub
    with pytest.raises(FileExistsError):
        crypto.save_private_key(tmp_path / "rec.key", priv)
    # PEM bytes work anywhere a key is accepted.
    write_file(tmp_path / "k.cerec", (tmp_path / "rec.pub").read_bytes(), b"pem")
    pem_priv = (tmp_path / "rec.key").read_bytes()
    assert open_recording(tmp_path / "k.cerec", pem_priv).read_all() == b"pem"


def test_openssl_key_files_interoperate(tmp_path):
    """Operators may generate the recipient key offline with plain openssl."""
    if shutil.which("openssl") is None:
        unavailable("openssl not installed")
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "X25519", "-out", str(tmp_path / "r.key")], check=True
    )
    subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "r.key"), "-pubout", "-out", str(tmp_path / "r.pub")],
        check=True,
    )
    priv = crypto.load_private_key(tmp_path / "r.key")
    pub = crypto.load_public_key(tmp_path / "r.pub")
    write_file(tmp_path / "o.cerec", pub, b"openssl")
    assert open_recording(tmp_path / "o.cerec", priv).read_all() == b"openssl"
    crypto.save_private_key(tmp_path / "ours.key", priv)
    out = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "ours.key"), "-pubout"], check=True, capture_output=True
    ).stdout
    assert out == (tmp_path / "r.pub").read_bytes()


def test_encrypted_private_key_file(tmp_path):
    priv, _ = generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "enc.key", priv, password=b"correct horse")
    assert "ENCRYPTED" in (tmp_path / "enc.key").read_text()
    assert crypto.load_private_key(tmp_path / "enc.key", password=b"correct horse") == priv
    with pytest.raises((TypeError, ValueError)):
        crypto.load_private_key(tmp_path / "enc.key")
