"""The FIFO route: MixMonitor writes the call into a named pipe; the engine drains and encrypts it.

Engine and Asterisk on one host (they share the FIFO directory). Costs what plain MixMonitor
costs (the bridge stays simple_bridge), and the plaintext exists only in Asterisk's and our RAM:
the pipe is a kernel buffer, never a file. docs/recording-taps.md ("FIFO route") has the
measurements; the traps below were all observed on Asterisk 22.10.1.

One recording, step by step (FifoTap.start / finish), in the sink's sample rate:
1. mkfifo `<fifo_dir>/<recording_id>.sln` (8 kHz) or `.sln16` (16 kHz), mode 0620, group =
   Asterisk's group: Asterisk may write into it, nobody else may read it.
2. Open the reader, non-blocking, **before** MixMonitor exists. MixMonitor's thread opens its
   file with a blocking open(); a FIFO without a reader blocks it forever, and then the channel
   never goes away after hangup (and StopMixMonitor / ARI calls on it hang too).
3. Also open a "keeper" write end (non-blocking; it succeeds because our reader exists). A
   non-blocking reader of a FIFO that has no writer reads EOF (b"") - before MixMonitor has
   opened it that would be a false end of stream. With the keeper open there is always a writer,
   so an empty pipe reads EAGAIN, not EOF. The first byte that arrives proves MixMonitor has
   its own write end open: the keeper is closed then, and from that moment EOF means
   "MixMonitor closed the file", which it does 2-6 ms after the channel hangs up. finish()
   closes the keeper in any case (a MixMonitor that never wrote a byte, or never opened the
   FIFO at all, then shows up as EOF with 0 bytes: a failed recording, not a hang).
4. Enlarge the pipe from 64 KiB to `slack_s` (32 s) of audio: 512 KiB at 8 kHz, 1 MiB at
   16 kHz (F_SETPIPE_SZ, within /proc/sys/fs/pipe-max-size). With 64 KiB a reader that stalls
   ~2-4 s makes MixMonitor block and then silently drop audio. **Fail closed**: a pipe the
   kernel will not enlarge (EPERM: the engine's user holds more than
   /proc/sys/fs/pipe-user-pages-soft pages of pipes, 64 MiB by default) would leave well under
   a second of slack (8 KiB), so start() refuses the recording (FifoPipeError) before
   MixMonitor is ever sent.
5. Drain with loop.add_reader: each wake-up reads everything available into one reused buffer
   and feeds the sink (AES-GCM costs microseconds per frame), so the reader never stalls the
   event loop and never lets the pipe fill. If the sink fails (disk full), we keep draining and
   discard: a reader that stops reading would block MixMonitor and with it the hangup.
6. Send MixMonitor over AMI for `<fifo_dir_asterisk>/<recording_id>.sln` (the same FIFO as
   Asterisk sees it; the extension makes MixMonitor write signed-linear mono at that rate).
7. finish(): wait for EOF, close (or on a broken stream abort) the sink, unlink the FIFO, and
   compare bytes received with talk_s x bytes per second (16,000 at 8 kHz, 32,000 at
   16 kHz): under 90 % is reported as a short recording.

We never send StopMixMonitor: MixMonitor ends with the channel, and StopMixMonitor on a FIFO
without a reader hangs. The tap's reader is there from before MixMonitor starts until EOF.

Fail closed. If the FIFO is missing when MixMonitor opens its path (premature cleanup, a typo),
MixMonitor creates a regular file there and writes the call into it in plaintext. The defence is
in the file system: the FIFO directory belongs to the engine's user, its group is Asterisk's
group, mode 0710 (Asterisk may enter, never create), and Asterisk must not run as root (root
ignores modes). `check_fifo_dir` refuses a directory that anyone but its owner may write.
Behind that, two checks catch a plaintext file if it appears anyway: finish() looks at the path
before unlinking (a regular file where our FIFO was is removed and reported), and the watchdog
removes any regular file in the FIFO directory. Bytes received against call duration catch the
rest: a recording whose audio went elsewhere is short.

Orphans (a FIFO no live tap owns, after a crash) are released in
callengine/media/fifo_watchdog.py: all at once when the next engine claims the directory
(claim_fifo_dir), anything later by the watchdog; the pipe sizes and the kernel's per-user pipe budget are in
callengine/media/pipe_sizes.py.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import re
import stat
from pathlib import Path
from typing import Protocol

from callengine.audio import DEFAULT_FIFO_SLACK_S, check_sample_rate
from callengine.media.pipe_sizes import pipe_size_for
from callengine.recorder import RecordingSink, TapReport

log = logging.getLogger(__name__)

# MixMonitor picks the format from the extension: signed-linear mono at 8 or 16 kHz.
FIFO_SUFFIXES = {8000: ".sln", 16000: ".sln16"}
SHORT_RATIO = 0.9  # fewer bytes than this share of talk_s x bytes/s is a short recording
FIFO_MODE = 0o620  # engine reads, Asterisk's group writes, nobody else
DIR_MODE = 0o710  # engine owns, Asterisk's group may enter (not list, not create)

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)

READ_CHUNK = 1 << 16
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Recording ids of the FIFO taps running in this process (the watchdog's default view of what
# is not orphaned). Added before the FIFO exists, removed after it is unlinked.
_active: set[str] = set()


def active_fifo_ids() -> set[str]:
    return set(_active)


class FifoTapError(Exception):
    """The FIFO route cannot record safely (directory unsafe, FIFO cannot be made)."""


class FifoPipeError(FifoTapError):
    """The kernel would not give the FIFO the pipe buffer it needs (see pipe_size_for)."""


def fifo_suffix(sample_rate: int) -> str:
    return FIFO_SUFFIXES[check_sample_rate(sample_rate)]


class MixMonitorStarter(Protocol):
    async def mix_monitor(self, channel: str, file: str, options: str = "") -> None: ...


# ---- the FIFO directory -------------------------------------------------------------------------


def ensure_fifo_dir(path: Path, group: int | None) -> None:
    """Create the FIFO directory if needed and give it the fail-closed ownership and mode:
    owner = this process's user, group = Asterisk's group, 0710. For the engine's start-up and
    tests; an administrator may instead create it by hand (docs/recording-taps.md)."""
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise FifoTapError(f"FIFO directory {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise FifoTapError(f"FIFO directory {path} belongs to uid {st.st_uid}, not to the engine")
    if group is not None and st.st_gid != group:
        os.chown(path, -1, group)
    os.chmod(path, DIR_MODE if group is not None else 0o700)
    check_fifo_dir(path)


def check_fifo_dir(path: Path) -> None:
    """Refuse a FIFO directory in which anyone but its owner could create files: there, a
    missing FIFO would let MixMonitor write a plaintext recording (fail closed)."""
    try:
        st = Path(path).lstat()
    except FileNotFoundError:
        raise FifoTapError(f"FIFO directory {path} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise FifoTapError(f"FIFO directory {path} is not a directory (symlinks are refused)")
    if st.st_mode & 0o022:
        raise FifoTapError(
            f"FIFO directory {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}): "
            "Asterisk could create a plaintext file there; make it 0710, owner = engine, "
            "group = Asterisk's group"
        )
    if st.st_uid != os.geteuid():
        raise FifoTapError(f"FIFO directory {path} belongs to uid {st.st_uid}, not to the engine")


# ---- the tap ----------------------------------------------------------------------------------


class FifoTap:
    """One recording over MixMonitor → FIFO (recorder.Tap). Make a new one per recording."""

    def __init__(
        self,
        ami: MixMonitorStarter,
        fifo_dir_host: Path,
        fifo_dir_asterisk: str,
        fifo_group: int | None,
        *,
        slack_s: float = DEFAULT_FIFO_SLACK_S,
        pipe_size: int | None = None,
        mix_monitor_options: str = "",
    ):
        """slack_s: seconds of audio the pipe must hold (sized in start(), from the sink's
        rate); pipe_size: an exact size instead (tests)."""
        self._ami = ami
        self.fifo_dir_host = Path(fifo_dir_host)
        self.fifo_dir_asterisk = fifo_dir_asterisk.rstrip("/")
        self.fifo_group = fifo_group
        self.slack_s = slack_s
        self.wanted_pipe_size = pipe_size
        self._options = mix_monitor_options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: RecordingSink | None = None
        self.path: Path | None = None
        self.asterisk_path: str | None = None
        self.pipe_size = 0  # what the kernel granted
        self.bytes_received = 0
        self.first_byte_at: float | None = None  # loop time of the first byte (MixMonitor attached)
        self.eof_at: float | None = None
        self._rfd = -1
        self._keeper = -1  # our own write end until MixMonitor's has shown up (see step 3)
        self._ino: tuple[int, int] | None = None
        self._created = False  # the FIFO at self.path is ours to unlink
        self._reading = False
        self._suspended = False
        self._eof = asyncio.Event()
        self._buf = bytearray(READ_CHUNK)
        self._view = memoryview(self._buf)
        self._read_error: str | None = None
        self._sink_error: str | None = None
        self._finished = False

    # -- Tap protocol -----------------------------------------------------------------------

    async def start(
        self,
        sink: RecordingSink,
        *,
        channel_id: str,
        channel_name: str,
        bridge_id: str = "",
        tap_channel_id: str = "",
    ) -> None:
        """Make the FIFO, start reading it, then start MixMonitor on the channel.

        channel_name (ARI's channel.name) is what MixMonitor is given; the ARI channel id
        (Asterisk's unique id) works as well and is the fallback. bridge_id/tap_channel_id are
        not used: MixMonitor on one party of a two-party bridge hears both (read + write mixed).
        On any failure nothing is left behind (no FIFO, no reader) and the error propagates;
        the sink is the caller's to abort. A pipe that cannot be enlarged is such a failure
        (FifoPipeError), raised before MixMonitor is sent."""
        if self._sink is not None:
            raise RuntimeError("a FifoTap records one call; make a new one")
        recording_id = sink.recording_id
        if not _ID.fullmatch(recording_id):
            raise FifoTapError(f"recording id {recording_id!r} is not safe in a file name")
        check_fifo_dir(self.fifo_dir_host)
        suffix = fifo_suffix(sink.sample_rate)
        if self.wanted_pipe_size is None:
            self.wanted_pipe_size = pipe_size_for(self.slack_s, sink.sample_rate)
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        self.path = self.fifo_dir_host / f"{recording_id}{suffix}"
        self.asterisk_path = f"{self.fifo_dir_asterisk}/{recording_id}{suffix}"
        _active.add(recording_id)  # before the FIFO exists: the watchdog must never take it
        try:
            self._make_fifo()
            self._open_ends()
            self._set_pipe_size()
            self._loop.add_reader(self._rfd, self._on_readable)
            self._reading = True
            # MixMonitor answers at once; its thread opens the FIFO on the first audio frame.
            await self._ami.mix_monitor(channel_name or channel_id, self.asterisk_path, self._options)
        except BaseException:
            self._teardown()
            raise
        log.info("recording %s: MixMonitor → FIFO started (pipe %d KiB)",
                 recording_id, self.pipe_size // 1024)

    async def finish(self, *, talk_s: float, timeout: float = 5.0) -> TapReport:
        """The call ended: wait for MixMonitor to close the FIFO (EOF), seal the recording,
        remove the FIFO and compare what arrived with talk_s."""
        if self._sink is None:
            raise RuntimeError("FifoTap.finish() before start()")
        if self._finished:
            raise RuntimeError("FifoTap.finish() called twice")
        self._finished = True
        sink = self._sink
        if self._suspended:
            self.resume_reader()
        # MixMonitor has its write end (it wrote) or it never will (the call is over):
        # without the keeper the next EOF is the real end either way.
        self._close_keeper()
        if self._reading:
            self._on_readable()  # EOF may be there already, without a wake-up
        no_eof = None
        if not self._eof.is_set():
            try:
                await asyncio.wait_for(self._eof.wait(), timeout)
            except TimeoutError:
                no_eof = f"Asterisk did not close the FIFO within {timeout:g} s of the call's end"
        replaced = self._teardown()

        broken = self._sink_error or self._read_error or no_eof
        if broken:
            summary = sink.abort()
        else:
            try:
                summary = sink.close()
            except Exception as exc:  # sealing the last segment failed (disk full, I/O error)
                broken = f"could not seal the recording: {exc}"
                summary = sink.abort()

        rate = sink.bytes_per_second
        expected = round(max(talk_s, 0.0) * rate)
        received = self.bytes_received
        problem = replaced or broken
        if problem is None and expected and received == 0:
            problem = ("no audio: MixMonitor never wrote to the FIFO (could it open it? "
                       "see Asterisk's log for the FIFO path)")
        elif problem is None and received < SHORT_RATIO * expected:
            problem = (f"short recording: {received / rate:.1f} s of audio for "
                       f"{talk_s:.1f} s of call ({received} of {expected} bytes)")
        if problem:
            log.warning("recording %s: %s", sink.recording_id, problem)
        return TapReport(
            summary=summary,
            expected_bytes=expected,
            lost_bytes=max(0, expected - received),
            problem=problem,
        )

    # -- test and diagnostic hooks ------------------------------------------------------------

    def suspend_reader(self) -> None:
        """Stop draining (the pipe buffers what MixMonitor writes). For tests of a stalled
        reader; never leave it suspended: a full pipe blocks MixMonitor and the hangup."""
        if self._reading and not self._suspended:
            assert self._loop is not None
            self._loop.remove_reader(self._rfd)
            self._suspended = True

    def resume_reader(self) -> None:
        if self._suspended:
            assert self._loop is not None
            self._suspended = False
            self._loop.add_reader(self._rfd, self._on_readable)
            self._on_readable()

    # -- internals ----------------------------------------------------------------------------

    def _make_fifo(self) -> None:
        assert self.path is not None
        try:
            os.mkfifo(self.path, 0o600)  # never reuse a path: FileExistsError if it is there
        except FileExistsError:
            raise FifoTapError(f"{self.path} already exists") from None
        self._created = True
        if self.fifo_group is not None:
            os.chown(self.path, -1, self.fifo_group)
        os.chmod(self.path, FIFO_MODE)  # exact, whatever the umask

    def _open_ends(self) -> None:
        assert self.path is not None
        flags = os.O_NONBLOCK | os.O_CLOEXEC
        self._rfd = os.open(self.path, os.O_RDONLY | flags)
        st = os.fstat(self._rfd)
        if not stat.S_ISFIFO(st.st_mode):  # someone swapped the path between mkfifo and open
            raise FifoTapError(f"{self.path} is not the FIFO we made")
        self._ino = (st.st_dev, st.st_ino)
        # Succeeds at once (not ENXIO) because our reader is open.
        self._keeper = os.open(self.path, os.O_WRONLY | flags)

    def _set_pipe_size(self) -> None:
        """Fail closed: a pipe smaller than wanted would drop audio after a short stall."""
        wanted = self.wanted_pipe_size
        assert wanted is not None
        try:
            self.pipe_size = fcntl.fcntl(self._rfd, F_SETPIPE_SZ, wanted)
            why = f"got {self.pipe_size}"
        except OSError as exc:
            # EPERM for an unprivileged user over pipe-user-pages-soft/-hard (or above
            # pipe-max-size, which pipe_size_for never asks for).
            self.pipe_size = fcntl.fcntl(self._rfd, F_GETPIPE_SZ)
            why = errno.errorcode.get(exc.errno or 0, str(exc))
        if self.pipe_size < wanted:
            raise FifoPipeError(
                f"FIFO pipe could not be enlarged to {wanted} bytes ({why}): raise "
                "fs.pipe-user-pages-soft or run the engine with CAP_SYS_RESOURCE")

    def _on_readable(self) -> None:
        """Read everything there is now; feed the sink. Runs in the event loop."""
        sink = self._sink
        assert sink is not None
        while self._rfd >= 0:
            try:
                n = os.readv(self._rfd, [self._buf])
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError as exc:
                self._read_error = f"reading the FIFO failed: {exc}"
                self._end_of_stream()
                return
            if n == 0:
                # No writer left. The keeper is gone only after MixMonitor's first byte or in
                # finish(), so this is MixMonitor closing the file (the channel hung up).
                self._end_of_stream()
                return
            if self.first_byte_at is None:
                assert self._loop is not None
                self.first_byte_at = self._loop.time()
                self._close_keeper()  # MixMonitor has its own write end now
            self.bytes_received += n
            if self._sink_error is None:
                try:
                    sink.feed(self._view[:n])
                except Exception as exc:  # keep draining: a full pipe would block the hangup
                    self._sink_error = f"writing the recording failed: {exc}"
                    log.error("recording %s: %s; draining the FIFO without recording",
                              sink.recording_id, self._sink_error)

    def _end_of_stream(self) -> None:
        if self._reading:
            assert self._loop is not None
            if not self._suspended:
                self._loop.remove_reader(self._rfd)
            self._reading = False
        if self._loop is not None:
            self.eof_at = self._loop.time()
        self._eof.set()

    def _close_keeper(self) -> None:
        if self._keeper >= 0:
            os.close(self._keeper)
            self._keeper = -1

    def _teardown(self) -> str | None:
        """Stop reading, close both ends, unlink the FIFO. Returns a problem if the path no
        longer holds our FIFO (and removes what is there: that can only be plaintext audio)."""
        problem = None
        if self._reading and self._loop is not None and not self._suspended:
            self._loop.remove_reader(self._rfd)
        self._reading = False
        self._close_keeper()
        if self._rfd >= 0:
            os.close(self._rfd)
            self._rfd = -1
        if self.path is not None and self._created:
            try:
                st = self.path.lstat()
            except FileNotFoundError:
                st = None
                log.warning("recording %s: the FIFO %s was removed by someone else",
                            self._sink.recording_id if self._sink else "?", self.path)
            if st is not None:
                ours = stat.S_ISFIFO(st.st_mode) and self._ino in (None, (st.st_dev, st.st_ino))
                if not ours:
                    problem = (f"{self.path} was replaced by a {_kind(st.st_mode)} "
                               f"({st.st_size} bytes): removed; Asterisk may have written the "
                               "call there in plaintext (check the FIFO directory's ownership "
                               "and that Asterisk does not run as root)")
                    log.error("recording %s: %s", self._sink.recording_id if self._sink else "?",
                              problem)
                _unlink(self.path)
            self._created = False
        if self._sink is not None:
            _active.discard(self._sink.recording_id)
        return problem


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISFIFO(mode):
        return "different FIFO"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "non-FIFO"


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
