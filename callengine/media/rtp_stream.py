"""RTP in, PCM out, with no I/O: `parse_rtp` checks one packet, `RtpReceiver` turns one stream
of big-endian 16-bit PCM into little-endian PCM in order, gaps filled (the RTP tap's core).

Checks the RTP header (version 2, CSRCs, extension, padding), locks on the first audio packet's
SSRC, tracks the 16-bit sequence number across wrap-around, holds a few packets to repair
reordering, fills gaps with silence (counted as lost), drops duplicates and packets that arrive
after their slot was written (counted as late).

Wire format (measured on Asterisk 22, see docs/recording-taps.md): one packet every 20 ms;
slin16: payload type 118, 640-byte payloads (320 samples); slin (8 kHz): payload type 10,
320-byte payloads (160 samples). The samples are **big-endian** on the wire (RFC 3551 L16);
recordings store little-endian, so every payload is byte-swapped.
"""

from __future__ import annotations

import struct
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from callengine.audio import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE, check_sample_rate

__all__ = [
    "MalformedRtp",
    "RtpPacket",
    "RtpReceiver",
    "RtpStats",
    "SLIN16_PAYLOAD_TYPE",
    "SLIN_PAYLOAD_TYPE",
    "WireFormat",
    "parse_rtp",
    "wire_format",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
# Asterisk's static payload types (main/rtp_engine.c, ast_rtp_engine_init: add_static_payload).
# slin16 has one, 118 (measured on the wire). slin (8 kHz) is mapped to RFC 3551's L16 numbers
# 10 and 11; chan_rtp sets no transmit mapping, so res_rtp_asterisk takes the first static one
# (find_static_payload_type scans upwards): 10 (measured on the wire as well).
SLIN_PAYLOAD_TYPE = 10
SLIN16_PAYLOAD_TYPE = 118
PACKET_MS = 20  # Asterisk sends slin/slin16 in 20 ms frames
# RFC 3550 appendix A.1: how far a sequence number may jump before it counts as a restart.
MAX_DROPOUT = 3000  # packets ahead (60 s at 50 packets/s): filled with silence up to this
MAX_MISORDER = 100  # packets behind (2 s): a late packet; further back: a restart, or junk

_SEQ_SSRC = struct.Struct(">H4xI")  # sequence number, (timestamp skipped), SSRC
_HEADER = struct.Struct(">BBHII")


@dataclass(frozen=True, slots=True)
class WireFormat:
    """What externalMedia sends for one sample rate."""

    name: str  # Asterisk's format name (externalMedia's `format`)
    payload_type: int
    sample_rate: int

    @property
    def frame_bytes(self) -> int:
        """One packet's payload: 20 ms (320 bytes at 8 kHz, 640 at 16 kHz)."""
        return self.sample_rate * PACKET_MS // 1000 * BYTES_PER_SAMPLE


_WIRE_FORMATS = {
    8000: WireFormat("slin", SLIN_PAYLOAD_TYPE, 8000),
    16000: WireFormat("slin16", SLIN16_PAYLOAD_TYPE, 16000),
}


def wire_format(sample_rate: int) -> WireFormat:
    return _WIRE_FORMATS[check_sample_rate(sample_rate)]


_RATES_PAYLOAD_TYPE = -1  # RtpReceiver's default: the payload type of its sample rate


class MalformedRtp(ValueError):
    """A datagram that is not an RTP packet we can use (the message says why)."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: memoryview  # a view into the datagram: no copy
    csrcs: tuple[int, ...] = ()


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet (RFC 3550 §5.1); raise MalformedRtp if it is not one.

    The payload excludes CSRCs, the header extension and padding. An empty payload is an
    error: no audio codec we ask Asterisk for sends one."""
    n = len(data)
    if n < RTP_HEADER_SIZE:
        raise MalformedRtp(f"{n} bytes: shorter than the 12-byte RTP header")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise MalformedRtp(f"RTP version {b0 >> 6}, not 2")
    cc = b0 & 0x0F
    start = RTP_HEADER_SIZE + 4 * cc
    if start > n:
        raise MalformedRtp(f"{cc} CSRCs announced, {n} bytes in the packet")
    csrcs = struct.unpack_from(f">{cc}I", data, RTP_HEADER_SIZE) if cc else ()
    if b0 & 0x10:  # header extension: 16-bit profile id, 16-bit length in 32-bit words
        if start + 4 > n:
            raise MalformedRtp("header extension announced but the packet ends first")
        words = int.from_bytes(data[start + 2 : start + 4], "big")
        start += 4 + 4 * words
        if start > n:
            raise MalformedRtp(f"header extension of {words} words overruns the packet")
    end = n
    if b0 & 0x20:  # padding: the last byte counts the padding bytes, itself included
        pad = data[-1]
        if pad == 0 or start + pad > n:
            raise MalformedRtp(f"padding of {pad} bytes is impossible here")
        end -= pad
    if end <= start:
        raise MalformedRtp("no payload")
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        marker=bool(b1 & 0x80),
        payload=memoryview(data)[start:end],
        csrcs=csrcs,
    )


@dataclass(slots=True)
class RtpStats:
    """What happened to one stream. Counts are packets unless they say bytes."""

    datagrams: int = 0  # everything that reached the receiver
    packets: int = 0  # audio packets written
    bytes: int = 0  # audio bytes written (received audio, not silence)
    lost_packets: int = 0  # sequence numbers never seen in time: filled with silence
    lost_bytes: int = 0  # silence written in their place
    reordered: int = 0  # arrived after a later packet but in time: repaired
    late: int = 0  # arrived after their slot was filled with silence: dropped
    duplicates: int = 0  # dropped
    malformed: int = 0  # not RTP, truncated, odd-length payload: dropped
    foreign: int = 0  # another SSRC (or source address) than the stream's: dropped
    other_payload_type: int = 0  # same stream, not audio (e.g. comfort noise): dropped
    out_of_range: int = 0  # sequence number far off the expected one: dropped
    resyncs: int = 0  # the sender restarted its sequence numbers (RFC 3550 A.1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class RtpReceiver:
    """One RTP stream of big-endian 16-bit PCM → little-endian PCM, in order, gaps filled.

    Pure (no I/O): `push()` each datagram, `flush()` at the end; the PCM goes to `write`.
    The common case (the next packet in sequence) writes at once; a packet after a gap is
    held until the missing ones arrive or `reorder_window` packets wait, then the gap is
    filled with silence of the last packet's size per missing packet.
    """

    def __init__(
        self,
        write: Callable[[bytes], object],
        *,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        payload_type: int | None = _RATES_PAYLOAD_TYPE,
        reorder_window: int = 4,
        max_dropout: int = MAX_DROPOUT,
        max_misorder: int = MAX_MISORDER,
    ):
        """sample_rate gives the audio payload type and the frame size (wire_format); an
        explicit payload_type overrides the rate's, None takes the first packet's."""
        if reorder_window < 0:
            raise ValueError("reorder_window must be >= 0")
        fmt = wire_format(sample_rate)
        self._write = write
        self.payload_type = (  # None: take the first packet's
            fmt.payload_type if payload_type == _RATES_PAYLOAD_TYPE else payload_type)
        self.ssrc: int | None = None  # locked on the first audio packet
        self.reorder_window = reorder_window
        self.max_dropout = max_dropout
        self.max_misorder = max_misorder
        self.stats = RtpStats()
        self._next: int | None = None  # the sequence number we write next
        self._frame = fmt.frame_bytes  # size of a missing packet's silence: the last one's
        self._held: dict[int, memoryview | None] = {}  # seq → payload (None: not audio)
        self._bad_seq: int | None = None  # RFC 3550 A.1 restart probation
        self._bad_payload: memoryview | None = None
        self._lost: set[int] = set()  # recently filled sequence numbers (late vs duplicate)
        self._lost_order: deque[int] = deque()

    # -- input --------------------------------------------------------------------------------

    def push(self, data: bytes) -> None:
        """One datagram. Never raises for bad input (it is counted); `write` errors propagate."""
        stats = self.stats
        stats.datagrams += 1
        n = len(data)
        if n > RTP_HEADER_SIZE and data[0] == 0x80:
            # Fast path: version 2, no padding, extension or CSRCs.
            pt = data[1] & 0x7F
            seq, ssrc = _SEQ_SSRC.unpack_from(data, 2)
            payload = memoryview(data)[RTP_HEADER_SIZE:]
        else:
            try:
                packet = parse_rtp(data)
            except MalformedRtp:
                stats.malformed += 1
                return
            pt, seq, ssrc, payload = (
                packet.payload_type, packet.sequence, packet.ssrc, packet.payload
            )
        if ssrc != self.ssrc and self.ssrc is not None:
            stats.foreign += 1
            return
        if self.payload_type is None:
            self.payload_type = pt  # only before the lock: the first packet's type
        if pt != self.payload_type:
            stats.other_payload_type += 1
            if self.ssrc is None:
                return  # never lock on a non-audio packet
            payload = None  # it still takes its sequence number: not a loss
        elif len(payload) & 1:
            stats.malformed += 1  # half a sample: not 16-bit PCM
            return
        if self.ssrc is None:
            self.ssrc = ssrc
            self._next = seq
        self._sequence(seq, payload)

    def _sequence(self, seq: int, payload: memoryview | None) -> None:
        nxt = self._next
        delta = (seq - nxt) & 0xFFFF  # type: ignore[operator]
        if delta == 0:  # in order: the common case
            if self._held:
                self.stats.reordered += 1  # it filled a hole the held packets were waiting on
                self._emit(payload)
                self._next = (seq + 1) & 0xFFFF
                self._drain()
            else:
                self._emit(payload)
                self._next = (seq + 1) & 0xFFFF
            self._bad_seq = self._bad_payload = None
            return
        if delta < 0x8000:  # ahead: delta packets missing so far
            if delta > self.max_dropout:
                self._probation(seq, payload)
                return
            self._bad_seq = self._bad_payload = None
            if seq in self._held:
                self.stats.duplicates += 1
                return
            self._held[seq] = payload
            if len(self._held) > self.reorder_window:
                self._skip_gap()
            return
        behind = 0x10000 - delta
        if behind > self.max_misorder:
            self._probation(seq, payload)
            return
        if seq in self._lost:
            self._lost.discard(seq)
            self.stats.late += 1
        else:
            self.stats.duplicates += 1

    def _probation(self, seq: int, payload: memoryview | None) -> None:
        """A sequence number far off: junk, or the sender restarted. Two in a row: restart."""
        if self._bad_seq == seq:
            self.flush()
            self.stats.resyncs += 1
            self.stats.out_of_range -= 1  # the first packet of the new run is audio after all
            self._lost.clear()
            self._lost_order.clear()
            first, self._bad_payload, self._bad_seq = self._bad_payload, None, None
            self._next = (seq - 1) & 0xFFFF
            self._sequence(self._next, first)
            self._sequence(seq, payload)
            return
        self._bad_seq = (seq + 1) & 0xFFFF
        self._bad_payload = payload
        self.stats.out_of_range += 1

    # -- output -------------------------------------------------------------------------------

    def _emit(self, payload: memoryview | None) -> None:
        if payload is None:
            return
        samples = array("h")
        samples.frombytes(payload)
        samples.byteswap()  # big-endian on the wire → little-endian in the file, any host
        self._write(samples.tobytes())
        stats = self.stats
        stats.packets += 1
        stats.bytes += len(payload)
        self._frame = len(payload)

    def _drain(self) -> None:
        held = self._held
        nxt = self._next
        while nxt in held:
            self._emit(held.pop(nxt))
            nxt = (nxt + 1) & 0xFFFF
        self._next = nxt

    def _skip_gap(self) -> None:
        """Give up on the packets before the earliest held one: silence in their place."""
        nxt = self._next
        first = min(self._held, key=lambda s: (s - nxt) & 0xFFFF)
        missing = (first - nxt) & 0xFFFF
        silence = missing * self._frame
        stats = self.stats
        stats.lost_packets += missing
        stats.lost_bytes += silence
        chunk = bytes(min(silence, 64 * 1024))
        while silence > 0:
            take = min(silence, len(chunk))
            self._write(chunk if take == len(chunk) else chunk[:take])
            silence -= take
        # Remember the most recent ones, to tell a late packet from a duplicate.
        for s in range(max(0, missing - self.max_misorder), missing):
            self._remember_lost((nxt + s) & 0xFFFF)
        self._next = first
        self._drain()

    def _remember_lost(self, seq: int) -> None:
        self._lost.add(seq)
        self._lost_order.append(seq)
        if len(self._lost_order) > self.max_misorder:
            self._lost.discard(self._lost_order.popleft())

    def flush(self) -> None:
        """End of stream: write every held packet, silence for the holes between them."""
        while self._held:
            self._skip_gap()

    @property
    def held(self) -> int:
        return len(self._held)
