"""Test callers who dial a queue: one sipp UAC per caller (tests/sipp/queue_caller.xml).

    async with QueueCaller("support", "+48600100200", keys=[2000, "1", 3000, "1"]) as a:
        await a.wait_for("answered")     # Asterisk answered: the caller waits in the queue
        await a.wait_for("bye_received")

`keys`: what the caller does after the ACK, in order: an int pauses that many ms, a digit
sends it as RFC 2833 DTMF (sipp's dtmf_2833_<digit>.pcap). `hold_ms`: hang up after that long
waiting for Asterisk's BYE (None: wait for it as long as the scenario lives).
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.phones import _CTRL_RANGE, _MEDIA_BLOCK, _MEDIA_RANGE, SCENARIOS, _pick

DTMF_PCAP = "/usr/share/sip-tester/dtmf_2833_{digit}.pcap"
_TAGS = {"answered": "ANSWERED", "bye_received": "BYE_RECEIVED", "bye_sent": "BYE_SENT"}


def _keys_xml(keys: list[int | str], directory: Path) -> str:
    steps = []
    for index, key in enumerate(keys):
        if isinstance(key, int):
            steps.append(f'  <pause milliseconds="{key}"/>')
        else:
            pcap = shifted_dtmf(key, index, directory)
            steps.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
    return "\n".join(steps)


def shifted_dtmf(digit: str, index: int, directory: Path) -> Path:
    """sip-tester's DTMF pcap of `digit`, its RTP sequence numbers and timestamp moved on by
    `index` steps. Every one of those pcaps carries the same ones, and Asterisk takes an event
    with the timestamp of the last one for its retransmission: a second key on a call was
    dropped (seen every time) until each key got its own."""
    data = bytearray(Path(DTMF_PCAP.format(digit=digit)).read_bytes())
    offset = 24  # the pcap file header; then per packet a 16-byte header and the frame
    while offset < len(data):
        length, = struct.unpack_from("<I", data, offset + 8)
        rtp = offset + 16 + 42  # Ethernet 14 + IPv4 20 + UDP 8 bytes before the RTP header
        seq, stamp = struct.unpack_from("!HI", data, rtp + 2)
        struct.pack_into("!HI", data, rtp + 2, (seq + 100 * index) % 65536,
                         (stamp + 16000 * index) % 2**32)
        offset += 16 + length
    path = directory / f"dtmf-{index}-{digit}.pcap"
    path.write_bytes(bytes(data))
    return path


class QueueCaller:
    def __init__(self, queue: str, number: str, *, keys: list[int | str] = (),
                 hold_ms: int | None = None, port: int = 0) -> None:
        self.queue, self.number, self.keys, self.hold_ms = queue, number, list(keys), hold_ms
        self.port = port
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    def start(self) -> "QueueCaller":
        self._dir = Path(tempfile.mkdtemp(prefix="callengine-queue-caller-"))
        atexit.register(shutil.rmtree, self._dir, True)
        bye_wait = ("" if self.hold_ms is None
                    else f'timeout="{self.hold_ms}" ontimeout="hangup"')
        text = (SCENARIOS / "queue_caller.xml").read_text()
        for key, value in {"QUEUE": self.queue, "NUMBER": self.number,
                           "KEYS": _keys_xml(self.keys, self._dir), "BYE_WAIT": bye_wait}.items():
            text = text.replace("{{" + key + "}}", value)
        scenario = self._dir / "queue_caller.xml"
        scenario.write_text(text)
        port = self.port or _pick("ctrl", *_CTRL_RANGE, 1, "127.0.0.1")
        ctrl = _pick("ctrl", *_CTRL_RANGE, 1, "0.0.0.0")
        media = _pick("media", *_MEDIA_RANGE, _MEDIA_BLOCK, "127.0.0.1")
        self._proc = subprocess.Popen(
            ["sipp", "127.0.0.1:5060", "-sf", str(scenario), "-m", "1",
             "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media),
             "-cp", str(ctrl), "-nostdin", "-trace_logs", "-log_file", str(self.log_path),
             "-trace_err", "-error_file", str(self._dir / "errors.log")],
            cwd=self._dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self._dir / "stderr.log", "wb"), start_new_session=True)
        return self

    @property
    def log_path(self) -> Path:
        assert self._dir is not None, "caller not started"
        return self._dir / "calls.log"

    def count(self, kind: str) -> int:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return 0
        return sum(1 for line in lines if line.startswith(_TAGS[kind] + " "))

    async def wait_for(self, kind: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.count(kind) < 1:
            if self._proc is not None and self._proc.poll() is not None and self.count(kind) < 1:
                raise RuntimeError(f"caller {self.queue}: sipp exited ({self._proc.returncode})"
                                   f" before {kind}: {self.errors()[-1500:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"caller: no {kind} within {timeout}s: {self.errors()[-1500:]}")
            await asyncio.sleep(0.02)

    def errors(self) -> str:
        if self._dir is None:
            return ""
        out = []
        for name in ("errors.log", "stderr.log"):
            try:
                out.append((self._dir / name).read_text(errors="replace"))
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(3)

    async def __aenter__(self) -> "QueueCaller":
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
