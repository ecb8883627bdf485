"""Crypto-shredding a recording: overwrite the key material in its header, then unlink it.

Without the ephemeral public key and the wrapped data key no private key recovers the data key,
so every segment (and every copy that lost the same header bytes) is undecryptable for good.
"""

from __future__ import annotations

import os

from callengine.crypto.header import MAGIC
from callengine.crypto.keys import KEY_ID_SIZE
from callengine.crypto.wrap import WRAPPED_KEY_SIZE

# The ephemeral public key and the wrapped data key: without them no private key can recover
# the data key, so overwriting them makes every segment undecryptable for good.
_KEY_MATERIAL_OFFSET = len(MAGIC) + 1 + KEY_ID_SIZE + 4
_KEY_MATERIAL_SIZE = 32 + WRAPPED_KEY_SIZE


def destroy_key(path: str | os.PathLike, *, sync: bool = True) -> None:
    """Overwrite a recording's ephemeral key and wrapped data key with random bytes in place.

    With sync=False the caller makes it durable (one os.sync() for a batch of files)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, os.urandom(_KEY_MATERIAL_SIZE), _KEY_MATERIAL_OFFSET)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def shred(path: str | os.PathLike) -> None:
    """Destroy a recording: overwrite its wrapped key in place (fsync), then unlink the file.

    The key goes first, so a crash between the two steps leaves an undecryptable file, never a
    readable one. Copies elsewhere (backups) hold the same wrapped key: see docs/recording-format.md.
    """
    destroy_key(path)
    os.unlink(path)
