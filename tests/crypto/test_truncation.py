"""Truncated recordings and crash recovery (a writer killed, aborted or never closed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from callengine.crypto import (
    RecordingWriter,
    TamperedError,
    TruncatedError,
    header_info,
    open_recording,
    verify,
)
from tests.support.cerec import FIRST_PT, HDR, PT, SMALL, segment_offsets, write_file


def test_truncated_at_segment_boundary(five_segments):
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[3][0])  # keep segments 0..2, all non-final
    with pytest.raises(TruncatedError, match="without a last-segment flag"):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == data[: FIRST_PT + 2 * PT]
    assert r.complete is False and "segment boundary" in r.truncation


def test_cut_mid_segment_is_tampering_unless_it_could_be_a_torn_write(five_segments):
    """Issue 11: a cut inside a segment looks exactly like a modified final segment, so it is
    never read as truncation of a closed file; only a recovery read of a file that ends on a
    page boundary (where a crash tears a write) takes it for a torn write."""
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[2][0] + 30)  # segment 2 cut in half; 222 bytes: no page boundary
    with pytest.raises(TamperedError, match="cut mid-segment"):
        open_recording(path, priv).read_all()
    with pytest.raises(TamperedError, match="no torn write"):
        open_recording(path, priv, recover=True).read_all()


def test_torn_last_write_is_recovered(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "torn.cerec"
    data = os.urandom(FIRST_PT + 70 * PT)
    write_file(path, pub, data)
    os.truncate(path, 4096)  # inside segment 62: where a kill or a power cut tears a write
    with pytest.raises(TamperedError):
        open_recording(path, priv).read_all()  # strict: a closed file is never torn
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == data[: FIRST_PT + 61 * PT]  # the torn segment is not released
    assert r.complete is False and "torn" in r.truncation


def test_torn_first_write_is_not_vouched_for(tmp_path, keys):
    """With no authentic segment, nothing vouches for the header: tampering, even in recovery."""
    priv, pub = keys
    path = tmp_path / "torn0.cerec"
    write_file(path, pub, os.urandom(5000), segment_size=8192)
    os.truncate(path, 4096)
    with pytest.raises(TamperedError, match="cut mid-segment"):
        open_recording(path, priv)
    with pytest.raises(TamperedError, match="vouches for the header"):
        open_recording(path, priv, recover=True)


def test_truncated_tail_shorter_than_tag(five_segments):
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[4][0] + 5)
    with pytest.raises(TamperedError, match="5 of 64 bytes"):
        open_recording(path, priv).read_all()
    with pytest.raises(TruncatedError):
        verify(path)  # visible without keys too (structure alone cannot say more)
    with pytest.raises(TamperedError):  # not on a page boundary: no torn write
        open_recording(path, priv, recover=True).read_all()


def test_dropping_the_final_segment_is_truncation(five_segments):
    path, priv, data = five_segments
    offs = segment_offsets(path.stat().st_size)
    os.truncate(path, offs[4][0])
    with pytest.raises(TruncatedError):
        open_recording(path, priv).read_all()


def test_header_only_file(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "h.cerec"
    w = RecordingWriter(path, pub)
    w.abort()  # as if killed right after open
    with pytest.raises(TruncatedError, match="no segments"):
        open_recording(path, priv)
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == b"" and r.complete is False


@pytest.mark.parametrize("size", [0, 3, 5, 6, 50, HDR - 1])
def test_truncated_inside_header(tmp_path, keys, size):
    priv, pub = keys
    path = tmp_path / "x.cerec"
    write_file(path, pub, b"hello")
    os.truncate(path, size)
    with pytest.raises(TruncatedError, match="header"):
        open_recording(path, priv, recover=True)
    with pytest.raises(TruncatedError):
        header_info(path)


def test_kill_9_loses_at_most_the_buffered_segment(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "killed.cerec"
    seg = 4096
    total = 50 * 640 + 123
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from callengine.crypto import RecordingWriter
w = RecordingWriter({str(path)!r}, bytes.fromhex({pub.hex()!r}), segment_size={seg})
data = bytes(i % 251 for i in range({total}))
for i in range(0, len(data), 640):
    w.write(data[i:i + 640])
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    expected = bytes(i % 251 for i in range(total))
    with pytest.raises(TruncatedError):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    got = r.read_all()
    assert r.complete is False
    assert expected.startswith(got)
    assert total - len(got) <= seg - 16  # at most one segment of plaintext lost
    assert len(got) == (seg - 56) + (len(got) - (seg - 56)) // (seg - 16) * (seg - 16)


def test_context_manager_abort_on_exception(tmp_path, keys):
    priv, pub = keys
    path = tmp_path / "cm.cerec"
    with pytest.raises(RuntimeError):
        with RecordingWriter(path, pub, segment_size=SMALL) as w:
            w.write(b"z" * 100)
            raise RuntimeError("call dropped")
    with pytest.raises(TruncatedError):
        open_recording(path, priv).read_all()
    r = open_recording(path, priv, recover=True)
    assert r.read_all() == b"z" * (FIRST_PT + PT)  # complete segments survive
    with RecordingWriter(tmp_path / "ok.cerec", pub) as w:
        w.write(b"fine")
    assert open_recording(tmp_path / "ok.cerec", priv).read_all() == b"fine"


def test_reader_accepts_empty_final_segment(tmp_path, keys):
    """Our writer never emits an empty last segment after full ones (Tink's
    writer doesn't either), but Tink readers accept one, and so do we."""
    priv, pub = keys
    path = tmp_path / "e.cerec"
    w = RecordingWriter(path, pub, segment_size=SMALL)
    w.write(b"q" * FIRST_PT)
    w._seal(last=False)  # force segment 0 out as non-final
    w.close()  # final segment is then empty: a bare tag
    assert path.stat().st_size == HDR + (SMALL - 40) + 16
    r = open_recording(path, priv)
    assert r.read_all() == b"q" * FIRST_PT and r.complete is True
