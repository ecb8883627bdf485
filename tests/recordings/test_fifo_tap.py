"""The FIFO route (callengine/media/fifo.py, fifo_watchdog.py, pipe_sizes.py; asterisk/ami.py).

Two halves:
- without Asterisk: the tap's pipe mechanics against a fake MixMonitor that writes into the
  FIFO itself (EOF only after a writer, no hang without one, short/replaced/unsafe cases, the
  watchdog on a real blocked writer);
- against the real Asterisk: a real bridged call (agent 440 Hz, visitor 1000 Hz), MixMonitor
  over AMI into the FIFO, decrypted and checked by FFT; no plaintext audio in any file while
  the call runs or after; a stalled reader; an orphaned FIFO; fail closed; AMI errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from callengine.asterisk.ami import AmiClient, AmiError
from callengine.audio import DEFAULT_FIFO_SLACK_S, DEFAULT_SAMPLE_RATE, bytes_per_second
from callengine.crypto import generate_recipient_keypair, open_recording
from callengine.media import fifo as fifo_mod
from callengine.media.fifo import (
    FifoPipeError,
    FifoTap,
    FifoTapError,
    check_fifo_dir,
    ensure_fifo_dir,
    fifo_suffix,
)
from callengine.media.fifo_watchdog import claim_fifo_dir, fifo_watchdog, release_orphaned_fifos
from callengine.media.pipe_sizes import pipe_size_for
from callengine.recorder import RecordingSink
from tests.support.asterisk import CHROOT_STATE_DIR, AriApp
from tests.support.ci import unavailable
from tests.support.audio import band_fractions, scan_for_plaintext, tone_audio_in
from tests.support.pipes import RefusingFcntl
from tests.support.phones import (
    AGENT_TONE_HZ,
    PSTN_PORT,
    VISITOR_TONE_HZ,
    Phone,
    agent_port,
    tone_file,
)

APP = "fifo-test"
FIFO_SUBDIR = "fifo"  # scripts/asterisk makes <state>/fifo: root-owned, Asterisk's group, 0710


# ---- helpers: keys, sinks, plaintext detection -------------------------------------------------


@pytest.fixture
def keys():
    private, public = generate_recipient_keypair()
    return private, public


@pytest.fixture
def recordings_dir(tmp_path):
    d = tmp_path / "recordings"
    d.mkdir()
    return d


def decrypt(path: Path, private: bytes) -> bytes:
    with open_recording(path, private) as reader:
        return reader.read_all()


def test_plaintext_detector_is_sensitive(tmp_path):
    """The scan below would see audio if there were any: u-law tones, sln16, wav-ish."""
    assert tone_audio_in(tone_file(AGENT_TONE_HZ).read_bytes()) is not None
    t = np.arange(16000 * 2) / 16000
    mix = (3000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    assert tone_audio_in(mix.tobytes()) is not None
    assert tone_audio_in(b"\x00" * 44 + mix.tobytes()) is not None
    assert tone_audio_in(b"x" + mix.astype(">i2").tobytes()) is not None
    assert tone_audio_in(os.urandom(200_000)) is None
    assert tone_audio_in(b"\xff" * 8000) is None  # u-law silence (the test MOH file)
    assert tone_audio_in(Path(__file__).read_bytes()) is None
    # a recording of the same tones is ciphertext: not audio
    private, public = generate_recipient_keypair()
    sink = RecordingSink(tmp_path, public)
    sink.feed(mix.tobytes())
    sink.close()
    assert tone_audio_in(sink.path.read_bytes()) is None
    assert scan_for_plaintext(tmp_path) == []
    (tmp_path / "leak.sln16").write_bytes(mix.tobytes())
    assert len(scan_for_plaintext(tmp_path)) == 1


# ---- without Asterisk: a fake MixMonitor that writes into the FIFO ----------------------------


class FakeMixMonitor:
    """Stands in for AMI + MixMonitor: on mix_monitor() it (later) opens the FIFO for writing
    (through the host path) and writes `pcm` in 32 KiB blocks, like Asterisk's stdio does."""

    def __init__(self, fifo_dir: Path, pcm: bytes = b"", *, delay: float = 0.0,
                 open_writer: bool = True, error: Exception | None = None):
        self.fifo_dir = fifo_dir
        self.pcm = pcm
        self.delay = delay
        self.open_writer = open_writer
        self.error = error
        self.calls: list[tuple[str, str, str]] = []
        self.task: asyncio.Task | None = None
        self.done = asyncio.Event()

    async def mix_monitor(self, channel: str, file: str, options: str = "") -> None:
        self.calls.append((channel, file, options))
        if self.error:
            raise self.error
        path = self.fifo_dir / Path(file).name
        if self.open_writer:
            self.task = asyncio.create_task(self._write(path))

    async def _write(self, path: Path) -> None:
        await asyncio.sleep(self.delay)
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            view = memoryview(self.pcm)
            while view:
                try:
                    n = os.write(fd, view[: 32 * 1024])
                except BlockingIOError:
                    await asyncio.sleep(0.005)
                    continue
                view = view[n:]
                await asyncio.sleep(0)
        finally:
            os.close(fd)
            self.done.set()


@pytest.fixture
def fifo_dir(tmp_path):
    d = tmp_path / "fifo"
    ensure_fifo_dir(d, None)
    return d


def pcm_seconds(seconds: float, rate: int = DEFAULT_SAMPLE_RATE) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (4000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def test_pipe_size_follows_the_rate():
    """32 s of slack: 512 KiB at 8 kHz (half the pages of 16 kHz's 1 MiB), as the kernel
    rounds (a power of two of pages)."""
    assert pipe_size_for(DEFAULT_FIFO_SLACK_S, 8000) == 512 << 10
    assert pipe_size_for(DEFAULT_FIFO_SLACK_S, 16000) == 1 << 20
    assert pipe_size_for(1.0, 8000) == 16 << 10  # 16,000 bytes → 4 pages
    assert fifo_suffix(8000) == ".sln" and fifo_suffix(16000) == ".sln16"
    with pytest.raises(ValueError, match="8000, 16000"):
        fifo_suffix(44100)


@pytest.mark.parametrize("rate, suffix", [(8000, ".sln"), (16000, ".sln16")])
async def test_fake_stream_round_trip(fifo_dir, recordings_dir, keys, rate, suffix):
    private, public = keys
    pcm = pcm_seconds(2.0, rate)
    fake = FakeMixMonitor(fifo_dir, pcm, delay=0.3)
    tap = FifoTap(fake, fifo_dir, "/asterisk/sees/fifo/", None)
    sink = RecordingSink(recordings_dir, public, sample_rate=rate)
    await tap.start(sink, channel_id="chan-id", channel_name="PJSIP/agent1-00000001")

    path = fifo_dir / f"{sink.recording_id}{suffix}"
    st = path.lstat()
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620
    assert tap.pipe_size == pipe_size_for(DEFAULT_FIFO_SLACK_S, rate)
    assert fake.calls == [("PJSIP/agent1-00000001", f"/asterisk/sees/fifo/{sink.recording_id}{suffix}", "")]
    assert sink.recording_id in fifo_mod.active_fifo_ids()

    # Before the writer opens: no false EOF (the keeper write end is open).
    await asyncio.sleep(0.15)
    assert not tap._eof.is_set() and tap.bytes_received == 0
    await fake.done.wait()
    await asyncio.sleep(0.05)
    assert tap._eof.is_set()  # the only writer closed: EOF without waiting for finish()

    report = await tap.finish(talk_s=2.0)
    assert report.problem is None, report.problem
    assert report.expected_bytes == 2 * bytes_per_second(rate) == len(pcm)
    assert report.lost_bytes == 0
    assert report.summary.complete and report.summary.bytes_in == len(pcm)
    assert report.summary.sample_rate == rate and report.summary.duration_s == 2.0
    assert decrypt(report.summary.path, private) == pcm
    assert not path.exists()
    assert sink.recording_id not in fifo_mod.active_fifo_ids()


async def test_channel_id_is_the_fallback(fifo_dir, recordings_dir, keys):
    fake = FakeMixMonitor(fifo_dir, open_writer=False)
    tap = FifoTap(fake, fifo_dir, "/x", None)
    await tap.start(RecordingSink(recordings_dir, keys[1]), channel_id="1700000000.42", channel_name="")
    assert fake.calls[0][0] == "1700000000.42"
    await tap.finish(talk_s=0)


async def test_writer_that_never_comes_does_not_hang(fifo_dir, recordings_dir, keys):
    """MixMonitor could not open the FIFO (or the call ended before any audio): finish()
    sees EOF at once once the keeper is closed, and reports a failed recording."""
    fake = FakeMixMonitor(fifo_dir, open_writer=False)
    tap = FifoTap(fake, fifo_dir, "/x", None)
    sink = RecordingSink(recordings_dir, keys[1])
    await tap.start(sink, channel_id="c", channel_name="n")
    t0 = time.monotonic()
    report = await tap.finish(talk_s=3.0, timeout=5)
    assert time.monotonic() - t0 < 0.5
    assert report.problem and report.problem.startswith("no audio")
    assert report.summary.bytes_in == 0 and report.lost_bytes == 3 * 16000  # 8 kHz
    assert list(fifo_dir.iterdir()) == []


async def test_writer_attached_but_silent_until_the_end(fifo_dir, recordings_dir, keys):
    """A writer that opened but wrote nothing yet when finish() starts: finish waits for its
    close (EOF), then gets what it flushed at the end (MixMonitor's stdio buffer)."""
    private, public = keys
    tap = FifoTap(FakeMixMonitor(fifo_dir, open_writer=False), fifo_dir, "/x", None)
    sink = RecordingSink(recordings_dir, public)
    await tap.start(sink, channel_id="c", channel_name="n")
    wfd = os.open(tap.path, os.O_WRONLY | os.O_NONBLOCK)

    async def late_flush():
        await asyncio.sleep(0.3)
        os.write(wfd, b"\x01\x02" * 1000)
        os.close(wfd)

    flush = asyncio.create_task(late_flush())
    report = await tap.finish(talk_s=0.125)  # 2000 bytes expected at 8 kHz
    await flush
    assert report.problem is None and report.summary.bytes_in == 2000
    assert decrypt(report.summary.path, private) == b"\x01\x02" * 1000


async def test_short_recording_is_reported(fifo_dir, recordings_dir, keys):
    fake = FakeMixMonitor(fifo_dir, pcm_seconds(2.0))
    tap = FifoTap(fake, fifo_dir, "/x", None)
    await tap.start(RecordingSink(recordings_dir, keys[1]), channel_id="c", channel_name="n")
    await fake.done.wait()
    report = await tap.finish(talk_s=3.0)
    assert report.problem and report.problem.startswith("short recording: 2.0 s of audio")
    assert report.lost_bytes == 16000  # 1 s at 8 kHz
    assert report.summary.complete  # the stream itself ended normally


async def test_no_eof_in_time_aborts(fifo_dir, recordings_dir, keys):
    tap = FifoTap(FakeMixMonitor(fifo_dir, open_writer=False), fifo_dir, "/x", None)
    await tap.start(RecordingSink(recordings_dir, keys[1]), channel_id="c", channel_name="n")
    wfd = os.open(tap.path, os.O_WRONLY | os.O_NONBLOCK)  # a writer that never closes
    try:
        os.write(wfd, b"\0" * 3200)
        report = await tap.finish(talk_s=0.1, timeout=0.3)
    finally:
        os.close(wfd)
    assert report.problem and "did not close the FIFO" in report.problem
    assert not report.summary.complete
    assert list(tap.fifo_dir_host.iterdir()) == []


async def test_replaced_fifo_is_removed_and_reported(fifo_dir, recordings_dir, keys):
    """If the FIFO is swapped for a regular file (what MixMonitor makes when the FIFO is
    missing and the directory lets it), finish() removes it and says so."""
    tap = FifoTap(FakeMixMonitor(fifo_dir, open_writer=False), fifo_dir, "/x", None)
    await tap.start(RecordingSink(recordings_dir, keys[1]), channel_id="c", channel_name="n")
    os.unlink(tap.path)
    tap.path.write_bytes(pcm_seconds(0.5))
    report = await tap.finish(talk_s=0.5)
    assert report.problem and "replaced by a regular file" in report.problem
    assert list(fifo_dir.iterdir()) == []


async def test_sink_failure_keeps_draining(fifo_dir, recordings_dir, keys):
    fake = FakeMixMonitor(fifo_dir, pcm_seconds(1.0))
    tap = FifoTap(fake, fifo_dir, "/x", None)
    sink = RecordingSink(recordings_dir, keys[1])
    await tap.start(sink, channel_id="c", channel_name="n")

    def broken_feed(pcm):
        raise OSError(28, "No space left on device")

    sink.feed = broken_feed  # type: ignore[method-assign]
    await asyncio.wait_for(fake.done.wait(), 5)  # the writer was never blocked
    report = await tap.finish(talk_s=1.0)
    assert tap.bytes_received == 16000
    assert report.problem and "No space left" in report.problem
    assert not report.summary.complete


async def test_unsafe_fifo_dir_is_refused(tmp_path, recordings_dir, keys):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o770)
    tap = FifoTap(FakeMixMonitor(d), d, "/x", None)
    with pytest.raises(FifoTapError, match="writable by group"):
        await tap.start(RecordingSink(recordings_dir, keys[1]), channel_id="c", channel_name="n")
    assert list(d.iterdir()) == []
    with pytest.raises(FifoTapError, match="does not exist"):
        check_fifo_dir(tmp_path / "missing")


@pytest.mark.parametrize("grant", [None, 64 << 10], ids=["EPERM", "smaller"])
async def test_pipe_that_cannot_grow_refuses_the_recording(
    fifo_dir, recordings_dir, keys, monkeypatch, grant
):
    """Over pipe-user-pages-soft the kernel leaves a new FIFO at 8-64 KiB (a quarter of a
    second of slack): the tap refuses before MixMonitor is sent, and leaves nothing behind."""
    refusing = RefusingFcntl(grant)
    monkeypatch.setattr(fifo_mod, "fcntl", refusing)
    fake = FakeMixMonitor(fifo_dir)
    tap = FifoTap(fake, fifo_dir, "/x", None)
    sink = RecordingSink(recordings_dir, keys[1])
    with pytest.raises(FifoPipeError) as caught:
        await tap.start(sink, channel_id="c", channel_name="n")
    assert refusing.set_calls == [512 << 10]
    why = "EPERM" if grant is None else f"got {grant}"
    assert str(caught.value) == (
        f"FIFO pipe could not be enlarged to 524288 bytes ({why}): raise "
        "fs.pipe-user-pages-soft or run the engine with CAP_SYS_RESOURCE")
    assert fake.calls == []  # no MixMonitor
    assert list(fifo_dir.iterdir()) == []  # no FIFO
    assert sink.recording_id not in fifo_mod.active_fifo_ids()
    assert tap._rfd == -1 and tap._keeper == -1  # both ends closed
    sink.abort()


async def test_ami_error_leaves_nothing_behind(fifo_dir, recordings_dir, keys):
    fake = FakeMixMonitor(fifo_dir, error=AmiError("MixMonitor", "No such channel"))
    tap = FifoTap(fake, fifo_dir, "/x", None)
    sink = RecordingSink(recordings_dir, keys[1])
    with pytest.raises(AmiError, match="No such channel"):
        await tap.start(sink, channel_id="c", channel_name="n")
    assert list(fifo_dir.iterdir()) == []
    assert sink.recording_id not in fifo_mod.active_fifo_ids()


async def test_watchdog_releases_a_blocked_writer(fifo_dir):
    """An orphaned FIFO with a writer blocked in open() (MixMonitor with no reader): one
    watchdog pass unblocks the writer, removes the FIFO; active and young FIFOs stay;
    a plaintext file in the directory is removed."""
    orphan = fifo_dir / f"{'a' * 32}.sln"
    active = fifo_dir / f"{'b' * 32}.sln16"
    young = fifo_dir / f"{'c' * 32}.sln"
    leak = fifo_dir / f"{'d' * 32}.sln16"
    for p in (orphan, active, young):
        os.mkfifo(p, 0o600)
    leak.write_bytes(b"\0" * 100)
    old = time.time() - 60
    for p in (orphan, active):
        os.utime(p, (old, old))

    opened = threading.Event()

    def blocked_writer():
        fd = os.open(orphan, os.O_WRONLY)  # blocks until a reader opens
        opened.set()
        try:
            os.write(fd, b"\0" * 640)
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)

    thread = threading.Thread(target=blocked_writer, daemon=True)
    thread.start()
    time.sleep(0.2)
    assert not opened.is_set()

    released = release_orphaned_fifos(fifo_dir, lambda: {"b" * 32}, min_idle_s=10)
    assert sorted(released) == ["a" * 32, "d" * 32]
    assert opened.wait(2)
    thread.join(2)
    assert sorted(p.name for p in fifo_dir.iterdir()) == sorted([active.name, young.name])


async def test_watchdog_loop_runs_first_pass_at_once(fifo_dir):
    os.mkfifo(fifo_dir / f"{'e' * 32}.sln16")
    os.mkfifo(fifo_dir / f"{'f' * 32}.sln")
    task = asyncio.create_task(fifo_watchdog(fifo_dir, lambda: set(), interval=30, min_idle_s=0))
    try:
        for _ in range(50):
            if not list(fifo_dir.iterdir()):
                break
            await asyncio.sleep(0.02)
        assert list(fifo_dir.iterdir()) == []
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_claim_releases_what_a_killed_engine_left_at_once(fifo_dir):
    """What a SIGKILLed engine leaves: a FIFO that MixMonitor still holds open and wrote into
    a moment ago (its writes now fail, so its mtime stays young), and one nobody ever opened.
    Claiming the directory releases both at once - no idle time, no watchdog tick - and the
    writer's next write fails instead of blocking."""
    written = fifo_dir / f"{'a' * 32}.sln"
    never_opened = fifo_dir / f"{'b' * 32}.sln16"
    for p in (written, never_opened):
        os.mkfifo(p, 0o600)
    reader = os.open(written, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(written, os.O_WRONLY | os.O_NONBLOCK)  # MixMonitor's write end
    os.write(writer, b"\0" * 640)
    os.close(reader)  # the engine died: no reader left
    with pytest.raises(BrokenPipeError):
        os.write(writer, b"\0" * 640)
    assert time.time() - written.stat().st_mtime < 1.0  # young: the idle rule would skip it
    try:
        with claim_fifo_dir(fifo_dir, None) as released:
            assert sorted(released) == ["a" * 32, "b" * 32]
            assert list(fifo_dir.iterdir()) == []
            with pytest.raises(BrokenPipeError):
                os.write(writer, b"\0" * 640)
    finally:
        os.close(writer)


def test_claim_spares_this_process_s_taps(fifo_dir, monkeypatch):
    mine = fifo_dir / f"{'c' * 32}.sln"
    os.mkfifo(mine, 0o600)
    monkeypatch.setattr(fifo_mod, "_active", {"c" * 32})
    with claim_fifo_dir(fifo_dir, None) as released:
        assert released == [] and mine.exists()


_HOLD = """
import sys, time
from pathlib import Path
from callengine.media.fifo_watchdog import claim_fifo_dir
with claim_fifo_dir(Path(sys.argv[1]), None):
    print("claimed", flush=True)
    time.sleep(60)
"""


def test_one_engine_per_fifo_dir_until_it_dies(fifo_dir):
    """A second engine on a claimed directory is refused loudly (it would take the first
    one's FIFOs for orphans); once the holder is killed (SIGKILL: no clean-up ran), the next
    claim wins at once."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(fifo_dir)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        with pytest.raises(FifoTapError, match="in use by another running engine"):
            with claim_fifo_dir(fifo_dir, None):
                pass
        left = fifo_dir / f"{'d' * 32}.sln"
        os.mkfifo(left, 0o600)
        with pytest.raises(FifoTapError):  # refused before it touched anything
            with claim_fifo_dir(fifo_dir, None):
                pass
        assert left.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with claim_fifo_dir(fifo_dir, None) as released:
        assert released == ["d" * 32]
    with claim_fifo_dir(fifo_dir, None) as released:  # released on exit, too
        assert released == []


# ---- against the real Asterisk ----------------------------------------------------------------


def asterisk_uid(asterisk) -> int:
    pid = int((asterisk.var_dir / "asterisk.pid").read_text())
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


@dataclass
class FifoEnv:
    dir: Path  # host path
    dir_asterisk: str  # as Asterisk sees it
    group: int | None


@pytest.fixture
def fifo_env(asterisk):
    d = asterisk.state_dir / FIFO_SUBDIR
    group = asterisk.group_id
    ensure_fifo_dir(d, group)
    for leftover in d.iterdir():  # a previous run that died
        leftover.unlink()
    env = FifoEnv(d, f"{CHROOT_STATE_DIR}/{FIFO_SUBDIR}", group)
    yield env
    assert list(d.iterdir()) == [], "FIFOs left behind"


@pytest.fixture
async def ami(asterisk):
    creds = asterisk.ami
    async with AmiClient(creds.host, creds.port, creds.username, creds.secret) as client:
        yield client


@dataclass
class BridgedCall:
    app: AriApp
    agent: str  # ARI channel ids
    visitor: str
    agent_name: str  # PJSIP/agent1-0000000a
    bridge: str
    agent_phone: Phone
    visitor_phone: Phone


@contextlib.asynccontextmanager
async def bridged_call(asterisk, *, agent_hangup_after_ms: int | None = None):
    """agent1 (440 Hz) and a visitor on the PSTN trunk (1000 Hz), both answered, in a mixing
    bridge of our own Stasis app. Hangs up whatever is left afterwards."""
    async with AriApp(asterisk, APP) as app, Phone(
        agent_port(1), "answer", answer_after_ms=50, hangup_after_ms=agent_hangup_after_ms,
    ) as agent_phone, Phone(
        PSTN_PORT, "answer", tone_hz=VISITOR_TONE_HZ, answer_after_ms=50,
    ) as visitor_phone:
        agent = await app.originate("PJSIP/agent1", timeout=10)
        visitor = await app.originate("PJSIP/+4915112345678@pstn", timeout=10)
        bridge = f"fifo-test-{uuid.uuid4()}"
        try:
            started = await app.wait_for("StasisStart", agent)
            await app.wait_for("StasisStart", visitor)
            status, body = await app.post("/bridges", type="mixing", bridgeId=bridge)
            assert status == 200, body
            status, body = await app.post(f"/bridges/{bridge}/addChannel", channel=f"{agent},{visitor}")
            assert status == 204, body
            yield BridgedCall(app, agent, visitor, started["channel"]["name"], bridge,
                              agent_phone, visitor_phone)
        finally:
            for cid in (agent, visitor):
                if not app.find("ChannelDestroyed", cid):
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(3):
                            await app.hangup(cid)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await asterisk.ari("DELETE", f"/bridges/{bridge}")
            for cid in (agent, visitor):
                with contextlib.suppress(TimeoutError):
                    await app.wait_for("ChannelDestroyed", cid, timeout=5)


async def hang_up(call: BridgedCall) -> None:
    for cid in (call.agent, call.visitor):
        await call.app.hangup(cid)
    for cid in (call.agent, call.visitor):
        await call.app.wait_for("ChannelDestroyed", cid)


def assert_both_tones(pcm: bytes, rate: int = DEFAULT_SAMPLE_RATE) -> dict[int, float]:
    fractions = band_fractions(pcm, rate)
    assert fractions[AGENT_TONE_HZ] > 0.1 and fractions[VISITOR_TONE_HZ] > 0.1, fractions
    assert sum(fractions.values()) > 0.8, fractions
    return fractions


@pytest.mark.asterisk
@pytest.mark.parametrize("rate", [8000, 16000])
async def test_records_both_parties_encrypted(asterisk, ami, fifo_env, recordings_dir, keys, caplog,
                                              rate):
    private, public = keys
    caplog.set_level(logging.DEBUG)
    async with bridged_call(asterisk) as call:
        tap = FifoTap(ami, fifo_env.dir, fifo_env.dir_asterisk, fifo_env.group)
        sink = RecordingSink(recordings_dir, public, sample_rate=rate)
        await tap.start(sink, channel_id=call.agent, channel_name=call.agent_name,
                        bridge_id=call.bridge, tap_channel_id="unused")
        t0 = time.monotonic()
        fifo = tap.path
        assert fifo.name.endswith(fifo_suffix(rate))
        st = fifo.lstat()
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620
        if fifo_env.group is not None:
            assert st.st_gid == fifo_env.group
        assert tap.pipe_size == pipe_size_for(DEFAULT_FIFO_SLACK_S, rate)

        # MixMonitor writes 32 KiB blocks: the first after ~1 s at 16 kHz, ~2 s at 8 kHz.
        await asyncio.sleep(2.5)
        # MixMonitor adds no bridge member: the bridge is simple_bridge (not softmix).
        status, bridge = await asterisk.ari("GET", f"/bridges/{call.bridge}")
        assert status == 200 and bridge["technology"] == "simple_bridge", bridge
        assert sorted(bridge["channels"]) == sorted([call.agent, call.visitor])
        # While the call runs: audio flows, and no file anywhere holds plaintext audio.
        assert tap.bytes_received > 0 and tap.first_byte_at is not None
        assert [p.name for p in fifo_env.dir.iterdir()] == [fifo.name]
        assert scan_for_plaintext(fifo_env.dir, recordings_dir, asterisk.state_dir) == []
        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))

        talk_s = time.monotonic() - t0
        t_hangup = asyncio.get_running_loop().time()
        await hang_up(call)
        report = await tap.finish(talk_s=talk_s)

    assert report.problem is None, report.problem
    assert tap.eof_at is not None
    eof_ms = (tap.eof_at - t_hangup) * 1000
    summary = report.summary
    assert summary.complete
    pcm = decrypt(summary.path, private)
    assert len(pcm) == summary.bytes_in == tap.bytes_received
    seconds = len(pcm) / bytes_per_second(rate)
    assert 0.9 * talk_s <= seconds <= talk_s + 0.3, (seconds, talk_s)
    fractions = assert_both_tones(pcm, rate)
    # After: only ciphertext anywhere, FIFO gone.
    assert list(fifo_env.dir.iterdir()) == []
    assert scan_for_plaintext(fifo_env.dir, recordings_dir, asterisk.state_dir) == []
    assert asterisk.ami.secret not in caplog.text
    print(f"\nFIFO {rate} Hz: {seconds:.2f} s of audio for {talk_s:.2f} s of call; EOF {eof_ms:.0f} ms after "
          f"the hangup request; tone shares {fractions}")


@pytest.mark.asterisk
async def test_mixmonitor_takes_the_ari_channel_id(asterisk, ami, fifo_env, recordings_dir, keys):
    """AMI MixMonitor's Channel accepts the unique id (ARI's channel id) as well as the name."""
    private, public = keys
    async with bridged_call(asterisk) as call:
        tap = FifoTap(ami, fifo_env.dir, fifo_env.dir_asterisk, fifo_env.group)
        await tap.start(RecordingSink(recordings_dir, public), channel_id=call.agent, channel_name="")
        t0 = time.monotonic()
        await asyncio.sleep(1.5)
        talk_s = time.monotonic() - t0
        await hang_up(call)
        report = await tap.finish(talk_s=talk_s)
    assert report.problem is None, report.problem
    assert_both_tones(decrypt(report.summary.path, private))


@pytest.mark.asterisk
@pytest.mark.parametrize("pipe_size", [None, 1 << 14], ids=["32s", "16KiB-control"])
async def test_reader_stall(asterisk, ami, fifo_env, recordings_dir, keys, pipe_size):
    """The reader pauses 8 s mid-call. With the default pipe (32 s of audio: 512 KiB at
    8 kHz) nothing is lost; with a 16 KiB pipe (the control: 1 s at 8 kHz) MixMonitor silently
    drops audio - which this test can see."""
    private, public = keys
    async with bridged_call(asterisk) as call:
        tap = FifoTap(ami, fifo_env.dir, fifo_env.dir_asterisk, fifo_env.group, pipe_size=pipe_size)
        await tap.start(RecordingSink(recordings_dir, public), channel_id=call.agent,
                        channel_name=call.agent_name)
        assert tap.pipe_size == (pipe_size or pipe_size_for(DEFAULT_FIFO_SLACK_S, DEFAULT_SAMPLE_RATE))
        t0 = time.monotonic()
        await asyncio.sleep(1.0)
        tap.suspend_reader()
        await asyncio.sleep(8.0)
        tap.resume_reader()
        await asyncio.sleep(1.5)
        talk_s = time.monotonic() - t0
        await hang_up(call)
        report = await tap.finish(talk_s=talk_s)
    received_s = report.summary.duration_s
    print(f"\npipe {tap.pipe_size // 1024} KiB, 8 s stall: {received_s:.2f} s of audio for "
          f"{talk_s:.2f} s of call")
    if pipe_size is None:
        assert report.problem is None, report.problem
        assert received_s >= 0.97 * talk_s, (received_s, talk_s)
        assert_both_tones(decrypt(report.summary.path, private))
    else:
        assert received_s < talk_s - 2.0, "the 16 KiB control lost nothing: is the test blind?"
        assert report.problem and report.problem.startswith("short recording")


@pytest.mark.asterisk
async def test_watchdog_releases_orphaned_fifo(asterisk, ami, fifo_env):
    """A FIFO + MixMonitor with no reader (an engine that died before opening it): after the
    hangup the channel does not go away. The watchdog opens/drains/closes/unlinks the FIFO and
    the channel is destroyed."""
    recording_id = uuid.uuid4().hex
    path = fifo_env.dir / f"{recording_id}{fifo_suffix(DEFAULT_SAMPLE_RATE)}"
    os.mkfifo(path, 0o600)
    if fifo_env.group is not None:
        os.chown(path, -1, fifo_env.group)
    os.chmod(path, 0o620)
    try:
        async with bridged_call(asterisk, agent_hangup_after_ms=2000) as call:
            await ami.mix_monitor(call.agent_name, f"{fifo_env.dir_asterisk}/{path.name}")
            await call.agent_phone.wait_for("bye_sent", timeout=10)
            await call.app.hangup(call.visitor)  # no MixMonitor on this one: goes at once
            await call.app.wait_for("ChannelDestroyed", call.visitor)
            await asyncio.sleep(2.0)
            stuck = {c["id"] for c in await asterisk.channels()}
            assert call.agent in stuck, "the orphan trap did not reproduce"
            assert not call.app.find("ChannelDestroyed", call.agent)

            released = release_orphaned_fifos(fifo_env.dir, lambda: set(), min_idle_s=1.0)
            assert released == [recording_id]
            t0 = time.monotonic()
            await call.app.wait_for("ChannelDestroyed", call.agent, timeout=5)
            print(f"\norphan: channel destroyed {1000 * (time.monotonic() - t0):.0f} ms after the "
                  "watchdog opened the FIFO")
    finally:
        release_orphaned_fifos(fifo_env.dir, lambda: set(), min_idle_s=0)
    assert not path.exists()


@pytest.mark.asterisk
async def test_fail_closed_missing_fifo(asterisk, ami, fifo_env, recordings_dir, keys):
    """MixMonitor pointed at a path in the FIFO directory where no FIFO is: Asterisk (not root)
    cannot create a file there, so no plaintext recording appears; the tap reports the
    recording failed."""
    if asterisk_uid(asterisk) == 0:
        why = ("Asterisk runs as root: a missing FIFO would become a plaintext file "
               "(scripts/asterisk must start it as the chroot's asterisk user)")
        unavailable(why)  # CI runs as root, so Asterisk must have dropped to its user
    d_mode = stat.S_IMODE(fifo_env.dir.stat().st_mode)
    assert d_mode & 0o022 == 0, oct(d_mode)

    class FifoVanishes:
        """The FIFO is removed just before MixMonitor is sent (premature cleanup)."""

        def __init__(self, ami, tap_ref):
            self.ami, self.tap_ref = ami, tap_ref

        async def mix_monitor(self, channel, file, options=""):
            os.unlink(self.tap_ref[0].path)
            await self.ami.mix_monitor(channel, file, options)

    public = keys[1]
    log_before = asterisk.messages_log.stat().st_size
    async with bridged_call(asterisk) as call:
        ref: list[FifoTap] = []
        tap = FifoTap(FifoVanishes(ami, ref), fifo_env.dir, fifo_env.dir_asterisk, fifo_env.group)
        ref.append(tap)
        await tap.start(RecordingSink(recordings_dir, public), channel_id=call.agent,
                        channel_name=call.agent_name)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # nothing ever appears at the path
            assert not tap.path.exists()
            await asyncio.sleep(0.05)
        talk_s = time.monotonic() - t0
        await hang_up(call)
        report = await tap.finish(talk_s=talk_s)
    assert report.problem and report.problem.startswith("no audio"), report.problem
    assert report.summary.bytes_in == 0
    assert list(fifo_env.dir.iterdir()) == []
    assert scan_for_plaintext(fifo_env.dir, recordings_dir, asterisk.state_dir) == []
    with open(asterisk.messages_log, "rb") as f:
        f.seek(log_before)
        new_log = f.read().decode(errors="replace")
    assert tap.path.name in new_log, new_log[-2000:]
    print("\nAsterisk logged: " + " | ".join(
        line.split("]", 1)[-1].strip() for line in new_log.splitlines() if tap.path.name in line))


@pytest.mark.asterisk
async def test_ami_error_unknown_channel(asterisk, ami, fifo_env, recordings_dir, keys):
    tap = FifoTap(ami, fifo_env.dir, fifo_env.dir_asterisk, fifo_env.group)
    sink = RecordingSink(recordings_dir, keys[1])
    with pytest.raises(AmiError) as caught:
        await tap.start(sink, channel_id="no-such-id", channel_name="PJSIP/nobody-00000000")
    assert caught.value.message == "No such channel"
    assert str(caught.value) == "AMI MixMonitor: No such channel"
    assert not caught.value.unavailable
    assert list(fifo_env.dir.iterdir()) == []
    assert sink.recording_id not in fifo_mod.active_fifo_ids()
    sink.abort()
    # The session is still usable after an error.
    with pytest.raises(AmiError, match="No such channel"):
        await ami.mix_monitor("PJSIP/nobody-00000001", f"{fifo_env.dir_asterisk}/x.sln16")


@pytest.mark.asterisk
async def test_ami_login_refused(asterisk, caplog):
    caplog.set_level(logging.DEBUG)
    creds = asterisk.ami
    client = AmiClient(creds.host, creds.port, creds.username, "wrong-secret-" + uuid.uuid4().hex,
                       connect_timeout=5)
    t0 = time.monotonic()
    with pytest.raises(AmiError, match="Authentication failed"):
        await client.connect()
    assert time.monotonic() - t0 < 3
    assert "wrong-secret" not in caplog.text
    await asyncio.sleep(2.5)  # panoramisk's reconnect timer must not log in again
    assert "wrong-secret" not in caplog.text


async def test_ami_unreachable_is_an_error():
    client = AmiClient("127.0.0.1", 1, "u", "s", connect_timeout=0.5)
    with pytest.raises(AmiError) as caught:
        await client.connect()
    assert caught.value.unavailable


async def test_ami_refuses_header_injection():
    client = AmiClient("127.0.0.1", 1, "u", "s")
    with pytest.raises(ValueError, match="line break"):
        await client.action({"Action": "MixMonitor", "Channel": "x\r\nAction: Originate"})
    with pytest.raises(ValueError, match="comma"):
        await client.mix_monitor("PJSIP/a-1", "/tmp/a,b.sln16")


@pytest.mark.asterisk
async def test_ami_reconnects_after_a_dropped_connection(asterisk):
    """panoramisk reconnects and logs in again; meanwhile actions fail fast as unavailable."""
    from tests.support.tcp_proxy import TcpProxy

    creds = asterisk.ami
    async with TcpProxy(creds.host, creds.port) as proxy:
        async with AmiClient("127.0.0.1", proxy.port, creds.username, creds.secret,
                             reconnect_timeout=1) as client:
            assert (await client.action({"Action": "Ping"})).get("Ping") == "Pong"
            proxy.drop()
            await asyncio.sleep(0.05)
            assert not client.connected
            with pytest.raises(AmiError) as caught:
                await client.mix_monitor("PJSIP/nobody-00000000", "/nowhere/x.sln16")
            assert caught.value.unavailable
            deadline = time.monotonic() + 5
            while not client.connected:
                assert time.monotonic() < deadline, "no reconnect within 5 s"
                await asyncio.sleep(0.05)
            with pytest.raises(AmiError, match="No such channel"):  # a real answer again
                await client.mix_monitor("PJSIP/nobody-00000000", "/nowhere/x.sln16")


def test_ami_secret_never_reaches_the_log(caplog):
    from panoramisk.actions import Action

    from callengine.asterisk import ami as ami_mod

    caplog.set_level(logging.DEBUG)
    secret = "s3cr3t-" + uuid.uuid4().hex
    AmiClient("127.0.0.1", 5038, "callengine", secret)

    async def log_like_panoramisk():
        action = Action({"Action": "Login", "Username": "callengine", "Secret": secret})
        ami_mod._panoramisk_log.exception("Fail to send %r", action)  # panoramisk's own line
        ami_mod._panoramisk_log.info("sent: %s", str(action))
        ami_mod._panoramisk_log.info("a=%s", secret)

    asyncio.run(log_like_panoramisk())
    assert secret not in caplog.text
    assert caplog.text.count("********") >= 3
