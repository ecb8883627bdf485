"""Test phones: sipp user agents that take calls from Asterisk.

    async with Phone(5081, "answer", tone_hz=440, answer_after_ms=500) as agent:
        ...  # originate PJSIP/agent1
        await agent.wait_for("answered")
    assert agent.calls_answered == 1

Roles (scenario templates in tests/sipp/):
  answer        180, rings answer_after_ms, 200 with PCMU, streams a sine tone
                after the ACK; waits for BYE, or sends BYE after hangup_after_ms.
                A CANCEL while ringing ends the call (200 + 487).
  busy          180 then 486 Busy Here
  unavailable   480 Temporarily Unavailable
  ring_forever  180, then only a CANCEL ends the call (200 + 487)
  answer_press  as answer, but offers telephone-event (PT 101) and, press_after_ms
                after the ACK, presses the key `press` as RFC 2833 DTMF (sipp's
                dtmf_2833_<key>.pcap) instead of streaming a tone
One sipp process takes any number of calls (each INVITE starts the scenario).

RegisteringPhone is an "answer" phone that first registers as agentN (username/password, as a
real phone does with the callengine-agent templates): Asterisk learns its contact from the
REGISTER and sends its calls there; `unregister()` ends it (REGISTER Expires: 0).

Conventions: agents agentN listen on 5080+N and play 440 Hz; the "PSTN" (trunk
endpoint pstn, visitors PJSIP/+<e164>@pstn) listens on 5070 and plays 1000 Hz.

A second Asterisk node (tests/conftest.py second_asterisk, on 127.0.0.2) reaches phones on its
own address with the same ports: `Phone(agent_port(1), host="127.0.0.2")` is agent1's phone
there, `Phone(PSTN_PORT, host="127.0.0.2")` its "PSTN", and a RegisteringPhone with
host="127.0.0.2" registers to 127.0.0.2:5060. The default host is 127.0.0.1 (the first node).

Counters come from <log> lines the scenarios write (sipp -trace_logs), read
live, so a test can wait for "answered" while the call is still up.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "sipp"
ROLES = ("answer", "busy", "unavailable", "ring_forever", "answer_press")
DTMF_PCAPS = Path("/usr/share/sip-tester")  # sip-tester's dtmf_2833_<0-9|star|pound>.pcap

AGENT_TONE_HZ = 440
VISITOR_TONE_HZ = 1000
PSTN_PORT = 5070


def agent_port(n: int) -> int:
    """SIP port of the test phone behind endpoint agentN (tests/asterisk-test/pjsip_test.conf)."""
    return 5080 + n


# --- tone files: made once per test session ---------------------------------

_tone_dir: Path | None = None


def tone_file(hz: int, seconds: int = 30) -> Path:
    """A u-law 8 kHz mono sine file for sipp's rtp_stream (looped by sipp)."""
    global _tone_dir
    if _tone_dir is None:
        _tone_dir = Path(tempfile.mkdtemp(prefix="callengine-tones-"))
        atexit.register(shutil.rmtree, _tone_dir, True)
    path = _tone_dir / f"tone{hz}.ulaw"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        subprocess.run(
            ["sox", "-n", "-r", "8000", "-c", "1", "-t", "ul", str(tmp),
             "synth", str(seconds), "sine", str(hz), "vol", "0.5"],
            check=True, capture_output=True,
        )
        tmp.rename(path)
    return path


# --- ports: every sipp needs its own control and media ports -----------------

# Below the kernel's ephemeral range (32768+) and away from Asterisk's RTP
# (10000-10999). The start offset varies per process so two test runs (or
# xdist workers) rarely probe the same ports.
_CTRL_RANGE = (20000, 24999)
_MEDIA_RANGE = (25000, 29999)
_MEDIA_BLOCK = 4  # sipp binds media_port and media_port + 2
_next = {"ctrl": (os.getpid() * 7) % 5000, "media": (os.getpid() * 28) % 5000}


def _udp_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _pick(kind: str, lo: int, hi: int, block: int, host: str) -> int:
    span = hi - lo + 1
    for _ in range(span // block):
        port = lo + (_next[kind] // block * block) % span
        _next[kind] += block
        if all(_udp_free(port + i, host) for i in range(block)):
            return port
    raise RuntimeError(f"no free UDP ports in {lo}-{hi}")


def _proc_net_ipv4(host: str) -> str:
    """An IPv4 address as /proc/net/udp writes it (the 32-bit value in host byte order)."""
    return f"{struct.unpack('=I', socket.inet_aton(host))[0]:08X}"


def udp_bound_addresses(port: int) -> set[str]:
    """The IPv4 addresses some socket has bound UDP `port` to ("0.0.0.0": the wildcard)."""
    suffix = f":{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {socket.inet_ntoa(struct.pack("=I", int(local[:8], 16)))
            for local in (line.split()[1] for line in lines) if local.endswith(suffix)}


def _udp_bound(port: int, host: str | None = None) -> bool:
    """Whether some socket is bound to UDP `port`: on any address, or (with `host`) on one a
    socket bound to `host` would collide with (`host` itself or the wildcard)."""
    suffix = f":{port:04X}"
    wanted = None
    if host is not None:
        wanted = {f"{_proc_net_ipv4(host)}{suffix}", f"00000000{suffix}", f"{'0' * 32}{suffix}"}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            if local.endswith(suffix) and (wanted is None or local in wanted):
                return True
    return False


# --- the phone ---------------------------------------------------------------

@dataclass
class Call:
    call_id: str
    to: str                      # the To header Asterisk sent
    outcomes: list[str] = field(default_factory=list)

    @property
    def dialled(self) -> str:
        """User part of the To URI: "+4915112345678" for PJSIP/+4915112345678@pstn."""
        m = re.search(r"sips?:([^@>;]+)@", self.to)
        return m.group(1) if m else ""


_KINDS = {
    "received": "CALL",
    "answered": "ANSWERED",
    "rejected": "REJECTED",
    "cancelled": "CANCELLED",
    "bye_received": "BYE_RECEIVED",
    "bye_sent": "BYE_SENT",
    "pressed": "PRESSED",
    "registered": "REGISTERED",
}


class _SippExited(RuntimeError):
    pass


class Phone:
    """A sipp UAS on `host`:`port` (host 127.0.0.1 unless given: the first Asterisk node's
    phones; 127.0.0.2 for the second node's) playing `role`. Use as (async) context manager."""

    def __init__(
        self,
        port: int,
        role: str = "answer",
        *,
        tone_hz: int = AGENT_TONE_HZ,
        answer_after_ms: int = 500,
        hangup_after_ms: int | None = None,
        press: str = "1",
        press_after_ms: int = 2500,
        host: str = "127.0.0.1",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if shutil.which("sipp") is None:
            raise RuntimeError("sipp is missing: apt-get install sip-tester")
        self.port = port
        self.role = role
        self.tone_hz = tone_hz
        self.answer_after_ms = answer_after_ms
        self.hangup_after_ms = hangup_after_ms
        self.press, self.press_after_ms = press, press_after_ms
        self.host = host
        self.ctrl_port = 0
        self.media_port = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    # ---- rendering and process control

    def _render(self) -> Path:
        assert self._dir is not None
        text = (SCENARIOS / f"{self.role}.xml").read_text()
        bye_wait = ""
        if self.hangup_after_ms is not None:
            bye_wait = f'timeout="{max(1, int(self.hangup_after_ms))}" ontimeout="hangup"'
        values = {
            # sipp treats timeout="0" as "no timeout": 1 ms is "answer at once".
            "ANSWER_AFTER_MS": str(max(1, int(self.answer_after_ms))),
            "TONE_FILE": str(tone_file(self.tone_hz)) if self.role == "answer" else "",
            "BYE_WAIT": bye_wait,
            "DTMF_PCAP": str(DTMF_PCAPS / "dtmf_2833_{}.pcap".format(
                {"*": "star", "#": "pound"}.get(self.press, self.press))),
            "DTMF_AFTER_MS": str(max(1, int(self.press_after_ms))),
        }
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        left = re.findall(r"\{\{[A-Z_]+\}\}", text)
        if left:
            raise RuntimeError(f"unfilled fields in {self.role}.xml: {left}")
        path = self._dir / f"{self.role}.xml"
        path.write_text(text)
        return path

    def _sipp_args(self, scenario: Path) -> list[str]:
        return ["-sf", str(scenario)]

    def _launch(self) -> None:
        if _udp_bound(self.port, self.host):
            raise RuntimeError(f"UDP port {self.host}:{self.port} is already in use: another phone still running?")
        self._dir = Path(tempfile.mkdtemp(prefix=f"callengine-phone-{self.port}-"))
        atexit.register(shutil.rmtree, self._dir, True)
        scenario = self._render()
        self.ctrl_port = _pick("ctrl", *_CTRL_RANGE, 1, "0.0.0.0")
        self.media_port = _pick("media", *_MEDIA_RANGE, _MEDIA_BLOCK, self.host)
        cmd = [
            "sipp", *self._sipp_args(scenario),
            "-i", self.host, "-p", str(self.port), "-mi", self.host,
            "-cp", str(self.ctrl_port), "-mp", str(self.media_port),
            "-nostdin", "-aa",
            "-trace_logs", "-log_file", str(self.log_path),
            "-trace_err", "-error_file", str(self._dir / "errors.log"),
        ]
        self._proc = subprocess.Popen(
            cmd, cwd=self._dir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(self._dir / "stderr.log", "wb"),
            start_new_session=True,  # a Ctrl-C in pytest must not kill it mid-call
        )

    def _check_started(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise _SippExited(
                f"sipp for port {self.port} exited with {self._proc.returncode}: {self.stderr()[-2000:]}"
            )
        return _udp_bound(self.port, self.host) and _udp_bound(self.ctrl_port)

    # Another process may grab a probed control/media port before sipp binds it:
    # sipp then exits at once, and a new pair of ports is tried.
    _ATTEMPTS = 3

    def start(self) -> "Phone":
        for attempt in range(self._ATTEMPTS):
            self._launch()
            deadline = time.monotonic() + 5
            try:
                while not self._check_started():
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"sipp did not listen on {self.host}:{self.port} within 5 s")
                    time.sleep(0.02)
                return self
            except _SippExited:
                if attempt == self._ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def astart(self) -> "Phone":
        """start() off the event loop (it polls with sleeps for up to 5 s per attempt)."""
        return await asyncio.to_thread(self.start)

    def stop(self) -> None:
        """Stop sipp (calls still up are dropped without BYE). Counters stay readable."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(3)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(3)

    def close(self) -> None:
        """Stop and remove the temp dir (call after reading the counters)."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Phone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def __aenter__(self) -> "Phone":
        return await self.astart()

    async def __aexit__(self, *exc) -> None:
        self.stop()

    # ---- what the phone saw

    @property
    def log_path(self) -> Path:
        assert self._dir is not None, "phone not started"
        return self._dir / "calls.log"

    def _lines(self) -> list[tuple[str, str, str]]:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.strip().split(" ", 2)
            if len(parts) >= 2:
                out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
        return out

    def calls(self) -> list[Call]:
        """Calls in arrival order, each with what happened to it."""
        by_id: dict[str, Call] = {}
        for kind, call_id, rest in self._lines():
            if kind == "CALL":
                by_id[call_id] = Call(call_id, rest.strip())
            elif call_id in by_id:
                by_id[call_id].outcomes.append(kind)
        return list(by_id.values())

    def count(self, kind: str) -> int:
        """kind: received, answered, rejected, cancelled, bye_received, bye_sent."""
        tag = _KINDS[kind]
        return sum(1 for k, _, _ in self._lines() if k == tag)

    calls_received = property(lambda self: self.count("received"))
    calls_answered = property(lambda self: self.count("answered"))
    calls_rejected = property(lambda self: self.count("rejected"))
    calls_cancelled = property(lambda self: self.count("cancelled"))
    byes_received = property(lambda self: self.count("bye_received"))
    byes_sent = property(lambda self: self.count("bye_sent"))

    def counters(self) -> dict[str, int]:
        return {kind: self.count(kind) for kind in _KINDS}

    async def wait_for(self, kind: str, n: int = 1, timeout: float = 10) -> None:
        """Wait until `kind` (see count) happened at least n times."""
        deadline = time.monotonic() + timeout
        while self.count(kind) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"phone {self.port}: {kind} {self.count(kind)}/{n} after {timeout}s; "
                    f"counters {self.counters()}; errors: {self.errors()[-1000:]}"
                )
            await asyncio.sleep(0.02)

    def errors(self) -> str:
        """sipp's record of unexpected messages and failed calls ('' if none).

        Leaves out the "receive timeout ... jumping to label" lines: the answer
        scenario uses receive timeouts on purpose (ring time, hangup_after_ms).
        """
        if self._dir is None:
            return ""
        try:
            text = (self._dir / "errors.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        # sipp writes some entries without a newline: split on the timestamps.
        entries = re.split(r"(?=\d{4}-\d\d-\d\d\t)", text)
        keep = [e.strip() for e in entries
                if e.strip() and "jumping to label" not in e
                and not e.startswith("The following events occurred")]
        return "\n".join(keep)

    def stderr(self) -> str:
        if self._dir is None:
            return ""
        try:
            return (self._dir / "stderr.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        return f"Phone({self.port}, {self.role!r}, counters={self.counters() if self._dir else None})"


class RegisteringPhone(Phone):
    """An answering phone that registers to Asterisk (`registrar`, default <host>:5060, i.e.
    127.0.0.1:5060) as `user` with `password` from its own port, and takes the calls sent to
    that contact (sipp -oocsf)."""

    def __init__(self, port: int, user: str, password: str, *, registrar: str | None = None,
                 **kw) -> None:
        super().__init__(port, "answer", **kw)
        self.user, self.password = user, password
        self.registrar = registrar or f"{self.host}:5060"

    def _scenario(self, expires: int, stay_ms: int) -> Path:
        assert self._dir is not None
        text = (SCENARIOS / "register.xml").read_text()
        for key, value in (("USER", self.user), ("PASSWORD", self.password),
                           ("EXPIRES", str(expires)), ("STAY_MS", str(stay_ms))):
            text = text.replace("{{" + key + "}}", value)
        path = self._dir / f"register-{expires}.xml"
        path.write_text(text)
        return path

    def _sipp_args(self, scenario: Path) -> list[str]:
        # the UAC scenario registers once (-m 1), the answer role takes the calls out of it
        return [self.registrar, "-sf", str(self._scenario(3600, 3_600_000)),
                "-oocsf", str(scenario), "-m", "1"]

    async def registered(self, timeout: float = 10) -> None:
        await self.wait_for("registered", 1, timeout)

    def unregister(self) -> None:
        """Stop taking calls and take the registration back (REGISTER Expires: 0 from the
        same port, as the phone would)."""
        self.stop()
        assert self._dir is not None
        subprocess.run(
            ["sipp", self.registrar, "-sf", str(self._scenario(0, 1)), "-m", "1",
             "-i", self.host, "-p", str(self.port), "-cp", str(self.ctrl_port),
             "-mp", str(self.media_port), "-nostdin", "-timeout", "10", "-timeout_error"],
            check=True, capture_output=True, timeout=15, cwd=self._dir)



def dial_feature_code(user: str, password: str, exten: str, *, port: int,
                      timeout: float = 15, host: str = "127.0.0.1") -> None:
    """A phone registered as `user` dials `exten` (e.g. "*45") through Asterisk and listens
    until Asterisk hangs up; raises if the call does not go so (sipp's exit status).
    `host`: the phone's address, and the Asterisk node's (<host>:5060)."""
    folder = Path(tempfile.mkdtemp(prefix="callengine-dial-"))
    try:
        text = (SCENARIOS / "dial.xml").read_text()
        for key, value in (("USER", user), ("PASSWORD", password), ("EXTEN", exten)):
            text = text.replace("{{" + key + "}}", value)
        (folder / "dial.xml").write_text(text)
        ctrl = _pick("ctrl", *_CTRL_RANGE, 1, "0.0.0.0")
        media = _pick("media", *_MEDIA_RANGE, _MEDIA_BLOCK, host)
        proc = subprocess.run(
            ["sipp", f"{host}:5060", "-sf", str(folder / "dial.xml"), "-m", "1",
             "-i", host, "-p", str(port), "-cp", str(ctrl), "-mp", str(media),
             "-nostdin", "-timeout", str(int(timeout)), "-timeout_error",
             "-trace_err", "-error_file", str(folder / "errors.log")],
            capture_output=True, timeout=timeout + 5, cwd=folder)
        if proc.returncode != 0:
            errors = (folder / "errors.log").read_text(errors="replace") \
                if (folder / "errors.log").exists() else ""
            raise RuntimeError(f"dialling {exten} as {user} failed ({proc.returncode}): {errors[-1500:]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
