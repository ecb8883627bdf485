"""The RTP route: ARI externalMedia into the call's bridge, RTP over UDP to us, encrypted on arrival.

For an Asterisk on another host (the FIFO route needs a shared filesystem). The tap asks
Asterisk for an externalMedia channel (`UnicastRTP/…`, format slin or slin16: the sink's
sample rate) that sends to a UDP port we bound, and adds it to the call's mixing bridge:
Asterisk then mixes everyone else in the bridge (both parties) into one mono stream for it. Nothing is written to disk on either
side except the encrypted recording.

Two layers, kept apart so the stream logic is testable without sockets or Asterisk:

* `parse_rtp` / `RtpReceiver`: pure. Datagrams in, little-endian PCM out through a callback.
  Checks the RTP header (version 2, CSRCs, extension, padding), locks on the first audio
  packet's SSRC, tracks the 16-bit sequence number across wrap-around, holds a few packets
  to repair reordering, fills gaps with silence (counted as lost), drops duplicates and
  packets that arrive after their slot was written (counted as late).
* `RtpTap`: the asyncio datagram endpoint and the ARI calls (`recorder.Tap`).

Wire format (measured on Asterisk 22, see docs/recording-taps.md): one packet every 20 ms;
slin16: payload type 118, 640-byte payloads (320 samples); slin (8 kHz): payload type 10,
320-byte payloads (160 samples). The samples are **big-endian** on the wire (RFC 3551 L16);
recordings store little-endian, so every payload is byte-swapped.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import socket
import struct
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from callengine.asterisk.ari import AriClient, AriError
from callengine.audio import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE, check_sample_rate
from callengine.recorder import RecordingSink, RecordingSummary, TapReport

log = logging.getLogger(__name__)

__all__ = [
    "MalformedRtp",
    "RtpPacket",
    "RtpReceiver",
    "RtpStats",
    "RtpTap",
    "RtpTapError",
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
MIN_RECEIVED_FRACTION = 0.9  # below this share of the expected bytes, the recording is a problem

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


# ---- the asyncio transport and the ARI side ------------------------------------------------


class RtpTapError(RuntimeError):
    """The tap could not be set up (no free port, ARI refused, the bridge is gone)."""


class _RtpProtocol(asyncio.DatagramProtocol):
    """Hands datagrams to the receiver. Runs in the event loop for every packet: keep it lean.

    The source address is latched with the SSRC (on the first packet the receiver accepts);
    datagrams from anywhere else are dropped before parsing."""

    def __init__(self, receiver: RtpReceiver):
        self.receiver = receiver
        self._push = receiver.push
        self.source: tuple | None = None
        self.failure: BaseException | None = None
        self.socket_errors = 0
        self.closed = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if addr != self.source:
            if self.source is not None:
                self.receiver.stats.foreign += 1
                return
            if self.failure is None:
                self._guarded_push(data)
                if self.receiver.ssrc is not None:
                    self.source = addr
            return
        if self.failure is None:
            self._guarded_push(data)

    def _guarded_push(self, data: bytes) -> None:
        try:
            self._push(data)
        except Exception as exc:  # the sink failed (disk full, I/O error): stop feeding it
            self.failure = exc
            log.error("RTP tap: writing the recording failed: %s", exc)

    def error_received(self, exc: Exception) -> None:
        self.socket_errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host in ("", "*")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RtpTap:
    """`recorder.Tap` over ARI externalMedia (RTP/UDP, slin or slin16 as the sink's rate) for
    a local or remote Asterisk.

    bind_host: where our UDP socket listens. advertise_host: the address Asterisk sends to
    (default bind_host; required when binding a wildcard address). port_range: inclusive; one
    port per recording; open it to the Asterisk host only (the tap also latches on the first
    accepted packet's source address and SSRC).
    """

    # Where the next port search starts: spread over the range so concurrent taps in one
    # process rarely probe the same busy ports.
    _cursor = random.randrange(1 << 16)

    def __init__(
        self,
        ari: AriClient,
        bind_host: str = "127.0.0.1",
        advertise_host: str | None = None,
        port_range: tuple[int, int] = (40000, 40999),
        *,
        reorder_window: int = 4,
        add_timeout: float = 3.0,
        drain_s: float = 0.2,
        receive_buffer: int = 1 << 20,
    ):
        if advertise_host is None:
            if _is_wildcard(bind_host):
                raise ValueError(f"bind_host {bind_host!r} is a wildcard: give advertise_host")
            advertise_host = bind_host
        lo, hi = port_range
        if not 0 < lo <= hi < 65536:
            raise ValueError(f"bad port range {port_range}")
        self.ari = ari
        self.bind_host = bind_host
        self.advertise_host = advertise_host
        self.port_range = (lo, hi)
        self.add_timeout = add_timeout
        self.drain_s = drain_s
        self.receive_buffer = receive_buffer
        self.receiver: RtpReceiver | None = None
        self.port: int | None = None
        self.tap_channel_id: str | None = None
        self.asterisk_address: str | None = None  # UNICASTRTP_LOCAL_ADDRESS/PORT: the sender
        self.asterisk_port: int | None = None
        self.add_attempts = 0  # addChannel calls it took (422 retries + 1)
        self._reorder_window = reorder_window
        self._sink: RecordingSink | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _RtpProtocol | None = None
        self._channel_up = False  # we created the externalMedia channel and not hung it up
        self._start_problem: str | None = None
        self._report: TapReport | None = None

    @property
    def stats(self) -> RtpStats:
        return self.receiver.stats if self.receiver else RtpStats()

    # -- start --------------------------------------------------------------------------------

    async def start(
        self,
        sink: RecordingSink,
        *,
        channel_id: str,
        channel_name: str,
        bridge_id: str,
        tap_channel_id: str,
    ) -> None:
        if self._sink is not None:
            raise RuntimeError("an RtpTap records one call: make a new one")
        self._sink = sink
        self.tap_channel_id = tap_channel_id
        fmt = wire_format(sink.sample_rate)
        self.receiver = RtpReceiver(sink.feed, sample_rate=sink.sample_rate,
                                    reorder_window=self._reorder_window)
        try:
            await self._bind()
            external_host = _hostport(self.advertise_host, self.port)  # type: ignore[arg-type]
            # If the request fails midway the channel may exist all the same: teardown
            # hangs it up regardless (a 404 there is fine).
            self._channel_up = True
            media = await self.ari.external_media(tap_channel_id, external_host,
                                                  format=fmt.name)
            self.asterisk_address, self.asterisk_port = media.local_address, media.local_port
            await self._add_to_bridge(bridge_id, tap_channel_id)
        except BaseException as exc:
            self._start_problem = f"tap not started: {exc}"
            await self._teardown(timeout=2.0)
            if isinstance(exc, (AriError, OSError)):
                raise RtpTapError(self._start_problem) from exc
            raise
        # No channel name here: a trunk channel's name may carry the visitor's number.
        log.info(
            "RTP tap %s in bridge %s: %s ← %s:%s (%d addChannel attempts)",
            tap_channel_id, bridge_id, external_host, self.asterisk_address,
            self.asterisk_port, self.add_attempts,
        )

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self.bind_host, None, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, address = infos[0]
        lo, hi = self.port_range
        span = hi - lo + 1
        start = RtpTap._cursor
        RtpTap._cursor += 1
        for i in range(span):
            port = lo + (start + i) % span
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
                except OSError:
                    pass  # capped by net.core.rmem_max; the default still holds ~1.5 s
                sock.bind((address[0], port, *address[2:]))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            sock.setblocking(False)
            RtpTap._cursor = start + i + 1
            self._transport, self._protocol = await loop.create_datagram_endpoint(
                lambda: _RtpProtocol(self.receiver), sock=sock  # type: ignore[arg-type]
            )
            self.port = port
            return
        raise RtpTapError(f"no free UDP port in {lo}-{hi} on {self.bind_host}")

    async def _add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        """addChannel, retrying 422 "Channel not in Stasis application": right after
        externalMedia the channel may not have entered the app yet (measured: 2 runs in 4)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.add_timeout
        pause = 0.02
        while True:
            self.add_attempts += 1
            try:
                await self.ari.add_to_bridge(bridge_id, [channel_id])
                return
            except AriError as exc:
                if exc.status != 422 or loop.time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    # -- finish -------------------------------------------------------------------------------

    async def finish(self, *, talk_s: float, timeout: float = 5.0) -> TapReport:
        if self._report is not None:
            return self._report
        if self._sink is None:
            raise RuntimeError("finish() before start()")
        problems: list[str] = [self._start_problem] if self._start_problem else []
        problems += await self._teardown(timeout=timeout)
        receiver = self.receiver
        assert receiver is not None
        failure = self._protocol.failure if self._protocol else None
        summary: RecordingSummary | None = None
        if failure is None:
            try:
                receiver.flush()
                summary = self._sink.close()
            except Exception as exc:
                failure = exc
        if failure is not None:
            problems.append(f"writing the recording failed: {failure}")
            summary = self._sink.abort()
        assert summary is not None
        stats = receiver.stats
        expected = max(0, round(talk_s * self._sink.bytes_per_second))
        if stats.bytes < MIN_RECEIVED_FRACTION * expected:
            got = f"{stats.bytes / expected:.0%}" if expected else "?"
            problems.append(
                f"received {stats.bytes} of {expected} expected audio bytes ({got}); "
                + _stats_line(stats)
            )
        self._report = TapReport(
            summary=summary,
            expected_bytes=expected,
            lost_bytes=stats.lost_bytes,
            problem="; ".join(problems) or None,
        )
        if stats.lost_packets or stats.late or stats.foreign or stats.malformed:
            log.warning("RTP tap %s: %s", self.tap_channel_id, _stats_line(stats))
        return self._report

    async def _teardown(self, timeout: float) -> list[str]:
        """Hang up our externalMedia channel, let in-flight packets land, close the socket."""
        problems = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._channel_up and self.tap_channel_id:
            try:
                await asyncio.wait_for(self.ari.hangup(self.tap_channel_id), timeout)
            except AriError as exc:
                if exc.status != 404:  # already gone (the engine or Asterisk hung it up): fine
                    problems.append(f"hanging up the tap channel failed: {exc}")
            except asyncio.TimeoutError:
                problems.append(f"hanging up the tap channel timed out after {timeout} s")
            self._channel_up = False
        protocol, transport = self._protocol, self._transport
        if transport is not None and protocol is not None:
            # Packets Asterisk sent before the hangup may still be on the way (remote host):
            # wait until 60 ms pass without one, at most drain_s.
            stop = min(loop.time() + self.drain_s, deadline)
            seen = protocol.receiver.stats.datagrams
            while loop.time() < stop:
                await asyncio.sleep(0.06)
                now = protocol.receiver.stats.datagrams
                if now == seen:
                    break
                seen = now
            transport.close()  # the socket closes on the loop's next turn: wait for it
            self._transport = None
            try:
                await asyncio.wait_for(asyncio.shield(protocol.closed), 1.0)
            except asyncio.TimeoutError:
                pass
            if protocol.socket_errors:
                log.info("RTP tap %s: %d socket errors", self.tap_channel_id, protocol.socket_errors)
        return problems


def _stats_line(stats: RtpStats) -> str:
    return ", ".join(f"{k} {v}" for k, v in stats.as_dict().items() if v)
