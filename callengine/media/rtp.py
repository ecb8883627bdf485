"""The RTP route: ARI externalMedia into the call's bridge, RTP over UDP to us, encrypted on arrival.

For an Asterisk on another host (the FIFO route needs a shared filesystem). The tap asks
Asterisk for an externalMedia channel (`UnicastRTP/…`, format slin or slin16: the sink's
sample rate) that sends to a UDP port we bound, and adds it to the call's mixing bridge:
Asterisk then mixes everyone else in the bridge (both parties) into one mono stream for it.
Nothing is written to disk on either side except the encrypted recording.

Here: `RtpTap`, the asyncio datagram endpoint and the calls to the ExternalMedia port
(`recorder.Tap`); the stream logic, testable without sockets or Asterisk, is in rtp_stream.py.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import socket

from callengine.media.rtp_stream import RtpReceiver, RtpStats, wire_format
from callengine.recorder import RecordingSink, RecordingSummary, TapReport
from callengine.telephony import ExternalMedia, Gone, TelephonyError

log = logging.getLogger(__name__)

__all__ = ["RtpTap", "RtpTapError"]

MIN_RECEIVED_FRACTION = 0.9  # below this share of the expected bytes, the recording is a problem


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
        ari: ExternalMedia,
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
        self.add_attempts = 0  # addChannel requests it took (NotReady retries + 1)
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
            # hangs it up regardless (Gone there is fine).
            self._channel_up = True
            media = await self.ari.external_media(tap_channel_id, external_host,
                                                  format=fmt.name, near=channel_id)
            self.asterisk_address, self.asterisk_port = media.local_address, media.local_port
            # Right after externalMedia the channel may not have entered the app yet
            # (measured: 2 runs in 4): the port retries that for at most add_timeout.
            self.add_attempts = await self.ari.add_to_bridge(bridge_id, [tap_channel_id],
                                                             timeout=self.add_timeout)
        except BaseException as exc:
            self._start_problem = f"tap not started: {exc}"
            await self._teardown(timeout=2.0)
            if isinstance(exc, (TelephonyError, OSError)):
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
            except Gone:
                pass  # already gone (the engine or Asterisk hung it up): fine
            except TelephonyError as exc:
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
