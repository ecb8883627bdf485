"""Recipient key pairs (X25519): generating them, key ids, and the PEM key files.

A recording is encrypted *for* a recipient public key; only the matching private key opens it.
Key files are created exclusively (an existing file is never overwritten), the private one mode
0600.
"""

from __future__ import annotations

import hashlib
import os
from typing import Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

KEY_ID_SIZE = 8
X25519_KEY_SIZE = 32

KeyLike = Union[bytes, bytearray, str, X25519PrivateKey, X25519PublicKey]


def generate_recipient_keypair() -> tuple[bytes, bytes]:
    """Return (private_key, public_key) as raw 32-byte X25519 keys."""
    priv = X25519PrivateKey.generate()
    return priv.private_bytes_raw(), priv.public_key().public_bytes_raw()


def _as_public_key(key: KeyLike) -> X25519PublicKey:
    if isinstance(key, X25519PublicKey):
        return key
    if isinstance(key, X25519PrivateKey):
        raise TypeError("expected a public key, got a private key; the recorder must not hold it")
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(raw) == X25519_KEY_SIZE:
        return X25519PublicKey.from_public_bytes(raw)
    if raw.lstrip().startswith(b"-----BEGIN"):
        obj = serialization.load_pem_public_key(raw)
        if isinstance(obj, X25519PublicKey):
            return obj
        raise TypeError(f"PEM public key is {type(obj).__name__}, not X25519")
    raise TypeError("public key must be 32 raw bytes, PEM, or X25519PublicKey")


def _as_private_key(key: KeyLike, password: bytes | None = None) -> X25519PrivateKey:
    if isinstance(key, X25519PrivateKey):
        return key
    if isinstance(key, X25519PublicKey):
        raise TypeError("expected a private key, got a public key")
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(raw) == X25519_KEY_SIZE:
        return X25519PrivateKey.from_private_bytes(raw)
    if raw.lstrip().startswith(b"-----BEGIN"):
        obj = serialization.load_pem_private_key(raw, password=password)
        if isinstance(obj, X25519PrivateKey):
            return obj
        raise TypeError(f"PEM private key is {type(obj).__name__}, not X25519")
    raise TypeError("private key must be 32 raw bytes, PEM, or X25519PrivateKey")


def _private_key_list(private_keys) -> list[X25519PrivateKey]:
    """One private key or several (after a key rotation a reader holds old and new)."""
    if isinstance(private_keys, (bytes, bytearray, str, X25519PrivateKey)):
        private_keys = [private_keys]
    return [_as_private_key(k) for k in private_keys]


def key_id(public_key: KeyLike) -> bytes:
    """Key id = first 8 bytes of SHA-256 of the raw 32-byte recipient public key."""
    raw = _as_public_key(public_key).public_bytes_raw()
    return hashlib.sha256(raw).digest()[:KEY_ID_SIZE]


def _create_exclusive(path: str | os.PathLike, mode: int) -> int:
    # O_EXCL: never clobber an existing file (and refuse symlinks at path).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # umask may have stripped bits; make the mode exact
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def save_private_key(
    path: str | os.PathLike, private_key: KeyLike, *, password: bytes | None = None
) -> None:
    """Write a PKCS#8 PEM private key (encrypted if password), mode 0600, refusing to overwrite."""
    priv = _as_private_key(private_key)
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = _create_exclusive(path, 0o600)
    try:
        _write_all(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def save_public_key(path: str | os.PathLike, public_key: KeyLike) -> None:
    """Write a SubjectPublicKeyInfo PEM public key, mode 0644, refusing to overwrite."""
    pub = _as_public_key(public_key)
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = _create_exclusive(path, 0o644)
    try:
        _write_all(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: str | os.PathLike, *, password: bytes | None = None) -> bytes:
    """Read a PEM private key file; return the raw 32-byte X25519 private key."""
    with open(path, "rb") as f:
        return _as_private_key(f.read(), password).private_bytes_raw()


def load_public_key(path: str | os.PathLike) -> bytes:
    """Read a PEM public key file; return the raw 32-byte X25519 public key."""
    with open(path, "rb") as f:
        return _as_public_key(f.read()).public_bytes_raw()
