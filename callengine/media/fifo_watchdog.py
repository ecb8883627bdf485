"""The FIFO watchdog: releases the recording FIFOs a crashed or killed engine left behind.

A FIFO that no live tap owns (the engine crashed or was killed) may have a MixMonitor
blocked on it, which keeps its channel up forever. `release_orphaned_fifos` (and the
`fifo_watchdog` loop around it) opens, drains, closes and unlinks such FIFOs; the open alone
releases a blocked MixMonitor, and after the close its writes fail with EPIPE (Asterisk logs
"Broken pipe" every ~2 s until the call ends) instead of blocking.

After a kill, the FIFOs are released at the engine's start, all of them, by `claim_fifo_dir`:
the engine holds an exclusive lock on the FIFO directory for as long as it runs, so whatever
is in the directory when the lock is won was left by an engine that is dead. The periodic
passes' idle rule (a FIFO written in the last `min_idle_s` is left alone) cannot tell a dead
engine's FIFO from a live one's - MixMonitor's writes into a pipe without a reader fail and
leave its mtime alone, but the last one before the kill may be a second old - so it is not
what releases them.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from callengine.media.fifo import (
    FIFO_SUFFIXES,
    READ_CHUNK,
    FifoTapError,
    _unlink,
    active_fifo_ids,
    ensure_fifo_dir,
)

# The FIFO route's log, as before the watchdog had a module of its own.
log = logging.getLogger("callengine.media.fifo")

_DRAIN_LIMIT = 64 << 20  # what the watchdog drains from one orphan at most


def release_orphaned_fifos(
    fifo_dir_host: Path,
    active_ids: Callable[[], set[str]] = active_fifo_ids,
    *,
    min_idle_s: float = 2.0,
) -> list[str]:
    """One pass of the watchdog. Returns the recording ids whose FIFO (or plaintext file) it
    removed.

    A `<id>.sln` or `<id>.sln16` FIFO whose id is not active and that has been idle for
    min_idle_s (so one being set up right now is left alone) is opened non-blocking, drained,
    closed and unlinked.
    Opening it releases a MixMonitor blocked in open(); after the close its writes fail with
    EPIPE instead of blocking, so its channel can hang up. A *regular file* in the FIFO
    directory can only be MixMonitor's plaintext output (a FIFO went missing and the directory
    let Asterisk create one): it is removed at once and logged as an error."""
    fifo_dir_host = Path(fifo_dir_host)
    released: list[str] = []
    try:
        entries = list(os.scandir(fifo_dir_host))
    except FileNotFoundError:
        return released
    active = active_ids()
    now = time.time()
    for entry in entries:
        name = entry.name
        suffix = next((x for x in FIFO_SUFFIXES.values() if name.endswith(x)), None)
        if suffix is None:
            continue
        recording_id = name[: -len(suffix)]
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        path = Path(entry.path)
        if stat.S_ISREG(st.st_mode):
            log.error("plaintext audio file %s in the FIFO directory (%d bytes): removing it. "
                      "Asterisk could create it: fix the directory's ownership/mode and make "
                      "sure Asterisk does not run as root", path, st.st_size)
            _unlink(path)
            released.append(recording_id)
            continue
        if not stat.S_ISFIFO(st.st_mode) or recording_id in active:
            continue
        if now - st.st_mtime < min_idle_s:  # mtime: creation or the last write into it
            continue
        drained = _drain_and_close(path)
        _unlink(path)
        released.append(recording_id)
        log.warning("released orphaned recording FIFO %s (%d bytes discarded): no recording "
                    "in this engine owns it", name, drained)
    return released


@contextmanager
def claim_fifo_dir(fifo_dir_host: Path, group: int | None) -> Iterator[list[str]]:
    """The FIFO directory, this engine's alone while the block runs. Yields the recording ids
    whose FIFO (or plaintext file) a dead engine had left there, now released.

    1. `ensure_fifo_dir` (owner, group, 0710: the fail-closed rules).
    2. An exclusive flock on the directory itself (no file is added to it). Another running
       engine holding it is refused (`FifoTapError`): two engines in one directory would take
       each other's FIFOs for orphans. The kernel drops the lock when its holder's process
       ends, however it ends (SIGKILL included), so winning it proves the previous holder dead.
    3. Every FIFO in the directory that no tap of this process owns is released at once,
       whatever its age (`release_orphaned_fifos` with min_idle_s=0), and any regular file is
       removed. The composition root claims the directory before the engine exists, so this is
       done before the engine connects to Asterisk and hangs up the dead engine's channels (a
       MixMonitor blocked in open() would otherwise block that hangup too)."""
    fifo_dir_host = Path(fifo_dir_host)
    ensure_fifo_dir(fifo_dir_host, group)
    fd = os.open(fifo_dir_host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FifoTapError(
                f"FIFO directory {fifo_dir_host} is in use by another running engine: "
                "give each engine its own recording.fifo_dir") from None
        yield release_orphaned_fifos(fifo_dir_host, active_fifo_ids, min_idle_s=0)
    finally:
        os.close(fd)  # drops the lock


def _drain_and_close(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT,):
            log.warning("could not open orphaned FIFO %s: %s", path, exc)
        return 0
    drained = 0
    try:
        while drained < _DRAIN_LIMIT:  # bounded: at most what a pipe can hold, many times
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                break
            drained += len(chunk)
    finally:
        os.close(fd)
    return drained


async def fifo_watchdog(
    fifo_dir_host: Path,
    active_ids: Callable[[], set[str]] = active_fifo_ids,
    interval: float = 5.0,
    *,
    min_idle_s: float | None = None,
) -> None:
    """Run release_orphaned_fifos every `interval` s, forever (cancel the task to stop it).
    The first pass runs at once: after an engine crash, leftovers are released on start-up."""
    idle = interval if min_idle_s is None else min_idle_s
    while True:
        try:
            release_orphaned_fifos(fifo_dir_host, active_ids, min_idle_s=idle)
        except Exception:
            log.exception("FIFO watchdog pass failed")
        await asyncio.sleep(interval)
