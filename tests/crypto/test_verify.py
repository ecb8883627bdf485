"""verify and header_info: what a recording says with and without keys."""

from __future__ import annotations

import os

import pytest

from callengine import crypto
from callengine.crypto import header_info, open_recording, verify
from tests.support.cerec import write_file


def test_verify_and_header_info(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(1000)
    path = tmp_path / "v.cerec"
    w = write_file(path, pub, data, segment_size=256)
    info = header_info(path)
    assert info.key_id == crypto.key_id(pub).hex()
    assert info.segment_size == 256 and info.version == 1
    assert info.segments == w.segments_written and info.plaintext_size == 1000
    structural = verify(path)
    assert structural.authenticated is False and structural.method == "structural"
    assert "STRUCTURE ONLY" in str(structural) and "nothing authenticated" in str(structural)
    full = verify(path, [priv])
    assert full.authenticated is True and full.method == "authenticated"
    assert full.plaintext_size == 1000 and full.segments == w.segments_written
    assert full.sha256 == structural.sha256 == w.sha256
    assert str(full).startswith("AUTHENTICATED")


def test_reader_is_single_pass(tmp_path, keys):
    priv, pub = keys
    write_file(tmp_path / "s.cerec", pub, b"once")
    r = open_recording(tmp_path / "s.cerec", priv)
    assert r.read_all() == b"once"
    with pytest.raises(RuntimeError):
        r.read_all()
