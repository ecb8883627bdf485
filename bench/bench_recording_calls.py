"""What does recording cost on real calls through Asterisk: the peers' way vs the engine's?

    .venv/bin/python bench/bench_recording_calls.py --calls 50 --reps 3 --window 20

N concurrent real 2-leg calls (agent: sipp answering with a 440 Hz tone; visitor over the
`pstn` trunk: sipp answering with 1000 Hz), each pair in its own ARI mixing bridge of our own
Stasis app ("bench"). On the same shape of calls, one method at a time:

  A  MixMonitor (AMI) on the agent leg → a plaintext .wav in Asterisk's state dir: what FreePBX
     and Wazo do. The baseline; the files are deleted afterwards.
  B  FIFO route: callengine FifoTap (MixMonitor → named pipe) + RecordingSink encrypting to a
     fresh X25519 public key, at --sample-rate (default: the engine's, 8 kHz: `.sln`).
  C  RTP route: callengine RtpTap (ARI externalMedia into the bridge) + RecordingSink, at
     --sample-rate (8 kHz: slin).
  D  no recording (context: what the calls alone cost).
  E  (only with --methods …E) B at 16 kHz (`.sln16`, recording.sample_rate = 16000: for
     wideband codecs, and the FIFO route's only format before 8 kHz became the default).

The methods are interleaved across repetitions (A B C D, then B C D A, ...): every run builds
its N calls, starts the recordings (paced), waits `--settle` s, then measures for `--window` s:
  Asterisk CPU  = utime+stime of the Asterisk process (/proc/<pid>/stat sums its threads)
  engine CPU    = this process's own CPU (the taps run in its event loop; ~0 for A and D)
per recorded call-second (N × window), and the ratios B/A and C/A per repetition, with their
medians. The machine is noisy: read the ratios and medians, not single figures.

Correctness (the benchmark exits 1 if any fails; timings are never asserted). Lost audio or
missing tones mark the run (check = FAIL) and the benchmark goes on, so an overloaded machine
still gets its figures; a failed set-up or cleanup stops it at once. Every call is
answered and bridged; every B/C recording is complete and its audio bytes match its duration
(FIFO: bytes read vs 16,000 B/s at 8 kHz, 32,000 at 16 kHz, since MixMonitor started; RTP:
audio bytes received, RTP
sequence gaps counted as lost) within 1 % overall; a sample of recordings per run is decrypted
and must hold both tones (FFT); A's WAVs exist with ≈ 16,000 B/s; afterwards 0 channels,
0 bridges, no FIFO, no WAV, no temp files.

Takes /tmp/callengine-asterisk.lock (like the tests and the demo) for its whole run, and
(re)starts the dev Asterisk with scripts/asterisk (stops it at the end unless --keep-asterisk).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import REPO, parser, raise_fd_limit

sys.path.insert(1, str(REPO / "tests"))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from callengine.asterisk.ami import AmiClient  # noqa: E402
from callengine.asterisk.ari import AriClient  # noqa: E402
from callengine.crypto import generate_recipient_keypair, open_recording  # noqa: E402
from callengine.media.fifo import FifoTap, ensure_fifo_dir  # noqa: E402
from callengine.media.fifo_watchdog import release_orphaned_fifos  # noqa: E402
from callengine.media.rtp import RtpTap  # noqa: E402
from callengine.audio import DEFAULT_SAMPLE_RATE, SAMPLE_RATES, bytes_per_second  # noqa: E402
from callengine.recorder import RecordingSink  # noqa: E402
from callengine.telephony import (  # noqa: E402
    ChannelDestroyed,
    ChannelEnteredApp,
    Connected,
    Disconnected,
    Gone,
    TelephonyError,
)
from support.asterisk import CHROOT_STATE_DIR, LOCK_PATH, Asterisk, missing_prerequisites  # noqa: E402
from support.phones import (  # noqa: E402
    AGENT_TONE_HZ,
    PSTN_PORT,
    VISITOR_TONE_HZ,
    Phone,
    agent_port,
)

APP = "bench"
WAV_RATE = 8000  # MixMonitor's .wav: 8 kHz 16-bit mono
WAV_BYTES_PER_SECOND = bytes_per_second(WAV_RATE)
MAX_LOST = 0.01  # more audio lost than this share (overall, per run) = broken
RTP_PORTS = (40000, 40999)
FIFO_SUBDIR = "fifo"  # scripts/asterisk makes <state>/fifo (engine-owned, Asterisk's group, 0710)
METHODS = {
    "A": "MixMonitor → plaintext WAV (peers)",
    "B": "FIFO route (FifoTap) + encryption",
    "C": "RTP route (RtpTap) + encryption",
    "D": "no recording",
    "E": "FIFO route at 16 kHz (.sln16) + encryption",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")

console = Console(width=None if sys.stdout.isatty() else 180, highlight=False)


class Broken(Exception):
    """Something the benchmark cannot measure around: calls failed, audio lost, leftovers."""


# ---- CPU and process accounting -------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """utime+stime of a process, all its threads, in seconds (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = text.rsplit(")", 1)[1].split()  # comm may hold spaces; fields[0] is field 3
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - idle, total


@dataclass
class Snapshot:
    wall: float
    asterisk: float
    engine: float
    sipp: float
    busy: int
    total: int

    @classmethod
    def take(cls, asterisk_pid: int, sipp_pids: list[int]) -> Snapshot:
        busy, total = machine_ticks()
        return cls(
            wall=time.monotonic(),
            asterisk=proc_cpu(asterisk_pid),
            engine=time.process_time(),
            sipp=sum(proc_cpu(p) for p in sipp_pids),
            busy=busy,
            total=total,
        )


# ---- ARI events --------------------------------------------------------------------------------


class Events:
    """The one consumer of the "bench" app's events: who entered Stasis, who was destroyed."""

    def __init__(self, ari: AriClient):
        self.ari = ari
        self.names: dict[str, str] = {}  # channel id → name (StasisStart: answered)
        self.destroyed: dict[str, int] = {}  # channel id → cause
        self.connected = asyncio.Event()
        self.disconnects = 0
        self._cond = asyncio.Condition()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Events:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async for event in self.ari.events():
            if isinstance(event, ChannelEnteredApp):
                self.names[event.channel_id] = event.name
            elif isinstance(event, ChannelDestroyed):
                self.destroyed[event.channel_id] = event.cause
            elif isinstance(event, Connected):
                self.connected.set()
            elif isinstance(event, Disconnected):
                self.disconnects += 1
            async with self._cond:
                self._cond.notify_all()

    async def wait(self, predicate, timeout: float) -> bool:
        """Wait until predicate() holds (re-checked on every event); False on timeout."""
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(predicate), timeout)
                return True
            except TimeoutError:
                return predicate()


# ---- one call and one run ----------------------------------------------------------------------


def sample_rate_of(method: str, engine_rate: int) -> int:
    """The sample rate of a method's recordings (B and C: --sample-rate)."""
    return {"A": WAV_RATE, "E": 16000}.get(method, engine_rate)


def new_id() -> str:
    # Full-length UUIDs: ARI channel ids are prefix-matched (zz-1 clashes with zz-10).
    return f"bench-{uuid.uuid4().hex}"


@dataclass
class Call:
    index: int
    agent: str
    visitor: str
    bridge: str
    agent_name: str = ""
    bridged: bool = False
    started_at: float | None = None  # recording started (monotonic)
    ended_at: float | None = None  # our first hangup request (monotonic)
    tap: FifoTap | RtpTap | None = None
    sink: RecordingSink | None = None
    tap_channel: str | None = None
    wav_inner: str | None = None  # A: the WAV as Asterisk sees it

    def audio_bytes(self) -> int:
        """Audio received so far (B: FIFO bytes; C: RTP payload bytes, silence fill excluded)."""
        if isinstance(self.tap, FifoTap):
            return self.tap.bytes_received
        if isinstance(self.tap, RtpTap):
            return self.tap.stats.bytes
        return 0


@dataclass
class RunResult:
    method: str
    rep: int
    position: int  # order within its repetition (0 = first)
    calls: int
    window_s: float = 0.0
    asterisk_cpu_s: float = 0.0
    engine_cpu_s: float = 0.0
    sipp_cpu_s: float = 0.0
    machine_busy: float = 0.0  # share of all cores busy during the window
    cores: int = 1
    bridge_tech: dict[str, int] = field(default_factory=dict)
    setup_s: float = 0.0  # originate → all bridged
    start_s: float = 0.0  # starting all recordings
    teardown_s: float = 0.0
    recordings_ok: int = 0
    expected_bytes: int = 0  # Σ duration × rate over recordings
    received_bytes: int = 0
    lost_bytes: int = 0  # Σ per recording max(0, expected − received)
    window_bytes: int = 0  # audio bytes that arrived during the measuring window
    window_expected: int = 0
    rtp_packets: int = 0
    rtp_lost_packets: int = 0
    rtp_late_or_dup: int = 0
    pipe_kib_min: int | None = None
    tones: list[tuple[float, float]] = field(default_factory=list)  # sampled (440, 1000) shares
    problems: list[str] = field(default_factory=list)  # quality: lost audio, tones, short
    fatal: list[str] = field(default_factory=list)  # set-up failed or cleanup left something

    def per_call_second(self, cpu_s: float) -> float:
        return 1000.0 * cpu_s / (self.calls * self.window_s) if self.window_s else float("nan")

    @property
    def asterisk_ms(self) -> float:
        return self.per_call_second(self.asterisk_cpu_s)

    @property
    def engine_ms(self) -> float:
        return self.per_call_second(self.engine_cpu_s)

    @property
    def total_ms(self) -> float:
        return self.asterisk_ms + self.engine_ms

    @property
    def other_load(self) -> float:
        """CPU used by everything but Asterisk, this process and the phones, in cores."""
        if not self.window_s:
            return float("nan")
        ours = (self.asterisk_cpu_s + self.engine_cpu_s + self.sipp_cpu_s) / self.window_s
        return self.machine_busy * self.cores - ours

    @property
    def lost_share(self) -> float:
        return self.lost_bytes / self.expected_bytes if self.expected_bytes else 0.0


def band_fractions(pcm: bytes, rate: int) -> dict[int, float]:
    """Share of the signal's energy within ±15 Hz of each test tone."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    x -= x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    total = spectrum.sum() or 1.0
    return {
        hz: float(spectrum[(freqs > hz - 15) & (freqs < hz + 15)].sum() / total)
        for hz in (AGENT_TONE_HZ, VISITOR_TONE_HZ)
    }


class Bench:
    def __init__(self, args: argparse.Namespace, asterisk: Asterisk, ari: AriClient,
                 events: Events, ami: AmiClient, phones: list[Phone]):
        self.args = args
        self.asterisk = asterisk
        self.ari = ari
        self.events = events
        self.ami = ami
        self.phones = phones
        self.asterisk_pid = int((asterisk.var_dir / "asterisk.pid").read_text())
        self.sipp_pids = [p._proc.pid for p in phones if p._proc is not None]
        self.private, self.public = generate_recipient_keypair()
        self.recordings_dir = Path(tempfile.mkdtemp(prefix="bench-recordings-",
                                                    dir=args.recordings_dir))
        self.fifo_dir = asterisk.state_dir / FIFO_SUBDIR
        self.fifo_dir_inner = f"{CHROOT_STATE_DIR}/{FIFO_SUBDIR}"
        self.fifo_group = asterisk.group_id
        ensure_fifo_dir(self.fifo_dir, self.fifo_group)
        self.wav_dir_inner = f"{CHROOT_STATE_DIR}/spool/recording"
        self.rng = random.Random(args.seed)
        self.visitor_seq = 0
        self.results: list[RunResult] = []

    # -- the whole benchmark -----------------------------------------------------------------

    async def run(self) -> list[RunResult]:
        methods = list(self.args.methods)
        results = self.results
        for rep in range(self.args.reps):
            shift = rep % len(methods) if self.args.rotate else 0
            order = methods[shift:] + methods[:shift]
            for position, method in enumerate(order):
                result = RunResult(method, rep + 1, position, self.args.calls,
                                   cores=os.cpu_count() or 1)
                console.print(f"[bold]rep {rep + 1}/{self.args.reps} · {method} "
                              f"({METHODS[method]})[/bold]")
                results.append(result)
                try:
                    await self.one_run(result)
                except Broken as exc:
                    result.fatal.insert(0, str(exc))
                self.print_run(result)
                if result.fatal:  # stop: the next run could not be trusted (or cleaned up)
                    raise Broken(f"rep {rep + 1} {method}: " + "; ".join(result.fatal[:5]))
                await asyncio.sleep(self.args.pause)
        return results

    def sample_rate(self, method: str) -> int:
        return sample_rate_of(method, self.args.sample_rate)

    def audio_rate(self, method: str) -> int:
        """Bytes per second of audio a method's recordings hold."""
        return bytes_per_second(self.sample_rate(method))

    async def one_run(self, result: RunResult) -> None:
        calls: list[Call] = []
        try:
            t0 = time.monotonic()
            await self.build_calls(calls, result)
            result.setup_s = time.monotonic() - t0
            t0 = time.monotonic()
            await self.start_recordings(calls, result)
            result.start_s = time.monotonic() - t0
            await asyncio.sleep(self.args.settle)
            await self.measure(calls, result)
            result.bridge_tech = await self.bridge_technologies(calls)
        finally:
            t0 = time.monotonic()
            await self.teardown(calls, result)
            result.teardown_s = time.monotonic() - t0
        await self.check_recordings(calls, result)

    # -- set-up ------------------------------------------------------------------------------

    async def build_calls(self, calls: list[Call], result: RunResult) -> None:
        n, pace = self.args.calls, self.args.pace
        for i in range(n):
            call = Call(i, new_id(), new_id(), new_id())
            calls.append(call)
            agent = f"PJSIP/agent{1 + i % self.args.agents}"
            self.visitor_seq += 1
            visitor = f"PJSIP/+4930{self.visitor_seq:07d}@pstn"
            try:
                await self.ari.originate(agent, call.agent, app_args=[], timeout=30)
                await self.ari.originate(visitor, call.visitor, app_args=[], timeout=30)
            except TelephonyError as exc:
                raise Broken(f"originate for call {i} failed: {exc}") from exc
            await asyncio.sleep(pace)
        legs = [c for call in calls for c in (call.agent, call.visitor)]
        names, destroyed = self.events.names, self.events.destroyed

        def settled() -> bool:
            return all(c in names or c in destroyed for c in legs)

        await self.events.wait(settled, 30)
        missing = [c for c in legs if c not in names]
        if missing:
            raise Broken(f"{len(missing)} of {len(legs)} legs not answered within 30 s")
        for call in calls:
            call.agent_name = names[call.agent]
            try:
                await self.ari.create_bridge(call.bridge)
                call.bridged = True
                await self.ari.add_to_bridge(call.bridge, [call.agent, call.visitor])
            except TelephonyError as exc:
                raise Broken(f"bridging call {call.index} failed: {exc}") from exc
            await asyncio.sleep(pace / 2)

    async def start_recordings(self, calls: list[Call], result: RunResult) -> None:
        method = result.method
        for call in calls:
            if method == "A":
                call.wav_inner = f"{self.wav_dir_inner}/{new_id()}.wav"
                try:
                    await self.ami.mix_monitor(call.agent_name, call.wav_inner)
                except Exception as exc:
                    raise Broken(f"MixMonitor for call {call.index} failed: {exc}") from exc
            elif method in "BCE":
                if method in "BE":
                    tap = FifoTap(self.ami, self.fifo_dir, self.fifo_dir_inner, self.fifo_group)
                else:
                    tap = RtpTap(self.ari, "127.0.0.1", port_range=RTP_PORTS)
                    call.tap_channel = new_id()
                sink = RecordingSink(self.recordings_dir, self.public,
                                     sample_rate=self.sample_rate(method))
                try:
                    await tap.start(sink, channel_id=call.agent, channel_name=call.agent_name,
                                    bridge_id=call.bridge, tap_channel_id=call.tap_channel or "")
                except Exception as exc:
                    sink.abort()
                    raise Broken(f"tap for call {call.index} failed to start: {exc}") from exc
                call.tap, call.sink = tap, sink
                if isinstance(tap, FifoTap):
                    kib = tap.pipe_size // 1024
                    result.pipe_kib_min = kib if result.pipe_kib_min is None else min(
                        result.pipe_kib_min, kib)
            else:
                continue
            call.started_at = time.monotonic()
            await asyncio.sleep(self.args.pace)

    # -- the measured window -----------------------------------------------------------------

    def window_bytes(self, calls: list[Call], method: str) -> int:
        if method == "A":
            total = 0
            for call in calls:
                with contextlib.suppress(FileNotFoundError):
                    total += self.asterisk.host_path(call.wav_inner).stat().st_size
            return total
        return sum(call.audio_bytes() for call in calls)

    async def measure(self, calls: list[Call], result: RunResult) -> None:
        """Nothing else runs in this process during the window: no progress display, no
        polling; only the taps' readers (and the idle ARI/AMI connections)."""
        bytes0 = self.window_bytes(calls, result.method)
        before = Snapshot.take(self.asterisk_pid, self.sipp_pids)
        await asyncio.sleep(self.args.window)
        after = Snapshot.take(self.asterisk_pid, self.sipp_pids)
        bytes1 = self.window_bytes(calls, result.method)
        result.window_s = after.wall - before.wall
        result.asterisk_cpu_s = after.asterisk - before.asterisk
        result.engine_cpu_s = after.engine - before.engine
        result.sipp_cpu_s = after.sipp - before.sipp
        total = after.total - before.total
        result.machine_busy = (after.busy - before.busy) / total if total else float("nan")
        rate = self.audio_rate(result.method)
        if result.method != "D":
            result.window_bytes = bytes1 - bytes0
            result.window_expected = round(len(calls) * result.window_s * rate)
        if self.events.disconnects:
            result.fatal.append(f"the ARI websocket dropped {self.events.disconnects}×")

    async def bridge_technologies(self, calls: list[Call]) -> dict[str, int]:
        ours = {call.bridge for call in calls}
        bridges = await self.ari.request("GET", "/bridges") or []
        return dict(Counter(b.get("technology", "?") for b in bridges if b.get("id") in ours))

    # -- tear-down -----------------------------------------------------------------------------

    async def _quiet(self, coro) -> None:
        try:
            await coro
        except Gone:
            pass

    async def teardown(self, calls: list[Call], result: RunResult) -> None:
        """Hang up both legs of every call (paced), end every tap, destroy every bridge, and
        check that nothing is left. Runs after a failure too."""
        problems = result.fatal
        pace = self.args.pace
        for call in calls:
            call.ended_at = time.monotonic()
            for leg in (call.agent, call.visitor):
                try:
                    await self._quiet(self.ari.hangup(leg))
                except TelephonyError as exc:
                    problems.append(f"hangup {leg}: {exc}")
            await asyncio.sleep(pace)
        legs = [c for call in calls for c in (call.agent, call.visitor)]
        destroyed = self.events.destroyed
        if not await self.events.wait(lambda: all(c in destroyed for c in legs), 30):
            problems.append(f"{sum(c not in destroyed for c in legs)} legs not destroyed in 30 s")

        semaphore = asyncio.Semaphore(10)

        async def finish(call: Call) -> None:
            assert call.tap is not None and call.started_at is not None
            async with semaphore:
                talk_s = (call.ended_at or time.monotonic()) - call.started_at
                try:
                    report = await call.tap.finish(talk_s=talk_s)
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"call {call.index}: tap finish failed: {exc}")
                    if call.sink is not None:
                        call.sink.abort()
                    return
                if report.problem:  # short recording and the like: quality, not a failure
                    result.problems.append(f"call {call.index}: {report.problem}")

        await asyncio.gather(*(finish(c) for c in calls if c.tap is not None))
        for call in calls:  # a sink whose tap never started
            if call.sink is not None and call.tap is None and not call.sink.closed:
                call.sink.abort()
        taps = [c.tap_channel for c in calls if c.tap_channel and c.tap is not None]
        if taps and not await self.events.wait(lambda: all(t in destroyed for t in taps), 10):
            problems.append(f"{sum(t not in destroyed for t in taps)} tap channels not destroyed")
        for call in calls:
            if call.bridged:
                try:
                    await self._quiet(self.ari.destroy_bridge(call.bridge))
                except TelephonyError as exc:
                    problems.append(f"destroy bridge {call.bridge}: {exc}")
                await asyncio.sleep(pace / 4)
        problems.extend(await self.leftovers())

    async def leftovers(self) -> list[str]:
        """0 channels and 0 bridges in Asterisk (waits up to 10 s), no FIFO left."""
        problems = []
        deadline = time.monotonic() + 10
        while True:
            channels = await self.ari.request("GET", "/channels") or []
            bridges = await self.ari.request("GET", "/bridges") or []
            if (not channels and not bridges) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        if channels or bridges:
            problems.append(f"left in Asterisk: {len(channels)} channels, {len(bridges)} bridges")
            for c in channels:
                with contextlib.suppress(TelephonyError):
                    await self.ari.hangup(c["id"])
            for b in bridges:
                with contextlib.suppress(TelephonyError):
                    await self.ari.destroy_bridge(b["id"])
        left = sorted(p.name for p in self.fifo_dir.iterdir())
        if left:
            problems.append(f"left in the FIFO dir: {left[:3]}…")
            release_orphaned_fifos(self.fifo_dir, lambda: set(), min_idle_s=0)
        return problems

    # -- correctness ---------------------------------------------------------------------------

    async def check_recordings(self, calls: list[Call], result: RunResult) -> None:
        method = result.method
        if method == "D":
            return
        if method == "A":
            await asyncio.sleep(0.5)  # MixMonitor closes (and finishes the header) on its thread
            for call in calls:
                if call.wav_inner is None or call.started_at is None:
                    continue
                path = self.asterisk.host_path(call.wav_inner)
                expected = round((call.ended_at - call.started_at) * WAV_BYTES_PER_SECOND)
                try:
                    size = path.stat().st_size - 44
                    path.unlink()
                except FileNotFoundError:
                    result.problems.append(f"call {call.index}: no WAV at {path}")
                    continue
                result.expected_bytes += expected
                result.received_bytes += size
                result.lost_bytes += max(0, expected - size)
                if size < 0.9 * expected:
                    result.problems.append(f"call {call.index}: WAV holds {size} of {expected} B")
                else:
                    result.recordings_ok += 1
            return

        sampled: list[Call] = []
        for call in calls:
            if call.sink is None or call.tap is None or call.started_at is None:
                continue
            expected = round((call.ended_at - call.started_at) * self.audio_rate(method))
            received = call.audio_bytes()
            result.expected_bytes += expected
            result.received_bytes += received
            result.lost_bytes += max(0, expected - received)
            if isinstance(call.tap, RtpTap):
                stats = call.tap.stats
                result.rtp_packets += stats.packets
                result.rtp_lost_packets += stats.lost_packets
                result.rtp_late_or_dup += stats.late + stats.duplicates
            if call.sink.closed and call.sink.path.exists():
                result.recordings_ok += 1
                sampled.append(call)
        if result.lost_share > MAX_LOST:
            result.problems.append(
                f"{result.lost_share:.2%} of the audio lost ({result.lost_bytes} of "
                f"{result.expected_bytes} B)")
        packets = result.rtp_packets + result.rtp_lost_packets
        if packets and result.rtp_lost_packets > MAX_LOST * packets:
            result.problems.append(f"{result.rtp_lost_packets} of {packets} RTP packets lost")
        for call in self.rng.sample(sampled, min(self.args.sample, len(sampled))):
            assert call.sink is not None
            with open_recording(call.sink.path, self.private) as reader:
                pcm = reader.read_all()
            fractions = band_fractions(pcm, self.sample_rate(method))
            result.tones.append((fractions[AGENT_TONE_HZ], fractions[VISITOR_TONE_HZ]))
            if min(fractions.values()) < 0.1:
                result.problems.append(f"call {call.index}: tones missing {fractions}")
        for path in self.recordings_dir.iterdir():
            path.unlink()

    # -- output --------------------------------------------------------------------------------

    def print_run(self, r: RunResult) -> None:
        line = (f"  calls up in {r.setup_s:.1f} s, recordings started in {r.start_s:.1f} s, "
                f"window {r.window_s:.2f} s: Asterisk {r.asterisk_ms:.2f} + engine "
                f"{r.engine_ms:.3f} = {r.total_ms:.2f} ms/call-s; machine {r.machine_busy:.0%} "
                f"busy; bridges {r.bridge_tech}; torn down in {r.teardown_s:.1f} s")
        if r.method != "D":
            line += (f"; recordings ok {r.recordings_ok}/{r.calls}, audio lost "
                     f"{r.lost_share:.2%}")
        console.print(line)
        for p in r.fatal[:10]:
            console.print(f"  [red]failed:[/red] {p}")
        for p in r.problems[:10]:
            console.print(f"  [red]problem:[/red] {p}")
        if len(r.problems) > 10:
            console.print(f"  [red]… {len(r.problems) - 10} more problems[/red]")

    def cleanup_files(self) -> None:
        shutil.rmtree(self.recordings_dir, ignore_errors=True)
        wav_dir = self.asterisk.host_path(self.wav_dir_inner)
        for path in wav_dir.glob("bench-*.wav"):
            path.unlink()


# ---- report --------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(results: list[RunResult], method: str) -> list[float]:
    base = {r.rep: r.total_ms for r in results if r.method == "A"}
    return [r.total_ms / base[r.rep] for r in results
            if r.method == method and r.rep in base and base[r.rep]]


def report(results: list[RunResult], env: dict) -> dict:
    env_line = ", ".join(f"{k} {v}" for k, v in env.items())
    console.print(f"\n[bold]Environment:[/bold] {env_line}")

    runs = Table(title="Per run: CPU in ms per recorded call-second (10 ms = 1 % of a core)")
    for col in ("rep", "m", "Asterisk", "engine", "total", "× A", "bridges", "busy", "sipp %", "other %",
                "window audio", "whole audio", "lost B", "RTP lost", "tones", "check"):
        runs.add_column(col, justify="left" if col in ("m", "bridges") else "right")
    by_rep = {(r.rep, r.method): r for r in results}
    short = {"simple_bridge": "simple", "native_rtp": "native", "softmix": "softmix"}
    for r in sorted(results, key=lambda r: (r.rep, r.position)):
        base = by_rep.get((r.rep, "A"))
        ratio = f"{r.total_ms / base.total_ms:.3f}" if base and base.total_ms else "–"
        recorded = r.method != "D"
        whole = (f"{r.received_bytes / r.expected_bytes:.2%}"
                 if recorded and r.expected_bytes else "–")
        window = (f"{r.window_bytes / r.window_expected:.2%}"
                  if recorded and r.window_expected else "–")
        tones = (f"{min(a for a, _ in r.tones):.2f}/{min(b for _, b in r.tones):.2f}"
                 if r.tones else "–")
        runs.add_row(
            str(r.rep), r.method, f"{r.asterisk_ms:.2f}", f"{r.engine_ms:.3f}",
            f"{r.total_ms:.2f}", ratio,
            " ".join(f"{short.get(k, k)}×{v}" for k, v in sorted(r.bridge_tech.items())),
            f"{r.machine_busy:.0%}",
            f"{100 * r.sipp_cpu_s / r.window_s:.0f}" if r.window_s else "–",
            f"{max(0.0, 100 * r.other_load):.0f}",
            window, whole, f"{r.lost_bytes}" if recorded else "–",
            f"{r.rtp_lost_packets}/{r.rtp_packets + r.rtp_lost_packets}" if r.method == "C"
            else "–",
            tones,
            "FAIL" if r.fatal or r.problems else "ok",
        )
    console.print(runs)
    console.print("  " + "; ".join(f"{k} = {v}" for k, v in METHODS.items())
                  + ". busy: whole machine; sipp: the phones' CPU (not counted in total), other: "
                  "everything else on the machine, both in % of one core; "
                  "window audio: what arrived in the window (A/B come in 32 KiB stdio blocks); "
                  "whole audio/lost: each recording against its own duration; tones: the lowest "
                  "440 Hz / 1000 Hz energy share among the decrypted sample.")

    summary = Table(title=f"Medians over {env['reps']} interleaved repetitions, "
                          f"N = {env['calls']} concurrent calls")
    for col in ("method", "Asterisk", "engine", "total", "ratio vs A (median of per-rep)",
                "per-rep ratios"):
        summary.add_column(col, justify="left" if col == "method" else "right")
    out = {"env": env, "methods": {}}
    for method in METHODS:
        mine = [r for r in results if r.method == method]
        if not mine:
            continue
        rs = ratios(results, method)
        row = {
            "asterisk_ms": median([r.asterisk_ms for r in mine]),
            "engine_ms": median([r.engine_ms for r in mine]),
            "total_ms": median([r.total_ms for r in mine]),
            "ratio_vs_A": median(rs) if rs else None,
            "ratios": rs,
        }
        out["methods"][method] = row
        summary.add_row(
            f"{method} {METHODS[method]}", f"{row['asterisk_ms']:.2f}",
            f"{row['engine_ms']:.3f}", f"{row['total_ms']:.2f}",
            f"{row['ratio_vs_A']:.3f}" if rs else "–",
            " ".join(f"{x:.3f}" for x in rs) or "–",
        )
    console.print(summary)
    b = out["methods"].get("B", {}).get("ratio_vs_A")
    c = out["methods"].get("C", {}).get("ratio_vs_A")
    if b is not None:
        verdict = "meets" if b <= 1.05 else "misses"
        console.print(f"FIFO route B/A median {b:.3f}: {verdict} the ≤ 1.05 target. "
                      + (f"RTP route C/A median {c:.3f}." if c is not None else ""))
    out["runs"] = [asdict(r) | {"asterisk_ms": r.asterisk_ms, "engine_ms": r.engine_ms,
                                "total_ms": r.total_ms} for r in results]
    return out


# ---- main ------------------------------------------------------------------------------------------


def take_lock() -> int:
    try:
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        fd = os.open(LOCK_PATH, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        console.print(f"waiting for {LOCK_PATH}: someone else uses the dev Asterisk")
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


async def main_async(
    args: argparse.Namespace, asterisk: Asterisk
) -> tuple[list[RunResult], dict, str | None]:
    n_agents = args.agents
    phones = [Phone(agent_port(k), "answer", tone_hz=AGENT_TONE_HZ, answer_after_ms=50)
              for k in range(1, n_agents + 1)]
    phones.append(Phone(PSTN_PORT, "answer", tone_hz=VISITOR_TONE_HZ, answer_after_ms=50))
    async with contextlib.AsyncExitStack() as stack:
        for phone in phones:
            await phone.astart()
            stack.callback(phone.close)
        ari = await stack.enter_async_context(
            AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, APP))
        events = await stack.enter_async_context(Events(ari))
        creds = asterisk.ami
        ami = await stack.enter_async_context(
            AmiClient(creds.host, creds.port, creds.username, creds.secret))
        info = await ari.info()
        bench = Bench(args, asterisk, ari, events, ami, phones)
        stack.callback(bench.cleanup_files)
        env = {
            "calls": args.calls,
            "window_s": args.window,
            "settle_s": args.settle,
            "reps": args.reps,
            "methods": args.methods,
            "sample rate (B, C)": args.sample_rate,
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "asterisk": info.get("system", {}).get("version", "?"),
            "python": platform.python_version(),
            "event loop": type(asyncio.get_running_loop()).__name__,
            "sipp phones": f"{n_agents} agents + 1 pstn",
            "recordings in": f"{bench.recordings_dir.parent} ({_fs_type(bench.recordings_dir)})",
        }
        console.print("Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()))
        problems = await bench.leftovers()
        if problems:
            raise Broken("Asterisk was not idle before the benchmark: " + "; ".join(problems))
        try:
            results = await bench.run()
        except Broken as exc:
            return bench.results, env, str(exc)
        bad = [f"rep {r.rep} {r.method}: {r.problems[0]}"
               + (f" (+{len(r.problems) - 1} more)" if len(r.problems) > 1 else "")
               for r in results if r.problems]
        return results, env, "; ".join(bad) or None


def _fs_type(path: Path) -> str:
    """The file system type of the mount holding path (from /proc/mounts)."""
    best, kind = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                best, kind = mount, fstype
    return kind


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--calls", type=int, default=50, help="concurrent 2-leg calls (default 50)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    ap.add_argument("--window", type=float, default=20.0,
                    help="measuring window in seconds (default 20)")
    ap.add_argument("--methods", default="ABCD",
                    help="which methods, in first-rep order (default ABCD; A is the baseline)")
    ap.add_argument("--no-rotate", dest="rotate", action="store_false",
                    help="same method order in every repetition (default: rotate by one)")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds between the last recording start and the window (default 2)")
    ap.add_argument("--pace", type=float, default=0.05,
                    help="seconds between per-call ARI/AMI set-up steps (default 0.05)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between runs (default 2)")
    ap.add_argument("--agents", type=int, default=6, choices=range(1, 7),
                    help="agent endpoints/sipp phones to spread the calls over (default 6)")
    ap.add_argument("--sample", type=int, default=3,
                    help="recordings decrypted and FFT-checked per B/C run (default 3)")
    ap.add_argument("--recordings-dir", type=Path, default=None,
                    help="where the encrypted recordings go (a temp dir inside it; default: the "
                         "system temp dir, a disk here; /dev/shm takes the disk out)")
    ap.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, choices=SAMPLE_RATES,
                    help="B's and C's recordings, as recording.sample_rate (default "
                         f"{DEFAULT_SAMPLE_RATE}; E is always 16000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--keep-asterisk", action="store_true",
                    help="leave the dev Asterisk running at the end")
    args = ap.parse_args()
    if set(args.methods) - set(METHODS) or not args.methods:
        ap.error(f"--methods takes letters from {''.join(METHODS)}")
    if args.calls < 1 or args.reps < 1 or args.window <= 0:
        ap.error("--calls, --reps and --window must be positive")
    if ("B" in args.methods or "C" in args.methods) and "A" not in args.methods:
        console.print("note: without A there is no baseline: no ratios")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    missing = missing_prerequisites()
    if missing:
        console.print("[red]missing:[/red] " + "; ".join(missing))
        return 2
    raise_fd_limit(8 * args.calls + 256, required=False)

    lock = take_lock()
    asterisk = Asterisk()
    status = 0
    try:
        asterisk.stop()  # a leftover instance may run older configs
        asterisk.start()
        try:
            results, env, broken = asyncio.run(main_async(args, asterisk))
        except Broken as exc:
            results, env, broken = [], {}, str(exc)
        if results:
            out = report(results, env)
            if args.json:
                args.json.write_text(json.dumps(out, indent=1, default=str))
        if broken:
            console.print(f"[red bold]BROKEN:[/red bold] {broken}")
            status = 1
    except KeyboardInterrupt:
        console.print("interrupted")
        status = 130
    finally:
        try:
            channels, bridges = asterisk.wait_idle(5) if asterisk.is_running() else ([], [])
            if channels or bridges:
                console.print(f"[red]cleaning up {len(channels)} channels, "
                              f"{len(bridges)} bridges[/red]")
                asterisk.clear()
                status = status or 1
            if not args.keep_asterisk:
                asterisk.stop()
        finally:
            os.close(lock)
    return status


if __name__ == "__main__":
    sys.exit(main())
