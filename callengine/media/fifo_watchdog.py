"""The FIFO watchdog: releases the recording FIFOs a crashed or killed engine left behind.

A FIFO that no live tap owns (the engine crashed or was killed) may have a MixMonitor
blocked on it, which keeps its channel up forever. `release_orphaned_fifos` (and the
`fifo_watchdog` loop around it) opens, drains, closes and unlinks such FIFOs; the open alone
releases a blocked MixMonitor, and after the close its writes fail with EPIPE (Asterisk logs
"Broken pipe" every ~2 s until the call ends) instead of blocking.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

from callengine.media.fifo import FIFO_SUFFIXES, READ_CHUNK, _unlink, active_fifo_ids

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
