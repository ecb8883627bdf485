"""How fast does a retention purge go, and what does it do to lead intake while it runs?

    .venv/bin/python bench/bench_purge.py [--leads 1000000] [--recordings 100000]
    .venv/bin/python bench/bench_purge.py --quick          # 50,000 leads, 5,000 recordings

Targets (the issue): purge 1,000,000 expired leads and 100,000 recordings in <= 60 s on a
2-core machine; intake p99 latency while the purge runs <= 2x the idle p99.

Seeding (not measured). A fresh store, keystore and recordings directory in a temporary
directory on disk (`--dir`, default /var/tmp; the file system type is printed, tmpfs is
refused unless --allow-tmpfs). One widget (lead retention 30 days, recording retention 7 days,
rate limits at their maxima). N closed leads created 35..400 days ago, each with one finished
attempt; M of them (evenly spread) with one real recording: 2 s of 8 kHz audio (the default
rate) written by
RecordingSink to its own X25519 key, that key sealed for the recipient and kept in the
keystore, as the engine does (RecordingVault.new_file_key). Rows are bulk-inserted with
sqlite3 directly (the Store API does one transaction per row: far too slow for a million).
Each lead is its own data subject, as in the store (docs/backup.md): a random subject id on
the lead row, a fresh subject key wrapped by the store's FieldCipher and kept with the
number's keyed hash in the keystore's subject_keys, the personal fields encrypted under that
key, so rows and keystore are as big as real ones. Rows are built, and recordings written, by a process pool, then os.sync() so no dirty
page of the seeding is left for the purge's os.sync() to pay for.

Measured as the engine runs it (app.py): the real aiohttp app (make_app) on 127.0.0.1, new
leads committed to the intake journal and moved into the store by its mover task, and the
purge in a child process (retention.PurgeProcess) that takes turns on the engine's write lock.
With --in-process, `Purger.run(now)` runs on this event loop instead, on its own Store
connection sharing the write lock, and every call it makes is timed. The load generator is a
subprocess (this script with --loadgen), so its clock isn't stalled by what it measures: an
open loop at --rate requests/s, each a valid lead for a fresh Polish mobile number (no rate
limit can trip), latency from send to the last byte of the response.

  1. idle:   --idle-seconds of intake, no purge (after a short warm-up)
  2. purge:  intake at the same rate while the purge purges everything expired

Printed: purge wall time and CPU (this process per thread, and the purge's process), leads/s
and recordings/s per phase, with --in-process where the purge's time goes (every Store/vault
call it makes is timed by wrapping it), event-loop stalls, I/O, and intake p50/p95/p99 idle vs
during the purge with the p99 ratio, and intake's server-side parts. With --profile FILE, py-spy
samples this process during the purge (raw collapsed stacks to FILE; top frames printed).

Diagnosis only (each is printed in yellow when used; none is the shipped code):
--in-process (above); --what-if-pragma runs a PRAGMA on the purge's batch connection,
--what-if-hold-ms changes the transaction hold the purge sizes its batches for, and the other
--what-if-* flags likewise: these act on this process, so only with --in-process.
--max-purge-seconds cancels the purge (safe: batches are atomic) and extrapolates.

Checked afterwards (exit 1 if any fails; timings are never asserted): the purge reports N
leads and M recordings; no expired lead is left; N tombstones; no recording file, no
recording row and no keystore entry is left, no subject key that no lead names (each
lead's is kept); every accepted intake lead is still there.
With --max-purge-seconds: consistency instead (every expired lead kept or tombstoned, no key
without its file, no file without its live row).
"""

from __future__ import annotations

import argparse
import resource
import asyncio
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from common import ADMIN_TOKEN, DATA_KEY, REPO, parser, serve

DAY = 86400.0
WIDGET_ID = "shop"
LEAD_RETENTION_DAYS = 30
RECORDING_RETENTION_DAYS = 7
OLDEST_DAYS, YOUNGEST_DAYS = 400.0, 35.0  # seeded leads' ages: all past both retentions
AUDIO_SECONDS = 2.0
AUDIO_RATE = 8000  # Hz of the seeded recordings: recording.sample_rate's default
OTHER_THREADS = "purge-sqlite + file removal"
SEED_CHUNK = 10_000  # leads per seeding task
FIRST = ["Anna", "Piotr", "Maria", "Krzysztof", "Katarzyna", "Tomasz", "Agnieszka", "Paweł"]
LAST = ["Nowak", "Kowalska", "Wiśniewski", "Wójcik", "Kamińska", "Lewandowski", "Zielińska"]


# ---- seeding (worker processes) ---------------------------------------------------------------

_W: dict[str, Any] = {}


def _worker_init(data_key: bytes, recipient_public: bytes, recordings_dir: str) -> None:
    from callengine.crypto import FieldCipher

    rate = AUDIO_RATE
    n = int(AUDIO_SECONDS * rate)
    tone = struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * 440 * i / rate))
                                  for i in range(n)))
    _W.update(cipher=FieldCipher(data_key), public=recipient_public,
              dir=Path(recordings_dir), pcm=tone)


@dataclass
class SeedPlan:
    leads: int
    recordings: int
    now: float

    @property
    def rec_every(self) -> int:
        return max(1, self.leads // self.recordings) if self.recordings else 0

    def has_recording(self, i: int) -> bool:
        return bool(self.recordings) and i % self.rec_every == 0 and i // self.rec_every < self.recordings


def uuid7_at(t: float) -> str:
    """A UUIDv7 (RFC 9562) for time t: what uuid6.uuid7() would have made then."""
    raw = bytearray(int(t * 1000).to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
    raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))


def _seed_chunk(start: int, stop: int, plan: SeedPlan) -> tuple[list, list, list, list, list]:
    """Rows for leads [start, stop), their attempts and their subjects' keys; recordings
    written to disk, with their rows and sealed keys. Column lists: see the INSERTs in seed()."""
    from callengine import crypto
    from callengine.recorder import RecordingSink, new_recording_id
    from callengine.recordings import key_context

    cipher, public, directory, pcm = _W["cipher"], _W["public"], _W["dir"], _W["pcm"]
    recipient_kid = crypto.key_id(public).hex()
    span = (OLDEST_DAYS - YOUNGEST_DAYS) * DAY
    leads, attempts, recordings, keys, subjects = [], [], [], [], []
    for i in range(start, stop):
        created = plan.now - OLDEST_DAYS * DAY + span * i / plan.leads  # oldest first, as in life
        # UUIDv7 as the Store makes them, stamped with the row's own (past) creation time
        lead_id, attempt_id = uuid7_at(created), uuid7_at(created + 5.0)
        phone = f"+4850{i:07d}"
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
        email = f"lead{i}@example.com"
        recorded = plan.has_recording(i)
        closed = created + 150.0
        # As create_lead does for a new number (storage/intake.py): a random subject id, a
        # fresh key wrapped under the data key, the fields encrypted under that key.
        subject_id = str(uuid.uuid4())
        subject, wrapped = cipher.new_subject_key(subject_id)
        subjects.append((subject_id, cipher.number_hash(phone), wrapped, created))
        leads.append((
            lead_id, WIDGET_ID, subject_id,
            subject.encrypt(phone, f"leads.phone:{lead_id}"), "PL", "mobile",
            subject.encrypt(name, f"leads.name:{lead_id}"),
            subject.encrypt(email, f"leads.email:{lead_id}"),
            i % 2, int(recorded), "v7", "done", None, "connected", None, 1, None,
            created, closed, closed,
        ))
        attempts.append((attempt_id, lead_id, 1, "done", created + 5.0, closed, "connected",
                         16, None, "alice", 4.0, 7.5, 120.0, 1))
        if recorded:
            recording_id = new_recording_id()
            # As RecordingVault.new_file_key: a key pair per recording, its private half sealed
            # for the recipient and kept in the keystore, the file written to its public half.
            file_private, file_public = crypto.generate_recipient_keypair()
            sealed = crypto.seal(file_private, public, key_context(recording_id))
            sink = RecordingSink(directory, file_public, recording_id=recording_id,
                                 sample_rate=AUDIO_RATE)
            sink.feed(pcm)
            summary = sink.close()
            started = created + 40.0
            recordings.append((recording_id, lead_id, attempt_id, "fifo", recipient_kid,
                               "complete", started, started + summary.duration_s,
                               summary.duration_s, summary.bytes_in, summary.segments,
                               summary.sha256, None, None, summary.sample_rate))
            keys.append((recording_id, sealed, started))
    return leads, attempts, recordings, keys, subjects


# These mirror the schema in callengine/storage/schema.py (MIGRATIONS) and the keystore's tables
# (storage/keystore.py): bulk inserts for seeding speed only; the purge itself runs the real code.
INSERT_LEAD = (
    "INSERT INTO leads (id, widget_id, subject_id, phone_enc, phone_region, phone_kind,"
    " name_enc, email_enc, consent_marketing, consent_recording, clause_version, status,"
    " progress, outcome, cause, attempts, next_attempt_at, created_at, updated_at, closed_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_ATTEMPT = (
    "INSERT INTO attempts (id, lead_id, number, status, started_at, ended_at, outcome, q850,"
    " cause, agent, agent_ring_s, visitor_ring_s, talk_s, connected)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_RECORDING = (
    "INSERT INTO recordings (id, lead_id, attempt_id, route, key_id, status, started_at,"
    " ended_at, duration_s, bytes, segments, sha256, problem, deleted_at, sample_rate)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_KEY = "INSERT INTO recording_keys (recording_id, sealed_key, created_at) VALUES (?, ?, ?)"
INSERT_SUBJECT = ("INSERT INTO subject_keys (subject_id, number_hash, wrapped_key, created_at)"
                  " VALUES (?, ?, ?, ?)")


async def create_store(paths: Paths, now: float) -> str:
    """Schema, agent, group and widget through the real Store; returns the widget's public key."""
    from callengine.flow import Strategy
    from callengine.model import Agent, widget_settings_from_input
    from callengine.storage import KeyStore, Store

    async with Store.open(paths.db, DATA_KEY, keystore=paths.keystore) as store, \
            KeyStore.open(paths.keystore):
        await store.add_agent(Agent("alice", "PJSIP/alice"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget(WIDGET_ID, "Shop", widget_settings_from_input({
            "group": "sales", "allowed_regions": ["PL"],
            "lead_retention_days": LEAD_RETENTION_DAYS,
            "recording_retention_days": RECORDING_RETENTION_DAYS,
            "max_leads_per_number_per_day": 100, "max_leads_per_hour": 100_000,
            "challenge": "off", "max_numbers_per_client_per_hour": 100_000,
            "max_numbers_per_client_per_day": 100_000,
        }), now - 500 * DAY)
        return widget.public_key


def seed(paths: Paths, plan: SeedPlan, recipient_public: bytes, console) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    db = sqlite3.connect(paths.db, isolation_level=None)
    keys_db = sqlite3.connect(paths.keystore, isolation_level=None)
    for conn in (db, keys_db):
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
    workers = os.cpu_count() or 2
    chunks = [(s, min(s + SEED_CHUNK, plan.leads)) for s in range(0, plan.leads, SEED_CHUNK)]
    pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_worker_init,
                               initargs=(DATA_KEY, recipient_public, str(paths.recordings)))
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with pool, Progress(*columns, console=console) as progress:
        lead_task = progress.add_task("leads + attempts", total=plan.leads)
        rec_task = progress.add_task("recordings (files)", total=plan.recordings)
        pending: list[Future] = []
        queue = iter(chunks)

        def submit() -> None:
            chunk = next(queue, None)
            if chunk is not None:
                pending.append(pool.submit(_seed_chunk, *chunk, plan))

        for _ in range(workers * 2):  # bounded: rows don't pile up in memory
            submit()
        while pending:
            leads, attempts, recordings, keys, subjects = pending.pop(0).result()
            submit()
            # the keys first, as the engine: a row never names a key not kept
            keys_db.execute("BEGIN")
            keys_db.executemany(INSERT_SUBJECT, subjects)
            keys_db.executemany(INSERT_KEY, keys)
            keys_db.execute("COMMIT")
            db.execute("BEGIN")
            db.executemany(INSERT_LEAD, leads)
            db.executemany(INSERT_ATTEMPT, attempts)
            db.executemany(INSERT_RECORDING, recordings)
            db.execute("COMMIT")
            progress.advance(lead_task, len(leads))
            progress.advance(rec_task, len(recordings))
    for conn in (db, keys_db):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()


# ---- load generator (subprocess) ----------------------------------------------------------


def loadgen_main(args: argparse.Namespace) -> None:
    """Open loop: request k is sent at t0 + k/rate whatever happened to the ones before, until
    --duration elapses or a line (or EOF) arrives on stdin; then waits for every answer and
    prints [[sent (CLOCK_MONOTONIC, system-wide), latency s, HTTP status or 0], ...] as JSON."""
    asyncio.run(_loadgen(args))


async def _loadgen(args: argparse.Namespace) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(stop.set)

    if args.duration <= 0:  # else stdin is not ours to watch (communicate() closes it at once)
        threading.Thread(target=watch_stdin, daemon=True).start()
    results: list[list[float]] = []
    timeout = aiohttp.ClientTimeout(total=60)

    async def send(session: aiohttp.ClientSession, k: int) -> None:
        body = {"phone": f"+4869{args.number_base + k:07d}", "name": "Jan Kowalski",
                "email": f"visitor{k}@example.com",
                "consent": {"marketing": False, "recording": True}, "clause_version": "v7"}
        sent = time.monotonic()
        status = 0
        try:
            async with session.post(args.loadgen, json=body) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        results.append([sent, time.monotonic() - sent, status])

    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = []
        t0 = time.monotonic()
        k = 0
        while not stop.is_set() and (args.duration <= 0 or k / args.rate < args.duration):
            delay = t0 + k / args.rate - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            tasks.append(asyncio.create_task(send(session, k)))
            k += 1
        await asyncio.gather(*tasks)
    json.dump(results, sys.stdout)


class LoadGen:
    def __init__(self, url: str, rate: float, number_base: int, duration: float = 0.0):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--loadgen", url, "--rate", str(rate),
             "--number-base", str(number_base), "--duration", str(duration)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)

    async def results(self, stop: bool = False) -> list[list[float]]:
        def finish() -> bytes:
            out, _ = self.process.communicate(b"stop\n" if stop else None)
            return out

        out = await asyncio.to_thread(finish)
        if self.process.returncode != 0:
            raise RuntimeError(f"load generator failed ({self.process.returncode})")
        return json.loads(out)


# ---- measuring ---------------------------------------------------------------------------------


@dataclass
class Paths:
    root: Path
    db: Path = field(init=False)
    keystore: Path = field(init=False)
    recordings: Path = field(init=False)

    def __post_init__(self) -> None:
        self.db = self.root / "callengine.db"
        self.keystore = self.root / "keystore.db"
        self.recordings = self.root / "recordings"


class Timers:
    """Wall time of each call the purge makes (wrapped on the instances: the code is the real
    code), with the first time each was seen, to split the purge into its phases."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.first: dict[str, float] = {}
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._patched: list[tuple[Any, str, Any]] = []

    def restore(self) -> None:
        for obj, name, original in reversed(self._patched):
            setattr(obj, name, original)
        self._patched.clear()

    def record(self, name: str, start: float, keep: bool) -> None:
        elapsed = time.monotonic() - start
        self.calls[name].append(elapsed)
        self.first.setdefault(name, start)
        if keep:
            self.samples[name].append((start, elapsed))

    def wrap(self, obj: Any, name: str, label: str | None = None, keep: bool = False) -> None:
        original = getattr(obj, name)
        self._patched.append((obj, name, original))
        label = label or name

        if asyncio.iscoroutinefunction(original):
            async def timed(*args, **kwargs):
                start = time.monotonic()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self.record(label, start, keep)
        else:
            def timed(*args, **kwargs):
                start = time.monotonic()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.record(label, start, keep)
        setattr(obj, name, timed)


class FsyncProbe:
    """Every 10 ms, in a thread of its own: write 4 KiB to a small file of its own beside the
    store and fdatasync it. What a commit costs on this disk when it need not wait for anybody
    else's pages of the same file (intake's commit fsyncs the WAL the purge writes too)."""

    def __init__(self, directory: Path) -> None:
        self.samples: list[tuple[float, float]] = []
        self._path = directory / "fsync-probe"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fsync-probe", daemon=True)

    def _run(self) -> None:
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o600)
        block = b"p" * 4096
        try:
            while not self._stop.wait(0.01):
                start = time.monotonic()
                os.pwrite(fd, block, 0)
                os.fdatasync(fd)
                self.samples.append((start, time.monotonic() - start))
        finally:
            os.close(fd)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, t0: float, t1: float) -> list[float]:
        return [e for s, e in self.samples if t0 <= s <= t1]


class LoopLag:
    """How late a 10 ms sleep wakes up: the event loop was busy (blocked) for that long."""

    def __init__(self) -> None:
        self.lags: list[tuple[float, float]] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append((start, time.monotonic() - start - 0.01))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def window(self, t0: float, t1: float) -> list[float]:
        return [lag for start, lag in self.lags if t0 <= start <= t1]


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, by native thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def machine_cpu() -> tuple[int, int, int, int]:
    """(busy, iowait, total, steal) jiffies of the whole machine; busy includes steal (time
    the hypervisor gave another guest)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = values[3], values[4]
    total = sum(values[:8])
    return total - idle - iowait, iowait, total, values[7]


def proc_io() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = int(value)
    return out


def disk_written(path: Path) -> int | None:
    """Bytes the block device holding `path` has written so far (/proc/diskstats): what really
    reached the disk. /proc/self/io's write_bytes over-counts on kernels with large folios
    (dirtying 4 KiB of a large page-cache folio counts the whole folio)."""
    st = path.stat()
    try:
        name = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}").resolve().name
        for line in Path("/proc/diskstats").read_text().splitlines():
            fields = line.split()
            if fields[2] == name:
                return int(fields[9]) * 512
    except OSError:
        pass
    return None


def fs_of(path: Path) -> str:
    best, kind = "", "?"
    target = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, fstype = line.split()[:3]
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, kind = mount, f"{fstype} on {device} (mounted at {mount})"
    return kind


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


# ---- the run ---------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, paths: Paths, public_key: str, plan: SeedPlan,
                  console) -> list[str]:
    from rich.table import Table

    from callengine import crypto, recordings as recordings_mod, retention
    from callengine.recordings import RecordingVault
    from callengine.retention import Purger, PurgeProcess, PurgeReport, PurgeTarget
    from callengine.storage import KeyStore, PurgeBatches, Store
    from callengine.services import Services
    from callengine.web import WebDeps, make_app

    failures: list[str] = []
    py_spy = None
    if args.profile:
        py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if py_spy is None:
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
    # As app.py runs them: intake on the engine's Store, the purge on its own connection, the
    # two taking turns on one write lock.
    async with Store.open(paths.db, DATA_KEY, keystore=paths.keystore) as store, \
            Store.open(paths.db, DATA_KEY, keystore=paths.keystore,
                       write_lock=store.write_lock) as purge_store, \
            KeyStore.open(paths.keystore) as keystore:
        vault = RecordingVault(paths.recordings, keystore)
        timers = Timers()
        if args.what_if_pragma:
            # on the connection the purge's batches run on (PurgeBatches, made per purge)
            connect = PurgeBatches._connect

            def connect_with_pragmas(self):
                db = connect(self)
                for pragma in args.what_if_pragma:
                    db.execute(f"PRAGMA {pragma}")
                return db

            PurgeBatches._connect = connect_with_pragmas
            timers._patched.append((PurgeBatches, "_connect", connect))  # undone by restore()
            console.print(f"[yellow]what-if[/]: PRAGMA {', '.join(args.what_if_pragma)} on the"
                          " purge's batch connection")
        if args.what_if_switch_ms:
            sys.setswitchinterval(args.what_if_switch_ms / 1000)
            console.print(f"[yellow]what-if[/]: sys.setswitchinterval({args.what_if_switch_ms:g} ms)")
        if args.what_if_nice is not None:
            retention.BACKGROUND_NICE = args.what_if_nice
            console.print(f"[yellow]what-if[/]: retention.BACKGROUND_NICE = {args.what_if_nice}")
        if args.what_if_hold_ms:
            retention.HOLD_TARGET_S = args.what_if_hold_ms / 1000
            console.print(f"[yellow]what-if[/]: retention.HOLD_TARGET_S = {retention.HOLD_TARGET_S}")
        runner, origin = await serve(make_app(WebDeps(Services(store, vault=vault),
                                                      ADMIN_TOKEN)))
        url = f"{origin}/api/v1/widgets/{public_key}/leads"
        lag = LoopLag()
        lag.start()
        probe = FsyncProbe(paths.root)
        probe.start()
        for name in ("get_widget_by_key", "create_lead"):
            timers.wrap(store, name, f"intake.{name}", keep=True)
        # Inside create_lead: the wait for the intake journal's lock (another request's
        # commit), then the INSERT with its commit (the fsync of the journal's WAL).
        intake_lock_acquire = store._journal_lock.acquire  # the mover takes it too: not it

        async def timed_acquire() -> bool:
            if asyncio.current_task().get_name() == "intake-mover":
                return await intake_lock_acquire()
            start = time.monotonic()
            try:
                return await intake_lock_acquire()
            finally:
                timers.record("intake.journal lock wait", start, keep=True)

        store._journal_lock.acquire = timed_acquire
        intake_fetchall = store._journal.execute_fetchall  # aiosqlite's: not a coroutine function

        async def timed_fetchall(sql, *args, **kwargs):
            if not sql.startswith("INSERT"):  # the mover's read
                return await intake_fetchall(sql, *args, **kwargs)
            start = time.monotonic()
            try:
                return await intake_fetchall(sql, *args, **kwargs)
            finally:
                timers.record("intake.statement + commit", start, keep=True)

        store._journal.execute_fetchall = timed_fetchall

        idle: list[list[float]] = []
        idle_cpu = 0.0
        if args.rate > 0:
            console.print(f"[bold]idle intake[/]: {args.rate:g} req/s for {args.idle_seconds:g} s "
                          f"(after {args.warmup:g} s of warm-up) → {url.split('/api')[0]}")
            c0, w0 = time.process_time(), time.monotonic()
            idle_all = await LoadGen(url, args.rate, 0, args.warmup + args.idle_seconds).results()
            idle_cpu = (time.process_time() - c0) / (time.monotonic() - w0)
            start = min(r[0] for r in idle_all) + args.warmup
            idle = [r for r in idle_all if r[0] >= start]

        # Every call the purge makes, timed.
        for name in ("list_widgets", "acquire_lease", "release_lease", "count_expired_leads",
                     "count_expired_recordings", "live_recording_id_set"):
            timers.wrap(purge_store, name, f"store.{name}")
        for name in ("expired_leads", "purge_leads", "expired_recordings",
                     "mark_recordings_deleted"):
            timers.wrap(PurgeBatches, name, f"batches.{name}")  # the class: made per purge
        timers.wrap(PurgeBatches, "_checkpoint", "  batches._checkpoint (its own thread)",
                    keep=True)
        timers.wrap(keystore, "delete", "  keystore.delete", keep=True)
        timers.wrap(crypto, "destroy_key", "  crypto.destroy_key (each file)")
        timers.wrap(recordings_mod.os, "sync", "  os.sync", keep=True)
        timers.wrap(vault, "destroy_keys", "vault.destroy_keys")
        timers.wrap(vault, "remove_files", "  vault.remove_files (worker thread)")
        purger = Purger(purge_store, vault)
        if args.what_if_pause_ms:
            between = purger._between_batches

            async def paced(batches) -> None:
                await between(batches)
                await asyncio.sleep(args.what_if_pause_ms / 1000)

            purger._between_batches = paced
            console.print(f"[yellow]what-if[/]: a {args.what_if_pause_ms:g} ms pause after each"
                          " purge batch")

        if args.what_if_mover_off:
            # New leads stay in the journal until the store closes: no store commit (and no
            # fsync of the WAL the purge fills) per lead while the purge runs.
            async def no_move() -> None:
                pass

            store._keep_moving = no_move
            console.print("[yellow]what-if[/]: the intake journal's mover off during the purge")
        loadgen = LoadGen(url, args.rate, 5_000_000) if args.rate > 0 else None
        if loadgen:
            await asyncio.sleep(2.0)
        profiler = None
        if args.profile:
            profiler = subprocess.Popen(
                [py_spy, "record", "--pid", str(os.getpid()), "--rate", "100", "--threads",
                 "--nonblocking", "--format", "raw", "--output", args.profile],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)
        now = time.time()
        disk0 = disk_written(paths.root)
        threads0, cpu0, machine0, io0 = thread_cpu(), time.process_time(), machine_cpu(), proc_io()
        t0 = time.monotonic()
        last_note = [t0]
        done_so_far = {"recordings": 0, "leads": 0}  # committed batches, for a capped run
        phase_began: dict[str, float] = {}  # first progress of each phase
        notes: list[str] = []

        def progress(what: str, done: int, total: int) -> None:
            done_so_far[what] = done
            moment = time.monotonic()
            phase_began.setdefault(what, moment)
            if moment - last_note[0] >= 5 or done == total:
                last_note[0] = moment
                # printed after the purge: a write to a file while the purge fills the page
                # cache can be throttled (balance_dirty_pages), and this is the event loop
                notes.append(f"  {moment - t0:6.1f} s  {what}: {done:,}/{total:,}")

        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if args.in_process:
            console.print(f"[bold]purge[/]: Purger.run(now) in this process, intake at"
                          f" {args.rate:g} req/s")
            task = asyncio.create_task(purger.run(now, progress=progress), name="purge")
        else:
            # As app.py runs it: a child process, given turns on the store's write lock.
            console.print(f"[bold]purge[/]: PurgeProcess.run(now) (a child process, as the"
                          f" engine runs it), intake at {args.rate:g} req/s")
            process = PurgeProcess(PurgeTarget(paths.db, paths.keystore, paths.recordings,
                                               DATA_KEY), store)
            task = asyncio.create_task(process.run(now, progress=progress), name="purge")
        await asyncio.wait({task}, timeout=args.max_purge_seconds or None)
        capped = not task.done()
        if capped:
            # Interrupting a purge is safe by design (atomic batches): the rest stays for later.
            t1 = time.monotonic()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            report = PurgeReport(recordings=done_so_far["recordings"], leads=done_so_far["leads"])
        else:
            report = task.result()
            t1 = time.monotonic()
        threads1, cpu1, machine1, io1 = thread_cpu(), time.process_time(), machine_cpu(), proc_io()
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        disk1 = disk_written(paths.root)
        if profiler:
            profiler.send_signal(signal.SIGINT)
            await asyncio.to_thread(profiler.wait, 30)
        during: list[list[float]] = []
        if loadgen:
            await asyncio.sleep(1.0)
            during_all = await loadgen.results(stop=True)
            during = [r for r in during_all if t0 <= r[0] <= t1]
        if args.what_if_mover_off:
            del store._keep_moving
            await store._move_new_leads()  # what the journal kept, for the checks
        lag.stop()
        probe.stop()
        timers.restore()
        await runner.cleanup()

        # ---- figures ----
        for note in notes:
            console.print(note)
        wall, cpu = t1 - t0, cpu1 - cpu0
        names = {threading.main_thread().native_id: "event loop (main)",
                 store._db._thread.native_id: "intake SQLite thread",
                 purge_store._db._thread.native_id: "purge's Store thread (aiosqlite)",
                 keystore._db._thread.native_id: "keystore SQLite thread"}
        per_thread: dict[str, float] = defaultdict(float)
        for tid, seconds in threads1.items():
            if tid in names:
                per_thread[names[tid]] += seconds - threads0.get(tid, 0.0)
        # The rest (by difference, since threads that ended are gone from /proc): PurgeBatches'
        # purge-sqlite thread, file removal in to_thread workers.
        per_thread[OTHER_THREADS] = cpu1 - cpu0 - sum(per_thread.values())
        busy = machine1[0] - machine0[0]
        steal = machine1[3] - machine0[3]
        iowait = machine1[1] - machine0[1]
        total = machine1[2] - machine0[2]
        ncpu = os.cpu_count() or 1
        # Leads first (with their recordings), then recordings past their own retention.
        first_recordings = timers.first.get("batches.expired_recordings",
                                            phase_began.get("recordings", t1))
        lead_phase = first_recordings - t0
        rec_phase = t1 - first_recordings
        console.print()
        console.print(f"[bold]purge result[/]: {report.summary()} "
                      f"(recordings {report.recordings:,}, leads {report.leads:,}, "
                      f"recordings with their lead {report.lead_recordings:,})")
        if capped:
            console.print(f"[red]INCOMPLETE[/]: cancelled after --max-purge-seconds "
                          f"{args.max_purge_seconds:g}; counts are committed batches only")
        console.print(f"purge wall time     {wall:8.2f} s   (target ≤ 60 s)")
        console.print(f"engine CPU (process) {cpu:7.2f} s   = {cpu / wall:.2f} cores"
                      f"; intake at idle costs {idle_cpu:.3f} cores of it")
        if not args.in_process:
            child_cpu = sum(getattr(children1, f) - getattr(children0, f)
                            for f in ("ru_utime", "ru_stime"))
            console.print(f"purge process CPU   {child_cpu:8.2f} s   = {child_cpu / wall:.2f}"
                          " cores")
        for name in ("event loop (main)", "intake SQLite thread",
                     "purge's Store thread (aiosqlite)", "keystore SQLite thread",
                     OTHER_THREADS):
            console.print(f"    {name:<34}{per_thread.get(name, 0.0):8.2f} s")
        console.print(f"machine CPU         busy {busy / total * ncpu:.2f} of {ncpu} cores, "
                      f"iowait {iowait / total * ncpu:.2f} cores, stolen by the host"
                      f" {steal / total * ncpu:.2f} cores")
        console.print(f"I/O of this process  wrote {(io1['write_bytes'] - io0['write_bytes']) / 1e6:,.0f} MB,"
                      f" read {(io1['read_bytes'] - io0['read_bytes']) / 1e6:,.0f} MB"
                      " (over-counts: see disk_written)")
        if disk0 is not None and disk1 is not None:
            console.print(f"disk wrote          {(disk1 - disk0) / 1e6:,.0f} MB during the purge"
                          " (the whole device: everything running)")
        console.print(f"leads phase         {lead_phase:8.2f} s   "
                      f"{report.leads / lead_phase if lead_phase > 0 else 0:10,.0f} leads/s, "
                      f"with {report.lead_recordings:,} of their recordings")
        console.print(f"recordings phase    {rec_phase:8.2f} s   "
                      f"{report.recordings / rec_phase if rec_phase > 0 else 0:10,.0f} recordings/s"
                      " (past their own retention, their leads kept)")
        console.print(f"overall             {report.leads / wall:10,.0f} leads/s, "
                      f"{(report.recordings + report.lead_recordings) / wall:,.0f} recordings/s")
        if capped:
            if report.leads and "batches.expired_recordings" not in timers.first:
                rate = report.leads / lead_phase
                console.print(
                    f"extrapolated: leads phase ≈ {plan.leads / rate:,.0f} s"
                    f" ({plan.leads - report.leads:,} leads to go at {rate:,.0f}/s), then the"
                    f" recordings their leads did not take along")
            else:
                console.print("extrapolated: nothing (no lead purged, or the leads phase ended)")

        if args.in_process:
            table = Table(title="where the purge's time goes (wall time of each call, awaited"
                                " in turn)")
            for column in ("call", "calls", "total s", "% of purge", "mean ms", "max ms"):
                table.add_column(column, justify="left" if column == "call" else "right")
            for name, values in timers.calls.items():
                if name.startswith("intake."):
                    continue
                table.add_row(name, f"{len(values):,}", f"{sum(values):.2f}",
                              f"{100 * sum(values) / wall:.1f}",
                              f"{1000 * statistics.fmean(values):.1f}",
                              f"{1000 * max(values):.1f}")
            console.print(table)
        else:
            held = sorted(process.held)
            console.print(f"turns the engine gave the purge process: {len(held):,}, each held"
                          f" p50 {1000 * pct(held, 50):.1f} ms, p99 {1000 * pct(held, 99):.1f}"
                          f" ms, {sum(held):.1f} s in all; waited for the lock p50"
                          f" {1000 * pct(process.waits, 50):.2f} ms, p99"
                          f" {1000 * pct(process.waits, 99):.2f} ms")
        stalls = lag.window(t0, t1)
        if stalls:
            long = [s for s in stalls if s > 0.05]
            console.print(f"event loop stalls during the purge: max {1000 * max(stalls):.0f} ms, "
                          f"{len(long)} over 50 ms totalling {sum(long):.2f} s")

        if args.rate > 0:
            table = Table(title=f"intake latency (ms), open loop at {args.rate:g} req/s")
            for column in ("", "requests", "not 201", "p50", "p95", "p99", "max"):
                table.add_column(column, justify="right")
            rows = {}
            for label, sample in (("idle", idle), ("during purge", during)):
                ok = [r[1] for r in sample]
                rows[label] = ok
                bad = sum(1 for r in sample if r[2] != 201)
                table.add_row(label, f"{len(sample):,}", f"{bad}",
                              *(f"{1000 * pct(ok, q):.1f}" for q in (50, 95, 99, 100)))
            console.print(table)
            idle99, during99 = pct(rows["idle"], 99), pct(rows["during purge"], 99)
            console.print(f"intake p99 during/idle = {during99 * 1000:.1f} / {idle99 * 1000:.1f} ms"
                          f" = [bold]{during99 / idle99:.1f}x[/] (target ≤ 2)")
            for name in ("intake.get_widget_by_key", "intake.create_lead",
                         "intake.journal lock wait", "intake.statement + commit"):
                inside = [e for s, e in timers.samples[name] if t0 <= s <= t1]
                before = [e for s, e in timers.samples[name] if s < t0 - 2.0]
                console.print(f"  server side {name[7:]:<24} p99 idle {1000 * pct(before, 99):7.1f} ms,"
                              f" during purge {1000 * pct(inside, 99):7.1f} ms")
            print_slow_commits(timers, t0, t1, console)
            idle_probe = [e for s, e in probe.samples if s < t0 - 2.0]
            during_probe = probe.window(t0, t1)
            console.print(
                f"fsync of a file of its own (4 KiB, every 10 ms): p50 / p99 idle"
                f" {1000 * pct(idle_probe, 50):.1f} / {1000 * pct(idle_probe, 99):.1f} ms, during"
                f" the purge {1000 * pct(during_probe, 50):.1f} / {1000 * pct(during_probe, 99):.1f}"
                f" ms")
            accepted = sum(1 for r in idle_all + during_all if r[2] == 201)
        if profiler:
            print_profile(Path(args.profile), console)

    # ---- checks (plain sqlite3, the store closed) ----
    cutoff = now - LEAD_RETENTION_DAYS * DAY
    db = sqlite3.connect(paths.db)
    expired_left = db.execute("SELECT COUNT(*) FROM leads WHERE status = 'done' AND created_at < ?",
                              (cutoff,)).fetchone()[0]
    tombstones = db.execute("SELECT COUNT(*) FROM lead_tombstones WHERE reason = 'retention'"
                            ).fetchone()[0]
    recording_rows = db.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
    attempts_left = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    leads_left = db.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
    db.close()
    keys_left = sqlite3.connect(paths.keystore).execute(
        "SELECT COUNT(*) FROM recording_keys").fetchone()[0]
    # Every purged lead's subject forgotten (each seeded lead is its own); intake's stay.
    subjects_kept = {row[0] for row in sqlite3.connect(paths.keystore).execute(
        "SELECT subject_id FROM subject_keys")}
    subjects_named = {row[0] for row in sqlite3.connect(paths.db).execute(
        "SELECT DISTINCT subject_id FROM leads")}
    subjects_unused = len(subjects_kept - subjects_named)
    subjects_missing = len(subjects_named - subjects_kept)
    files_left = sum(1 for _ in paths.recordings.iterdir())
    live_ids = {row[0] for row in sqlite3.connect(paths.db).execute(
        "SELECT id FROM recordings WHERE status != 'deleted'")}
    key_ids = {row[0] for row in sqlite3.connect(paths.keystore).execute(
        "SELECT recording_id FROM recording_keys")}
    file_ids = {p.name.removesuffix(".cerec") for p in paths.recordings.iterdir()}
    # A file whose row went keeps nothing readable: its key was destroyed first (the next
    # purge's sweep removes it).
    unreadable_orphans = {f for f in file_ids if f not in live_ids and f not in key_ids}
    if capped:
        # Not finished: what went, went whole, in the order that can't leave a readable file.
        checks = [
            ("every expired lead kept or tombstoned", tombstones + expired_left == plan.leads,
             f"{tombstones:,} tombstones + {expired_left:,} left"),
            ("tombstones ≥ committed batches", tombstones >= report.leads, f"{tombstones:,}"),
            ("every lead left has its attempt", attempts_left == expired_left, f"{attempts_left:,}"),
            ("no key without its file", keys_left <= files_left,
             f"{keys_left:,} keys, {files_left:,} files"),
            ("every file has a live row or no key", all(
                f in live_ids or f not in key_ids for f in file_ids),
             f"{files_left:,} files, {len(live_ids):,} live rows, "
             f"{len(unreadable_orphans):,} keyless orphans"),
        ]
    else:
        checks = [
            ("purge reported every lead", report.leads == plan.leads, f"{report.leads:,}"),
            ("purge reported every recording", report.recordings + report.lead_recordings
             == plan.recordings, f"{report.recordings + report.lead_recordings:,}"),
            ("expired leads left", expired_left == 0, f"{expired_left:,}"),
            ("tombstones", tombstones == plan.leads, f"{tombstones:,}"),
            ("attempt rows left", attempts_left == 0, f"{attempts_left:,}"),
            ("recording files left", files_left == 0, f"{files_left:,}"),
            ("recording rows left", recording_rows == 0, f"{recording_rows:,}"),
            ("keystore entries left", keys_left == 0, f"{keys_left:,}"),
            ("subject keys left that no lead names", subjects_unused == 0,
             f"{subjects_unused:,} (of {len(subjects_kept):,} kept)"),
        ]
    checks.append(("every lead's subject key kept", subjects_missing == 0,
                   f"{subjects_missing:,} missing"))
    if args.rate > 0:
        checks.append(("every accepted intake lead kept", leads_left - expired_left == accepted,
                       f"{leads_left - expired_left:,} of {accepted:,}"))
    console.print()
    for what, ok, value in checks:
        console.print(f"  {'[green]ok[/]  ' if ok else '[red]FAIL[/]'} {what}: {value}")
        if not ok:
            failures.append(what)
    console.print(f"store after purge: {du(paths.db) / 1e6:,.0f} MB"
                  f" (+ WAL {du(paths.db.with_name(paths.db.name + '-wal')) / 1e6 if paths.db.with_name(paths.db.name + '-wal').exists() else 0:,.0f} MB)")
    return failures


def print_slow_commits(timers: Timers, t0: float, t1: float, console,
                       slow_s: float = 0.010) -> None:
    """What else was running while an intake commit took over slow_s: of the purge's calls
    that sync the disk, which overlapped it (a commit ends with an fsync of the WAL)."""
    commits = [(s, e) for s, e in timers.samples["intake.statement + commit"] if t0 <= s <= t1]
    slow = [(s, e) for s, e in commits if e > slow_s]
    if not commits:
        return
    syncing = {"checkpoint": "  batches._checkpoint (its own thread)",
               "os.sync (file removal)": "  os.sync",
               "keystore commit": "  keystore.delete"}
    counts = {what: 0 for what in syncing}
    alone = 0
    for start, elapsed in slow:
        hit = False
        for what, name in syncing.items():
            if any(s < start + elapsed and start < s + e for s, e in timers.samples[name]):
                counts[what] += 1
                hit = True
        alone += not hit
    console.print(f"intake commits over {slow_s * 1000:.0f} ms during the purge: {len(slow)} of"
                  f" {len(commits)}; overlapping " + ", ".join(
                      f"{what} {n}" for what, n in counts.items()) + f"; none of these {alone}")


def print_profile(path: Path, console) -> None:
    """Top frames of py-spy's collapsed stacks: self samples, and callengine frames inclusive."""
    if not path.exists():
        console.print(f"(no profile at {path}: py-spy failed?)")
        return
    own: dict[str, int] = defaultdict(int)
    inclusive: dict[str, int] = defaultdict(int)
    threads: dict[str, int] = defaultdict(int)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0] if frames[0].startswith(("thread", "process")) else "?"] += n
        own[frames[-1]] += n
        for frame in set(frames):
            if "callengine/" in frame or "aiosqlite" in frame:
                inclusive[frame] += n
    console.print(f"py-spy: {total} samples (100 Hz, active threads)")
    for title, counts in (("self", own), ("inclusive (callengine, aiosqlite)", inclusive)):
        console.print(f"  top {title}:")
        for frame, n in sorted(counts.items(), key=lambda kv: -kv[1])[:12]:
            console.print(f"    {100 * n / total:5.1f} %  {frame[:150]}")


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--recordings", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="50,000 leads and 5,000 recordings")
    ap.add_argument("--rate", type=float, default=20.0, help="intake requests/s (0: no intake)")
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--dir", default="/var/tmp", help="where the temporary store goes (on disk)")
    ap.add_argument("--allow-tmpfs", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--profile", metavar="FILE", help="py-spy the purge into FILE (raw stacks)")
    ap.add_argument("--what-if-pragma", action="append", default=[], metavar="NAME=VALUE",
                    help="diagnosis: a PRAGMA on the purge's batch connection (PurgeBatches)"
                         " (repeatable), e.g. cache_size=-262144")
    ap.add_argument("--what-if-hold-ms", type=float, default=0.0, metavar="MS",
                    help="diagnosis: retention.HOLD_TARGET_S for this run")
    ap.add_argument("--what-if-pause-ms", type=float, default=0.0, metavar="MS",
                    help="diagnosis: pause this long after each purge batch (a slower purge)")
    ap.add_argument("--what-if-switch-ms", type=float, default=0.0, metavar="MS",
                    help="diagnosis: the interpreter's GIL switch interval (default 5 ms)")
    ap.add_argument("--what-if-nice", type=int, default=None, metavar="N",
                    help="diagnosis: retention.BACKGROUND_NICE for this run")
    ap.add_argument("--what-if-mover-off", action="store_true",
                    help="diagnosis: new leads stay in the intake journal while the purge runs")
    ap.add_argument("--max-purge-seconds", type=float, default=0.0,
                    help="cancel the purge after this long (0: never) and extrapolate; the"
                         " checks then test consistency instead of completeness")
    ap.add_argument("--seed-cache", metavar="DIR",
                    help="keep the seeding in DIR and copy it on later runs of the same size")
    ap.add_argument("--in-process", action="store_true",
                    help="diagnosis: Purger.run in this process, as before the engine ran it in"
                         " a child (shows where the purge's time goes, call by call)")
    ap.add_argument("--loadgen", help=argparse.SUPPRESS)
    ap.add_argument("--number-base", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return 0
    if args.quick:
        args.leads, args.recordings = 50_000, 5_000
        args.idle_seconds = min(args.idle_seconds, 15.0)
    if args.recordings > args.leads:
        ap.error("at most one recording per lead: --recordings must be ≤ --leads")

    from rich.console import Console

    from callengine import crypto
    from callengine.storage.schema import MIGRATIONS

    console = Console(highlight=False)
    root = Path(tempfile.mkdtemp(prefix="bench-purge-", dir=args.dir))
    fs = fs_of(root)
    if fs.startswith("tmpfs") and not args.allow_tmpfs:
        shutil.rmtree(root)
        sys.exit(f"{root} is on tmpfs: give an on-disk --dir (or --allow-tmpfs)")
    paths = Paths(root)
    paths.recordings.mkdir(mode=0o700)
    console.print(f"[bold]bench_purge[/]: {args.leads:,} leads, {args.recordings:,} recordings "
                  f"({AUDIO_SECONDS:g} s each); {os.cpu_count()} CPUs; Python "
                  f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")
    console.print(f"store in {root}: {fs}")
    try:
        # named by the schema's version too: a seeding of an older schema is not reused
        cache = (Path(args.seed_cache) / f"seed-{args.leads}-{args.recordings}-{AUDIO_RATE}"
                 f"-v{len(MIGRATIONS)}" if args.seed_cache else None)
        s0 = time.monotonic()
        if cache is not None and (cache / "seed.json").exists():
            # A copy of an earlier seeding (same sizes): the purge changes files in place.
            shutil.rmtree(paths.recordings)
            subprocess.run(["cp", "-a", f"{cache}/.", str(root)], check=True)
            saved = json.loads((cache / "seed.json").read_text())
            now, public_key = saved["now"], saved["public_key"]
            plan = SeedPlan(args.leads, args.recordings, now)
            (root / "seed.json").unlink()
            console.print(f"[yellow]seed copied from {cache}[/] (made {time.time() - now:,.0f} s ago)")
        else:
            now = time.time()
            plan = SeedPlan(args.leads, args.recordings, now)
            _, recipient_public = crypto.generate_recipient_keypair()
            public_key = asyncio.run(create_store(paths, now))
            seed(paths, plan, recipient_public, console)
            if cache is not None:
                shutil.rmtree(cache, ignore_errors=True)
                cache.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["cp", "-a", str(root), str(cache)], check=True)
                (cache / "seed.json").write_text(json.dumps({"now": now, "public_key": public_key}))
        os.sync()
        console.print(f"seeded in {time.monotonic() - s0:.0f} s (not measured): store "
                      f"{du(paths.db) / 1e6:,.0f} MB, keystore {du(paths.keystore) / 1e6:,.1f} MB, "
                      f"recordings {du(paths.recordings) / 1e6:,.0f} MB; os.sync() done")
        failures = asyncio.run(measure(args, paths, public_key, plan, console))
    finally:
        if args.keep:
            console.print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if failures:
        console.print(f"[red]purge result wrong[/]: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
