"""Recording files on disk: mode 0600, never overwritten, no plaintext, bad keys refused."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from callengine import crypto
from callengine.crypto import RecordingWriter, open_recording
from tests.support.cerec import write_file


def test_file_mode_0600_even_with_permissive_umask(tmp_path, keys):
    _, pub = keys
    old = os.umask(0)
    try:
        write_file(tmp_path / "m.cerec", pub, b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.cerec").stat().st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "o.cerec"
    write_file(path, pub, b"first")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        RecordingWriter(path, pub)
    assert path.read_bytes() == before
    (tmp_path / "link.cerec").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        RecordingWriter(tmp_path / "link.cerec", pub)
    assert not (tmp_path / "elsewhere").exists()


def test_no_plaintext_on_disk(tmp_path, keys):
    priv, pub = keys
    marker = b"PLAINTEXT-AUDIO-MARKER-0123456789"
    data = marker * 3000 + bytes(100_000)  # recognisable pattern and long zero runs
    path = tmp_path / "p.cerec"
    frames = [640] * (len(data) // 640) + [len(data) % 640]
    write_file(path, pub, data, segment_size=crypto.DEFAULT_SEGMENT_SIZE, chunks=frames)
    blob = path.read_bytes()
    assert marker not in blob
    assert marker[:8] not in blob
    assert bytes(64) not in blob
    assert [p for p in tmp_path.iterdir()] == [path]  # no temp or side files
    assert open_recording(path, priv).read_all() == data


def test_writer_needs_only_the_public_key(tmp_path, keys):
    priv, pub = keys
    with pytest.raises(TypeError):
        RecordingWriter(tmp_path / "n.cerec", X25519PrivateKey.from_private_bytes(priv))
    assert not (tmp_path / "n.cerec").exists()


def test_rejects_low_order_recipient_key(tmp_path):
    with pytest.raises(ValueError):
        RecordingWriter(tmp_path / "lo.cerec", bytes(32))
    assert not (tmp_path / "lo.cerec").exists()


@pytest.mark.parametrize("size", [0, 56, crypto.MAX_SEGMENT_SIZE + 1])
def test_segment_size_bounds(tmp_path, keys, size):
    with pytest.raises(ValueError):
        RecordingWriter(tmp_path / "s.cerec", keys[1], segment_size=size)
    assert not (tmp_path / "s.cerec").exists()
