"""The engine's retention purge, in a process of its own (started by retention.PurgeProcess).

Run in the engine, the purge's threads shared the interpreter lock with the event loop that
serves visitors, and intake's p99 doubled while it ran (bench/bench_purge.py); a process of its
own, at a lower CPU priority, shares only the cores. Writes to the store still take the
engine's write lock, in turns given over the pipes (TurnLock), so the engine's writers queue
behind at most one batch instead of polling SQLite's lock.

The pipes carry lines. stdin: first the job as JSON (paths, `now`, the data key: a secret,
so never in argv or the environment), then `go` for each turn granted. stdout: `turn` (asks
for the write lock), `done` (gives it back), `progress <what> <done> <total>`, and last
`report <PurgeReport as JSON>` (or `incomplete <why>`: ErasureIncomplete, then exit 1). The
log goes to stderr, as the engine's does.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from callengine.config import OutboxRetention
from callengine.errors import ErasureIncomplete
from callengine.logs import setup_logging
from callengine.recordings import RecordingVault
from callengine.retention import BACKGROUND_NICE, Purger
from callengine.storage import KeyStore, open_store

PROGRESS_EVERY_S = 0.2


class TurnLock:
    """The engine's write lock, seen from here: acquire asks for a turn and waits for `go`.
    The purge's own writers (its Store and its batches) first queue on a local lock, so one
    turn is asked for at a time. A purge cancelled while it waits ends the process, and the
    engine releases a turn whose holder went."""

    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader
        self._local = asyncio.Lock()

    async def acquire(self) -> bool:
        await self._local.acquire()
        try:
            _send("turn")
            if await self._reader.readline() != b"go\n":
                raise ConnectionError("the engine closed the purge's pipe")
        except BaseException:
            self._local.release()
            raise
        return True

    def release(self) -> None:
        _send("done")
        self._local.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info) -> None:
        self.release()


class _Progress:
    """Progress lines, at most every PROGRESS_EVERY_S (and the last): each wakes the engine."""

    def __init__(self) -> None:
        self._sent_at = 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        moment = time.monotonic()
        if moment - self._sent_at >= PROGRESS_EVERY_S or done == total:
            self._sent_at = moment
            _send("progress", what, str(done), str(total))


def _send(*words: str) -> None:
    # A few bytes at a time to a pipe the engine reads at once: a blocking write never waits.
    os.write(sys.stdout.fileno(), (" ".join(words) + "\n").encode())


async def _purge() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    job = json.loads(await reader.readline())
    lock = TurnLock(reader)
    async with open_store(Path(job["database"]), base64.b64decode(job["data_key"]),
                          keystore=Path(job["keystore"]), write_lock=lock,
                          audit_dir=Path(job.get("audit_dir") or Path(job["keystore"]).parent),
                          url=job.get("url"), password=job.get("password", "")
                          ) as store, \
            KeyStore.open(Path(job["keystore"])) as keystore:
        vault = RecordingVault(Path(job["recordings_dir"]), keystore)
        try:
            outbox = OutboxRetention(*job.get("outbox", ()))
            report = await Purger(store, vault, outbox=outbox).run(job["now"],
                                                                   progress=_Progress())
        except ErasureIncomplete as exc:  # the engine raises it again, typed
            _send("incomplete", str(exc).replace("\n", " "))
            raise
    _send("report", json.dumps(dataclasses.asdict(report)))


def main() -> None:
    # The whole process, before any thread exists (threads inherit it): SCHED_IDLE runs it
    # only on CPU time nothing else wants, and a waking request or call preempts it at once
    # (bench/bench_purge.py: at nice 10, the engine's event loop still stalled up to 62 ms).
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):  # not Linux, or not permitted: a nice value, if allowed
        try:
            os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0),
                                                   BACKGROUND_NICE))
        except OSError:
            pass
    setup_logging()
    asyncio.run(_purge())


if __name__ == "__main__":
    main()
