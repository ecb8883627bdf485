"""The RTP route (callengine/media/rtp.py, rtp_stream.py): ARI externalMedia → RTP/UDP → encrypted recording.

Three layers of tests:
* the pure parser and sequence logic with synthetic packets (gaps, wrap-around, duplicates,
  reordering, strangers, padding/extension/CSRCs, malformed datagrams);
* RtpTap over real UDP sockets with the shared fake ARI (retries, failures, many taps);
* against the real Asterisk (@pytest.mark.asterisk): a bridged call of two sipp phones (agent
  440 Hz, visitor 1000 Hz) in our own Stasis app, tapped, decrypted and checked by FFT, and
  every file Asterisk or we could have written scanned for plaintext audio.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from callengine.asterisk.ari import AriClient
from callengine.crypto import generate_recipient_keypair, open_recording, verify
from callengine.media.rtp import RtpTap, RtpTapError
from callengine.media.rtp_stream import (
    SLIN16_PAYLOAD_TYPE,
    SLIN_PAYLOAD_TYPE,
    MalformedRtp,
    RtpReceiver,
    parse_rtp,
    wire_format,
)
from callengine.audio import DEFAULT_SAMPLE_RATE, bytes_per_second
from callengine.recorder import RecordingSink
from callengine.telephony import Gone, NotReady
from tests.support.asterisk import AriApp
from tests.support.fake_ari import FakeAri
from tests.support.phones import AGENT_TONE_HZ, PSTN_PORT, VISITOR_TONE_HZ, Phone, agent_port

# ---- synthetic packets ---------------------------------------------------------------------

SSRC = 0x5EED1234
RATE = DEFAULT_SAMPLE_RATE  # the synthetic streams' rate unless a test says otherwise
FRAME_BYTES = wire_format(RATE).frame_bytes  # 320: 20 ms of 8 kHz slin


def frame(value: int, samples: int = FRAME_BYTES // 2) -> bytes:
    """A big-endian slin payload whose samples all equal `value` (tells frames apart)."""
    return struct.pack(f">{samples}h", *([value] * samples))


def rtp(
    seq: int,
    payload: bytes | None = None,
    *,
    rate: int = RATE,
    ssrc: int = SSRC,
    pt: int | None = None,
    ts: int | None = None,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: bytes | None = None,
    padding: int = 0,
    version: int = 2,
) -> bytes:
    """An RTP packet (RFC 3550 §5.1) as Asterisk sends `rate` (payload type, 20 ms frames).
    The default payload encodes the sequence number."""
    wire = wire_format(rate)
    samples = wire.frame_bytes // 2
    seq &= 0xFFFF
    if payload is None:
        payload = frame(seq - 0x10000 if seq >= 0x8000 else seq, samples)
    b0 = version << 6 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | (wire.payload_type if pt is None else pt)
    ts = (seq * samples) & 0xFFFFFFFF if ts is None else ts
    head = struct.pack(">BBHII", b0, b1, seq, ts, ssrc) + b"".join(struct.pack(">I", c) for c in csrcs)
    if extension is not None:
        assert len(extension) % 4 == 0
        head += struct.pack(">HH", 0xBEDE, len(extension) // 4) + extension
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    return head + payload + tail


class Collect:
    def __init__(self):
        self.chunks: list[bytes] = []

    def __call__(self, pcm) -> None:
        self.chunks.append(bytes(pcm))

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def frames(self, size: int = FRAME_BYTES) -> list[int | None]:
        """Per frame of the little-endian output: its sample value, None for silence
        written by gap filling (value 0 is never used by the tests' payloads, except seq 0)."""
        data = self.data
        assert len(data) % size == 0, len(data)
        out = []
        for i in range(0, len(data), size):
            values = set(struct.unpack(f"<{size // 2}h", data[i : i + size]))
            assert len(values) == 1, "a frame mixes samples: byte order or framing is wrong"
            out.append(values.pop())
        return out


def receive(packets, **kwargs) -> tuple[RtpReceiver, Collect]:
    out = Collect()
    receiver = RtpReceiver(out, **kwargs)
    for p in packets:
        receiver.push(p)
    receiver.flush()
    return receiver, out


# ---- parser --------------------------------------------------------------------------------


def test_parse_header_fields():
    p = parse_rtp(rtp(4711, b"\x01\x02\x03\x04", ts=123456, marker=True, ssrc=0xDEADBEEF))
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker) == (10, 4711, 123456, 0xDEADBEEF, True)
    assert bytes(p.payload) == b"\x01\x02\x03\x04" and p.csrcs == ()


def test_parse_skips_csrcs_extension_and_padding():
    data = rtp(7, b"\xAA\xBB", csrcs=(1, 2, 3), extension=b"\x10\x20\x30\x40" * 2, padding=6)
    p = parse_rtp(data)
    assert p.csrcs == (1, 2, 3)
    assert bytes(p.payload) == b"\xAA\xBB"
    assert p.sequence == 7


@pytest.mark.parametrize(
    "data, why",
    [
        (b"", "shorter than the 12-byte"),
        (b"\x80\x76\x00\x01" + bytes(7), "shorter than the 12-byte"),
        (rtp(1, b"\x00\x01", version=1), "version 1"),
        (rtp(1, b"\x00\x01", version=0), "version 0"),
        (rtp(1, b""), "no payload"),
        # 3 CSRCs announced, one CSRC's worth of bytes present
        (bytes([0x83, 118]) + bytes(10) + bytes(4), "CSRCs announced"),
        # an extension of 100 words in a packet of 8 more bytes
        (bytes([0x90, 118]) + bytes(10) + struct.pack(">HH", 0xBEDE, 100) + bytes(8), "overruns"),
        (bytes([0x90, 118]) + bytes(10) + b"\xBE", "extension announced"),
        (bytes([0xA0, 118]) + bytes(10) + b"\x00\x01\x00\x00", "padding of 0"),
        (bytes([0xA0, 118]) + bytes(10) + b"\x00\x01\x00\x09", "padding of 9"),
        (bytes([0xA0, 118]) + bytes(10) + b"\x00\x00\x00\x04", "no payload"),
    ],
)
def test_parse_rejects_malformed(data, why):
    with pytest.raises(MalformedRtp, match=why):
        parse_rtp(data)


# ---- receiver: order, loss, duplicates -----------------------------------------------------


def test_in_order_stream_is_byteswapped_to_little_endian():
    payload = bytes([0x01, 0x02, 0x7F, 0xFE, 0x80, 0x00])  # BE samples 0x0102, 0x7FFE, -32768
    receiver, out = receive([rtp(10, payload), rtp(11, payload)])
    assert out.data == bytes([0x02, 0x01, 0xFE, 0x7F, 0x00, 0x80]) * 2
    assert struct.unpack("<3h", out.data[:6]) == (0x0102, 0x7FFE, -32768)
    s = receiver.stats
    assert (s.packets, s.bytes, s.lost_packets, s.lost_bytes) == (2, 12, 0, 0)
    assert receiver.ssrc == SSRC


def test_gap_is_filled_with_silence_and_counted():
    receiver, out = receive([rtp(s) for s in [1, 2, 5, 6, 7, 8, 9, 10]])
    assert out.frames() == [1, 2, 0, 0, 5, 6, 7, 8, 9, 10]
    s = receiver.stats
    assert (s.lost_packets, s.lost_bytes, s.packets, s.late) == (2, 2 * FRAME_BYTES, 8, 0)


def test_gap_fill_uses_the_last_frame_size():
    small = [rtp(s, frame(s, samples=80)) for s in (1, 2, 4, 5, 6, 7, 8)]
    receiver, out = receive(small)
    assert receiver.stats.lost_bytes == 160
    assert out.frames(160) == [1, 2, 0, 4, 5, 6, 7, 8]


def test_wire_format_per_rate():
    """What externalMedia sends: Asterisk's format name, its static payload type
    (main/rtp_engine.c), 20 ms per packet."""
    slin, slin16 = wire_format(8000), wire_format(16000)
    assert (slin.name, slin.payload_type, slin.frame_bytes) == ("slin", SLIN_PAYLOAD_TYPE, 320)
    assert (slin16.name, slin16.payload_type, slin16.frame_bytes) == (
        "slin16", SLIN16_PAYLOAD_TYPE, 640)
    assert SLIN_PAYLOAD_TYPE == 10
    with pytest.raises(ValueError, match="sample rate"):
        wire_format(48000)


@pytest.mark.parametrize("rate, other", [(8000, 16000), (16000, 8000)])
def test_receiver_takes_only_its_rates_payload_type(rate, other):
    """A stream of the other rate's payload type is never taken for audio (the payload type
    is how a 16 kHz stream would be told from an 8 kHz one: same 16-bit samples)."""
    receiver, out = receive([rtp(s, rate=other) for s in (1, 2)] +
                            [rtp(s, rate=rate, ssrc=0x42) for s in (3, 4)], sample_rate=rate)
    assert receiver.payload_type == wire_format(rate).payload_type
    assert receiver.ssrc == 0x42 and receiver.stats.other_payload_type == 2
    assert out.frames(wire_format(rate).frame_bytes) == [3, 4]


def test_sequence_wraps_around_without_loss():
    seqs = [65532, 65533, 65534, 65535, 0, 1, 2, 3]
    receiver, out = receive([rtp(s) for s in seqs])
    assert out.frames() == [-4, -3, -2, -1, 0, 1, 2, 3]
    assert receiver.stats.lost_packets == 0 and receiver.stats.packets == 8


def test_gap_across_the_wrap_around():
    receiver, out = receive([rtp(s) for s in [65534, 65535, 2, 3, 4, 5, 6]])
    # 0 and 1 are missing: two frames of silence (frame 0 looks like silence by design)
    assert out.frames() == [-2, -1, 0, 0, 2, 3, 4, 5, 6]
    assert receiver.stats.lost_packets == 2


def test_duplicates_are_dropped():
    receiver, out = receive([rtp(s) for s in [1, 2, 2, 3, 3, 3, 4, 2]])
    assert out.frames() == [1, 2, 3, 4]
    assert receiver.stats.duplicates == 4 and receiver.stats.lost_packets == 0


def test_reordering_within_the_window_is_repaired():
    receiver, out = receive([rtp(s) for s in [1, 3, 2, 4, 6, 7, 5, 8]], reorder_window=4)
    assert out.frames() == [1, 2, 3, 4, 5, 6, 7, 8]
    s = receiver.stats
    assert (s.reordered, s.lost_packets, s.late, s.duplicates) == (2, 0, 0, 0)


def test_late_packet_after_its_slot_was_filled_is_dropped():
    # Window 2: 3, 4, 5 held → 2 is given up (silence); it arrives afterwards.
    receiver, out = receive([rtp(s) for s in [1, 3, 4, 5, 2, 6, 2]], reorder_window=2)
    assert out.frames() == [1, 0, 3, 4, 5, 6]
    s = receiver.stats
    assert (s.lost_packets, s.late, s.duplicates) == (1, 1, 1)  # the second 2 is a duplicate


def test_duplicate_of_a_held_packet():
    receiver, out = receive([rtp(s) for s in [1, 3, 3, 2]])
    assert out.frames() == [1, 2, 3]
    assert receiver.stats.duplicates == 1 and receiver.stats.reordered == 1


def test_flush_writes_held_packets_at_the_end():
    out = Collect()
    receiver = RtpReceiver(out, reorder_window=8)
    for s in [1, 2, 4, 6]:
        receiver.push(rtp(s))
    assert out.frames() == [1, 2] and receiver.held == 2
    receiver.flush()
    assert out.frames() == [1, 2, 0, 4, 0, 6]
    assert receiver.stats.lost_packets == 2 and receiver.held == 0


def test_long_outage_is_filled():
    seqs = [1, 2] + list(range(203, 210))  # 200 packets (4 s) lost
    receiver, out = receive([rtp(s) for s in seqs])
    assert receiver.stats.lost_packets == 200
    assert len(out.data) == (len(seqs) + 200) * FRAME_BYTES


def test_wrong_ssrc_is_dropped_after_the_first_packet():
    packets = [rtp(1), rtp(2, ssrc=0xBAD), rtp(2), rtp(900, ssrc=0xBAD), rtp(3)]
    receiver, out = receive(packets)
    assert out.frames() == [1, 2, 3]
    assert receiver.stats.foreign == 2 and receiver.ssrc == SSRC


def test_non_audio_packet_takes_its_sequence_number_without_loss():
    # e.g. comfort noise (PT 13) in the stream: not written, not a gap either
    receiver, out = receive([rtp(1), rtp(2, b"\x40", pt=13), rtp(3), rtp(4)])
    assert out.frames() == [1, 3, 4]
    s = receiver.stats
    assert (s.other_payload_type, s.lost_packets) == (1, 0)


def test_stream_does_not_lock_on_a_non_audio_packet():
    receiver, out = receive([rtp(1, b"\x40", pt=101, ssrc=0x999), rtp(5), rtp(6)])
    assert receiver.ssrc == SSRC and out.frames() == [5, 6]
    assert receiver.stats.other_payload_type == 1


def test_payload_type_none_takes_the_first_packets():
    receiver, out = receive([rtp(1, pt=96), rtp(2, pt=96)], payload_type=None)
    assert receiver.payload_type == 96 and out.frames() == [1, 2]


def test_padding_extension_and_csrcs_in_the_stream():
    packets = [
        rtp(1),
        rtp(2, padding=4),
        rtp(3, extension=b"\x01\x02\x03\x04"),
        rtp(4, csrcs=(7, 8)),
        rtp(5, padding=1, extension=bytes(12), csrcs=(9,), marker=True),
    ]
    receiver, out = receive(packets)
    assert out.frames() == [1, 2, 3, 4, 5]
    assert receiver.stats.malformed == 0


def test_malformed_datagrams_are_counted_and_skipped():
    junk = [b"", b"\x80", b"\x80\x76" + bytes(9), b"hello world, not rtp at all", rtp(2, b"\x01\x02\x03")]
    receiver, out = receive([rtp(1), *junk, rtp(2), rtp(3)])
    assert out.frames() == [1, 2, 3]
    assert receiver.stats.malformed == len(junk)
    assert receiver.stats.datagrams == len(junk) + 3


def test_malformed_first_packets_do_not_lock_the_stream():
    receiver, out = receive([b"\x00" * 40, rtp(3, b"\x01"), rtp(8), rtp(9)])
    assert receiver.ssrc == SSRC and out.frames() == [8, 9]


def test_one_stray_far_off_sequence_number_is_dropped():
    receiver, out = receive([rtp(s) for s in [1, 2, 30000, 3, 4]])
    assert out.frames() == [1, 2, 3, 4]
    s = receiver.stats
    assert (s.out_of_range, s.resyncs, s.lost_packets) == (1, 0, 0)


def test_far_behind_stray_is_dropped():
    receiver, out = receive([rtp(s) for s in [1000, 1001, 500, 1002]])
    assert out.frames() == [1000, 1001, 1002]
    assert receiver.stats.out_of_range == 1


def test_sequence_restart_is_followed():
    # The sender restarts its numbering (RFC 3550 A.1: two sequential packets confirm it).
    receiver, out = receive([rtp(s) for s in [100, 101, 102, 20000, 20001, 20002]])
    assert out.frames() == [100, 101, 102, 20000, 20001, 20002]
    s = receiver.stats
    assert (s.resyncs, s.out_of_range, s.lost_packets) == (1, 0, 0)


def test_write_errors_propagate():
    def broken(pcm):
        raise OSError(28, "No space left on device")

    receiver = RtpReceiver(broken)
    with pytest.raises(OSError):
        receiver.push(rtp(1))


def test_receive_path_cost():
    """The per-packet work in Python (parse, sequence, byteswap, encrypting sink)."""
    packets = [rtp(s) for s in range(20000)]
    public = generate_recipient_keypair()[1]
    with tempfile.TemporaryDirectory() as d:
        sink = RecordingSink(Path(d), public)
        receiver = RtpReceiver(sink.feed)
        t0 = time.perf_counter()
        for p in packets:
            receiver.push(p)
        per_packet = (time.perf_counter() - t0) / len(packets)
        sink.close()
    print(f"\nRtpReceiver.push + encrypting sink: {per_packet * 1e6:.2f} µs/packet")
    assert receiver.stats.packets == 20000
    assert per_packet < 100e-6  # 2 % of a core for 200 streams at 50 packets/s, with room


# ---- the asyncio transport with the fake ARI (tests/support/fake_ari.py) -----------------------------------------


@pytest.fixture
def keys():
    return generate_recipient_keypair()


async def start_tap(tmp_path, keys, ari, rate: int = RATE, **kwargs) -> tuple[RtpTap, RecordingSink]:
    sink = RecordingSink(tmp_path, keys[1], sample_rate=rate)
    ari.add_bridge("bridge-1")
    tap = RtpTap(ari, **kwargs)
    await tap.start(sink, channel_id="chan-a", channel_name="PJSIP/agent1-1", bridge_id="bridge-1",
                    tap_channel_id="tap-1")
    return tap, sink


async def send(port: int, packets, sock: socket.socket | None = None, pace: float = 0.0) -> None:
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i, p in enumerate(packets):
            sock.sendto(p, ("127.0.0.1", port))
            if pace or i % 50 == 49:
                await asyncio.sleep(pace)  # let the loop read (the socket buffer is finite)
    finally:
        if own:
            sock.close()


def decrypt(path, private) -> bytes:
    with open_recording(path, private) as reader:
        data = reader.read_all()
        assert reader.complete
    return data


@pytest.mark.parametrize("rate, fmt, frame_bytes", [(8000, "slin", 320), (16000, "slin16", 640)])
async def test_tap_over_udp_with_retried_add(tmp_path, keys, rate, fmt, frame_bytes):
    ari = FakeAri(fail={"add_to_bridge": [NotReady, NotReady]})
    tap, sink = await start_tap(tmp_path, keys, ari, rate)
    assert tap.port is not None and 40000 <= tap.port <= 40999
    assert ari.calls[0] == ("external_media", "tap-1", f"127.0.0.1:{tap.port}", fmt)
    assert ari.names() == ["external_media", "add_to_bridge", "add_to_bridge", "add_to_bridge"]
    assert (tap.asterisk_address, tap.asterisk_port) == ("127.0.0.1", 10042)

    seqs = [s & 0xFFFF for s in range(65500, 65500 + 150)]  # 3 s, across the wrap-around
    seqs.remove(10)  # one lost packet
    await send(tap.port, [rtp(s, rate=rate) for s in seqs])
    report = await tap.finish(talk_s=3.0)
    assert ari.names()[-1] == "hangup"
    assert report.problem is None
    assert report.expected_bytes == 3 * bytes_per_second(rate) == 150 * frame_bytes
    assert report.lost_bytes == frame_bytes and tap.stats.lost_packets == 1
    assert report.summary.complete and report.summary.bytes_in == 150 * frame_bytes
    assert report.summary.sample_rate == rate and report.summary.duration_s == 3.0
    pcm = decrypt(report.summary.path, keys[0])
    values = [struct.unpack_from("<h", pcm, i * frame_bytes)[0] for i in range(150)]
    expected = [s - 0x10000 if s >= 0x8000 else s for s in range(65500, 65650)]
    expected = [v & 0xFFFF if v >= 0 else v for v in expected]
    assert values[:36] == [v - 0x10000 for v in range(65500, 65536)]
    assert values[36:46] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] and values[46] == 0 and values[47] == 11
    # the socket is closed: the port is free again
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", tap.port))
    assert await tap.finish(talk_s=3.0) is report  # idempotent


async def test_tap_ignores_other_senders(tmp_path, keys):
    tap, sink = await start_tap(tmp_path, keys, FakeAri())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as asterisk, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
        await send(tap.port, [rtp(1), rtp(2)], sock=asterisk)
        await asyncio.sleep(0.05)
        # the right SSRC from the wrong address, then a stranger's SSRC
        await send(tap.port, [rtp(3, frame(666)), rtp(3, frame(666), ssrc=1)], sock=intruder)
        await asyncio.sleep(0.05)
        await send(tap.port, [rtp(3), rtp(4)], sock=asterisk)
        report = await tap.finish(talk_s=0.08)
    pcm = decrypt(report.summary.path, keys[0])
    assert [struct.unpack_from("<h", pcm, i * FRAME_BYTES)[0] for i in range(4)] == [1, 2, 3, 4]
    assert tap.stats.foreign == 2 and report.problem is None


async def test_short_stream_is_a_problem(tmp_path, keys):
    tap, _ = await start_tap(tmp_path, keys, FakeAri(fail={"hangup": [Gone]}))
    await send(tap.port, [rtp(s) for s in range(100)])  # 2 s of a 10 s call
    report = await tap.finish(talk_s=10.0)
    assert report.problem and "received 32000 of 160000" in report.problem
    assert "hangup" not in (report.problem or "")  # a 404 on hangup is fine
    assert report.summary.complete


async def test_start_fails_cleanly_when_the_bridge_is_gone(tmp_path, keys):
    ari = FakeAri(fail={"add_to_bridge": [Gone]})
    sink = RecordingSink(tmp_path, keys[1])
    tap = RtpTap(ari)
    with pytest.raises(RtpTapError, match="404"):
        await tap.start(sink, channel_id="a", channel_name="", bridge_id="gone", tap_channel_id="tap-9")
    assert ari.names() == ["external_media", "add_to_bridge", "hangup"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", tap.port))  # released
    report = await tap.finish(talk_s=5.0)
    assert report.problem.startswith("tap not started")
    assert ari.names().count("hangup") == 1


async def test_422_for_too_long_gives_up(tmp_path, keys):
    ari = FakeAri(fail={"add_to_bridge": [NotReady] * 100})
    sink = RecordingSink(tmp_path, keys[1])
    tap = RtpTap(ari, add_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(RtpTapError, match="422"):
        await tap.start(sink, channel_id="a", channel_name="", bridge_id="b", tap_channel_id="t")
    assert time.monotonic() - t0 < 1.0
    assert ari.names()[-1] == "hangup"
    await tap.finish(talk_s=0)


async def test_no_free_port(tmp_path, keys):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        ari = FakeAri()
        sink = RecordingSink(tmp_path, keys[1])
        tap = RtpTap(ari, port_range=(port, port))
        with pytest.raises(RtpTapError, match="no free UDP port"):
            await tap.start(sink, channel_id="a", channel_name="", bridge_id="b", tap_channel_id="t")
    assert ari.calls == [("hangup", "t")] or ari.calls == []


def test_wildcard_bind_needs_an_advertised_host():
    with pytest.raises(ValueError, match="advertise_host"):
        RtpTap(FakeAri(), bind_host="0.0.0.0")
    assert RtpTap(FakeAri(), bind_host="0.0.0.0", advertise_host="10.0.0.5").advertise_host == "10.0.0.5"


async def test_sink_failure_stops_feeding_and_is_reported(tmp_path, keys):
    tap, sink = await start_tap(tmp_path, keys, FakeAri())

    def full(pcm):
        raise OSError(28, "No space left on device")

    tap.receiver._write = full  # the disk fills up mid-call
    await send(tap.port, [rtp(s) for s in range(10)])
    report = await tap.finish(talk_s=0.2)
    assert "No space left" in report.problem
    assert not report.summary.complete
    assert tap.stats.datagrams == 1  # nothing fed after the failure


async def test_many_concurrent_taps(tmp_path, keys):
    """100 taps at once through the default event loop, 1 s of audio each, paced like Asterisk."""
    ari = FakeAri()
    taps = [await start_tap(tmp_path, keys, ari) for _ in range(100)]
    ports = {t.port for t, _ in taps}
    assert len(ports) == 100
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.process_time()
    for seq in range(50):
        for tap, _ in taps:
            sock.sendto(rtp(seq), ("127.0.0.1", tap.port))
        await asyncio.sleep(0.02)
    sock.close()
    reports = [await tap.finish(talk_s=1.0) for tap, _ in taps]
    cpu = time.process_time() - t0
    assert all(r.problem is None and r.lost_bytes == 0 for r in reports), [r.problem for r in reports][:3]
    assert all(r.summary.bytes_in == 50 * FRAME_BYTES for r in reports)
    print(f"\n100 taps × 50 packets: {cpu * 1e3:.0f} ms CPU (sending, receiving, encrypting, finishing)")


# ---- against the real Asterisk --------------------------------------------------------------

APP = "rtp-test"
TALK_S = 3.0
VISITOR = "+4915112345678"


def tone_shares(samples: np.ndarray, rate: int, tones=(AGENT_TONE_HZ, VISITOR_TONE_HZ)) -> dict[int, float]:
    """Share of the signal's energy (DC removed) within ±20 Hz of each tone."""
    x = samples.astype(np.float64)
    x -= x.mean()
    power = np.abs(np.fft.rfft(x)) ** 2
    total = power.sum()
    if total <= 0:
        return {hz: 0.0 for hz in tones}
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return {hz: float(power[np.abs(freqs - hz) <= 20].sum() / total) for hz in tones}


def _g711(data: bytes, law: str) -> np.ndarray:
    b = np.frombuffer(data, np.uint8).astype(np.int32)
    if law == "ulaw":
        u = ~b & 0xFF
        mag = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)
        return np.where(u & 0x80, 0x84 - mag, mag - 0x84)
    a = b ^ 0x55
    exp, mant = (a >> 4) & 7, a & 0x0F
    mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
    return np.where(a & 0x80, mag, -mag)


def plaintext_tone(data: bytes, chunk_s: float = 0.5, threshold: float = 0.2) -> str | None:
    """How `data` would hold our test tones as raw audio (16-bit either byte order at either
    alignment, or G.711), or None. Every sample rate is covered: a tone at 8 kHz shows at
    twice the frequency when read as 16 kHz, so both readings are checked."""
    readings = []
    for offset in (0, 1):
        usable = (len(data) - offset) // 2 * 2
        for order in ("<i2", ">i2"):
            readings.append((f"int16{order[0]}+{offset}", np.frombuffer(data[offset : offset + usable], order)))
    readings += [("ulaw", _g711(data, "ulaw")), ("alaw", _g711(data, "alaw"))]
    for name, samples in readings:
        for rate in (8000, 16000):
            n = int(rate * chunk_s)
            for start in range(0, max(len(samples) - n, 0) + 1, n):
                chunk = samples[start : start + n]
                if len(chunk) < n // 2:
                    continue
                shares = tone_shares(chunk, rate)
                for hz, share in shares.items():
                    if share > threshold:
                        return f"{name} at {rate} Hz, {hz} Hz tone holds {share:.0%} of the energy"
    return None


def scan_for_plaintext(directories, public_keys_dir: Path | None = None, private=None) -> list[str]:
    """Every regular file under the directories: (path, why) if it holds tone audio; files in
    `public_keys_dir` (our recordings dir) must moreover be complete CEREC recordings."""
    findings = []
    for directory in directories:
        for path in sorted(Path(directory).rglob("*")):
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue  # FIFOs (reading would block), sockets, symlinks, dirs
            data = path.read_bytes()[: 8 << 20]
            why = plaintext_tone(data)
            if why:
                findings.append(f"{path}: {why}")
            if public_keys_dir is not None and path.is_relative_to(public_keys_dir):
                try:
                    verify(path, private)
                except Exception as exc:
                    findings.append(f"{path}: not a valid recording ({exc})")
    return findings


_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def new_id(prefix: str) -> str:
    """A unique id without digits: the suite's log check (tests/support/logcheck.py) reads
    digit runs in UUIDs such as "4771-9603-17" as phone numbers."""
    return f"{prefix}-{uuid.uuid4().hex.translate(_NO_DIGITS)}"


class BridgedCall:
    """agent1 (440 Hz) and a visitor through the "PSTN" trunk (1000 Hz), answered and in a
    mixing bridge of our Stasis app. Hangs everything up on exit, whatever happened."""

    def __init__(self, asterisk, app: AriApp, ari: AriClient):
        self.asterisk, self.app, self.ari = asterisk, app, ari
        self.agent = new_id("rtp-agent")
        self.visitor = new_id("rtp-visitor")
        self.bridge = new_id("rtp-bridge")
        self.agent_name = ""
        self.bridged_at = 0.0
        self.extra_channels: list[str] = []

    async def __aenter__(self) -> "BridgedCall":
        try:
            await self.app.originate("PJSIP/agent1", timeout=10, channelId=self.agent)
            await self.app.originate(f"PJSIP/{VISITOR}@pstn", timeout=10, channelId=self.visitor)
            started = await self.app.wait_for("StasisStart", self.agent)
            await self.app.wait_for("StasisStart", self.visitor)
            self.agent_name = started["channel"]["name"]
            await self.ari.create_bridge(self.bridge)
            await self.ari.add_to_bridge(self.bridge, [self.agent, self.visitor])
            self.bridged_at = time.monotonic()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def hang_up(self) -> float:
        """Both parties hang up; returns the talk time."""
        for channel in (self.agent, self.visitor):
            await self.app.hangup(channel)
        return time.monotonic() - self.bridged_at

    async def __aexit__(self, *exc) -> None:
        for channel in (self.agent, self.visitor, *self.extra_channels):
            await self.asterisk.ari("DELETE", f"/channels/{channel}")
        await self.asterisk.ari("DELETE", f"/bridges/{self.bridge}")
        for channel in (self.agent, self.visitor, *self.extra_channels):
            if self.app.find("StasisStart", channel) or self.app.find("Dial", channel):
                await self.app.wait_for("ChannelDestroyed", channel)


@pytest.fixture
async def rtp_app(asterisk):
    """Our own Stasis app: one websocket (events collected) and our ARI client on it."""
    async with AriApp(asterisk, APP) as app, AriClient(
        asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, APP
    ) as ari:
        yield app, ari


@pytest.fixture
async def phones():
    async with Phone(agent_port(1), "answer", tone_hz=AGENT_TONE_HZ, answer_after_ms=100) as agent, Phone(
        PSTN_PORT, "answer", tone_hz=VISITOR_TONE_HZ, answer_after_ms=100
    ) as pstn:
        yield agent, pstn


@pytest.mark.asterisk
@pytest.mark.parametrize("rate", [8000, 16000])
async def test_records_both_parties_over_rtp(asterisk, rtp_app, phones, tmp_path, keys, rate):
    """Also proves Asterisk's payload type per rate: the receiver takes only its rate's
    (wire_format) for audio, so any other would show as other_payload_type and no audio."""
    app, ari = rtp_app
    private, public = keys
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    sink = RecordingSink(recordings, public, sample_rate=rate)
    wire = wire_format(rate)
    tap = RtpTap(ari)
    tap_id = new_id("rtp-tap")
    async with BridgedCall(asterisk, app, ari) as call:
        call.extra_channels.append(tap_id)
        await tap.start(sink, channel_id=call.agent, channel_name=call.agent_name,
                        bridge_id=call.bridge, tap_channel_id=tap_id)
        # The externalMedia channel entered our app (its StasisStart is ours to see) …
        tap_start = await app.wait_for("StasisStart", tap_id)
        assert tap_start["channel"]["name"].startswith(f"UnicastRTP/127.0.0.1:{tap.port}-")
        assert await ari.channel_var(tap_id, "UNICASTRTP_LOCAL_PORT") == str(tap.asterisk_port)
        # … and sits in the bridge, which a third member turns into softmix.
        await asyncio.sleep(0.5)
        _, bridge = await asterisk.ari("GET", f"/bridges/{call.bridge}")
        assert sorted(bridge["channels"]) == sorted([call.agent, call.visitor, tap_id])
        assert bridge["technology"] == "softmix"
        await asyncio.sleep(TALK_S - (time.monotonic() - call.bridged_at))
        talk_s = await call.hang_up()
        await app.wait_for("ChannelDestroyed", call.agent)
        await app.wait_for("ChannelDestroyed", call.visitor)
        report = await tap.finish(talk_s=talk_s)
        await app.wait_for("ChannelDestroyed", tap_id)

    stats = tap.stats
    assert report.problem is None, report.problem
    assert (report.lost_bytes, stats.lost_packets, stats.late, stats.duplicates) == (0, 0, 0, 0), stats
    assert (stats.foreign, stats.malformed, stats.other_payload_type, stats.resyncs) == (0, 0, 0, 0), stats
    # Asterisk's side of the stream is the port it announced
    assert tap._protocol.source[1] == tap.asterisk_port  # noqa: SLF001
    assert report.summary.complete and report.summary.path.parent == recordings

    pcm = decrypt(report.summary.path, private)
    seconds = len(pcm) / bytes_per_second(rate)
    assert len(pcm) == stats.bytes == report.summary.bytes_in
    assert abs(seconds - talk_s) < 0.3, (seconds, talk_s)
    assert stats.packets == len(pcm) // wire.frame_bytes and len(pcm) % wire.frame_bytes == 0
    assert tap.receiver.payload_type == wire.payload_type
    samples = np.frombuffer(pcm, "<i2")
    whole = tone_shares(samples, rate)
    assert whole[AGENT_TONE_HZ] > 0.2 and whole[VISITOR_TONE_HZ] > 0.2, whole
    assert whole[AGENT_TONE_HZ] + whole[VISITOR_TONE_HZ] > 0.8, whole  # little else: byte order right
    # both parties all along (no dropouts), in half-second windows after the first
    half = rate // 2
    for start in range(half, len(samples) - half + 1, half):
        window = tone_shares(samples[start : start + half], rate)
        assert min(window.values()) > 0.15, (start / rate, window)
    # The scanner below would see the audio if it were on disk in the clear:
    assert plaintext_tone(pcm) is not None
    assert plaintext_tone(samples.byteswap().tobytes()) is not None  # as it came off the wire
    findings = scan_for_plaintext([recordings, asterisk.state_dir], recordings, private)
    assert findings == []
    assert len(list(recordings.iterdir())) == 1
    print(
        f"\nRTP tap {wire.name} (PT {wire.payload_type}): talk {talk_s:.3f} s, recorded "
        f"{seconds:.3f} s, {stats.packets} packets, "
        f"addChannel attempts {tap.add_attempts}, tone shares {whole}, first seq from Asterisk's "
        f"port {tap.asterisk_port}, problem {report.problem}"
    )


@pytest.mark.asterisk
async def test_lost_tap_channel_is_reported(asterisk, rtp_app, phones, tmp_path, keys):
    """Someone hangs up the tap's channel mid-call: the recording ends short and says so;
    finish() tolerates the channel being gone already."""
    app, ari = rtp_app
    sink = RecordingSink(tmp_path, keys[1])
    tap = RtpTap(ari)
    tap_id = new_id("rtp-tap")
    async with BridgedCall(asterisk, app, ari) as call:
        call.extra_channels.append(tap_id)
        await tap.start(sink, channel_id=call.agent, channel_name=call.agent_name,
                        bridge_id=call.bridge, tap_channel_id=tap_id)
        await asyncio.sleep(1.0)
        assert await app.hangup(tap_id) == 204
        await app.wait_for("ChannelDestroyed", tap_id)
        await asyncio.sleep(2.0)
        talk_s = await call.hang_up()
        report = await tap.finish(talk_s=talk_s)
    assert report.problem and report.problem.startswith("received "), report.problem
    assert "hanging up" not in report.problem
    assert report.summary.complete
    assert 0.5 < report.summary.duration_s < 1.5
    assert tap.stats.lost_packets == 0


@pytest.mark.asterisk
async def test_start_cleans_up_when_the_bridge_is_missing(asterisk, rtp_app, tmp_path, keys):
    app, ari = rtp_app
    sink = RecordingSink(tmp_path, keys[1])
    tap = RtpTap(ari, add_timeout=1.0)
    tap_id = new_id("rtp-tap")
    with pytest.raises(RtpTapError, match="404"):
        await tap.start(sink, channel_id="nobody", channel_name="", bridge_id=new_id("no-such-bridge"),
                        tap_channel_id=tap_id)
    await app.wait_for("ChannelDestroyed", tap_id)
    assert [c["id"] for c in await asterisk.channels()] == []
    report = await tap.finish(talk_s=0)
    assert report.problem.startswith("tap not started")
