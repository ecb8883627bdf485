"""Tampered recordings: reordered, spliced or flipped segments and header bytes; wrong keys."""

from __future__ import annotations

import os

import pytest

from callengine import crypto
from callengine.crypto import (
    FormatError,
    KeyUnwrapError,
    RecordingError,
    TamperedError,
    WrongKeyError,
    generate_recipient_keypair,
    header_info,
    open_recording,
    verify,
)
from tests.support.cerec import FIRST_PT, HDR, PT, SMALL, flip, segment_offsets, write_file


def test_reordered_segments(five_segments):
    path, priv, _ = five_segments
    offs = segment_offsets(path.stat().st_size)
    data = bytearray(path.read_bytes())
    (a0, a1), (b0, b1) = offs[1], offs[2]
    seg1, seg2 = bytes(data[a0:a1]), bytes(data[b0:b1])
    data[a0:a1], data[b0:b1] = seg2, seg1
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedError, match="segment 1"):
        open_recording(path, priv).read_all()
    with pytest.raises(TamperedError):
        open_recording(path, priv, recover=True).read_all()  # recover does not hide tampering


def test_segment_from_another_recording(tmp_path, keys):
    priv, pub = keys
    data = os.urandom(FIRST_PT + 3 * PT)
    write_file(tmp_path / "a.cerec", pub, data)
    write_file(tmp_path / "b.cerec", pub, data)
    a = bytearray((tmp_path / "a.cerec").read_bytes())
    b = (tmp_path / "b.cerec").read_bytes()
    s0, s1 = segment_offsets(len(a))[1]
    a[s0:s1] = b[s0:s1]
    (tmp_path / "a.cerec").write_bytes(bytes(a))
    with pytest.raises(TamperedError):
        open_recording(tmp_path / "a.cerec", priv).read_all()


def test_bit_flip_in_segment(five_segments):
    path, priv, _ = five_segments
    offs = segment_offsets(path.stat().st_size)
    flip(path, offs[2][0] + 10, 3)
    with pytest.raises(TamperedError, match="segment 2"):
        open_recording(path, priv).read_all()
    assert verify(path).authenticated is False  # structure alone cannot see it
    with pytest.raises(TamperedError):
        verify(path, priv)


@pytest.mark.parametrize("where", ["ciphertext", "tag"])
def test_bit_flip_in_segment_zero_fails_at_open(five_segments, where):
    path, priv, _ = five_segments
    flip(path, HDR + (0 if where == "ciphertext" else SMALL - 40 - 1))
    with pytest.raises(TamperedError, match="segment 0"):
        open_recording(path, priv)


def test_bit_flip_in_final_segment_is_never_accepted(five_segments):
    path, priv, data = five_segments
    flip(path, path.stat().st_size - 1)
    with pytest.raises(TamperedError, match="final segment 4"):
        open_recording(path, priv).read_all()
    # Issue 11: recovery used to return the prefix as "incomplete"; a flipped bit is no torn
    # write (the file does not end on a page boundary), so it is tampering there too.
    with pytest.raises(TamperedError, match="no torn write"):
        open_recording(path, priv, recover=True).read_all()


def test_bit_flip_in_full_size_final_segment(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "ff.cerec"
    write_file(path, pub, b"k" * (FIRST_PT + PT))  # final segment is full size
    flip(path, path.stat().st_size - 20)
    with pytest.raises(TamperedError, match="final segment"):
        open_recording(path, priv).read_all()


# Header field offsets: magic 0-4, version 5, key id 6-13, segment size 14-17,
# ephemeral pub 18-49, wrapped key 50-97, stream header length 98, salt
# 99-130, nonce prefix 131-137.
HEADER_FLIPS = [
    (0, FormatError),  # magic
    (4, FormatError),
    (5, FormatError),  # version
    (6, WrongKeyError),  # key id: no key matches
    (13, WrongKeyError),
    (14, TamperedError),  # segment size -> out of range
    (17, TamperedError),  # segment size -> other valid size, derived key differs
    (18, KeyUnwrapError),  # ephemeral public key
    (49, KeyUnwrapError),
    (50, KeyUnwrapError),  # wrapped data key
    (97, KeyUnwrapError),
    (98, TamperedError),  # stream header length byte
    (99, TamperedError),  # salt
    (130, TamperedError),
    (131, TamperedError),  # nonce prefix
    (137, TamperedError),
]


@pytest.mark.parametrize("offset,exc", HEADER_FLIPS)
def test_bit_flip_in_header(five_segments, offset, exc):
    path, priv, _ = five_segments
    flip(path, offset, 1)
    with pytest.raises(exc):
        open_recording(path, priv).read_all()
    with pytest.raises(RecordingError):
        open_recording(path, priv, recover=True).read_all()


def test_wrapped_key_flip_is_both_wrong_key_and_tampered(five_segments):
    path, priv, _ = five_segments
    flip(path, 60)
    with pytest.raises(WrongKeyError) as e1:
        open_recording(path, priv)
    assert isinstance(e1.value, TamperedError)
    assert "wrapped" in str(e1.value)


def test_wrong_private_key(tmp_path, keys):
    _, pub = keys
    other_priv, _ = generate_recipient_keypair()
    write_file(tmp_path / "w.cerec", pub, b"secret")
    with pytest.raises(WrongKeyError, match=crypto.key_id(pub).hex()):
        open_recording(tmp_path / "w.cerec", [other_priv])
    with pytest.raises(WrongKeyError):
        open_recording(tmp_path / "w.cerec", [])
    with pytest.raises(WrongKeyError):
        verify(tmp_path / "w.cerec", [other_priv])


def test_key_rotation(tmp_path):
    old_priv, old_pub = generate_recipient_keypair()
    new_priv, new_pub = generate_recipient_keypair()
    write_file(tmp_path / "old.cerec", old_pub, b"recorded before rotation")
    write_file(tmp_path / "new.cerec", new_pub, b"recorded after rotation")
    assert header_info(tmp_path / "old.cerec").key_id == crypto.key_id(old_pub).hex()
    assert header_info(tmp_path / "new.cerec").key_id == crypto.key_id(new_pub).hex()
    both = [new_priv, old_priv]
    assert open_recording(tmp_path / "old.cerec", both).read_all() == b"recorded before rotation"
    assert open_recording(tmp_path / "new.cerec", both).read_all() == b"recorded after rotation"
    with pytest.raises(WrongKeyError):
        open_recording(tmp_path / "old.cerec", [new_priv])


def test_not_a_recording(tmp_path, keys):
    priv, _ = keys
    (tmp_path / "x.wav").write_bytes(b"RIFF" + bytes(500))
    with pytest.raises(FormatError, match="magic"):
        open_recording(tmp_path / "x.wav", priv)
    with pytest.raises(FormatError):
        header_info(tmp_path / "x.wav")
