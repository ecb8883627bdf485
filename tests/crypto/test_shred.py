"""destroy_key / shred (callengine/crypto/shred.py): crypto-shredding a recording."""

from __future__ import annotations

import os

import pytest

from callengine.crypto import (
    KeyUnwrapError,
    destroy_key,
    header_info,
    key_id,
    open_recording,
    shred,
)
from tests.support.cerec import write_file


def test_destroy_key_overwrites_only_the_key_material(tmp_path, keys):
    """Bytes 18-97 (ephemeral public key and wrapped data key) change; the rest stays, so the
    file still parses but no private key opens it."""
    priv, pub = keys
    path = tmp_path / "r.cerec"
    write_file(path, pub, b"audio" * 100)
    before = path.read_bytes()
    destroy_key(path, sync=False)
    after = path.read_bytes()
    assert len(after) == len(before)
    assert after[:18] == before[:18] and after[98:] == before[98:]
    assert after[18:98] != before[18:98]
    assert header_info(path).key_id == key_id(pub).hex()  # still a CEREC file
    with pytest.raises(KeyUnwrapError):
        open_recording(path, priv)


def test_shred_destroys_the_key_in_place_then_unlinks(tmp_path, keys, monkeypatch):
    _, pub = keys
    path = tmp_path / "r.cerec"
    write_file(path, pub, b"audio")
    before = path.read_bytes()
    real_unlink, unlinked = os.unlink, []

    def unlink(p):  # the file as it is when shred lets go of it
        with open(p, "rb") as f:
            unlinked.append(f.read())
        real_unlink(p)

    monkeypatch.setattr(os, "unlink", unlink)
    shred(path)
    monkeypatch.undo()
    assert not path.exists()
    assert len(unlinked) == 1 and unlinked[0][18:98] != before[18:98]
