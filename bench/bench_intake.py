"""How many leads per second does intake take on one core, and how fast does it answer?

    .venv/bin/python bench/bench_intake.py            # 5,000 leads throughput, 10 s at 500/s
    .venv/bin/python bench/bench_intake.py --quick    # 2,000 leads, 4 s at 500/s

The real HTTP app (web.make_app on the Services of a real Store, its keystore and intake
journal, as app.py builds them) on 127.0.0.1, in a fresh directory on disk (`--dir`, default
/var/tmp). The server (this process, with its SQLite threads) is pinned to CPU 0, the client
(a subprocess: this script with --client) to CPU 1 (taskset), so the server's figures are one
core's. The client POSTs valid leads, as the widget does, and times each from send to the last
byte of the answer; its 50 workers each connect from their own 127.0.0.x address (50 clients),
and the bench widget's per-client limits are raised (the bench measures intake, not refusals).
Workloads, one after another on the same store:

  throughput   N leads, 50 in flight, each a new number: leads/s (one core)
  500/s        open loop: a lead every 2 ms for S seconds, new numbers: p50 / p99
  500/s, 100k  the same on a widget pre-filled (through the store, not HTTP) with 100,000
               leads in the last hour

Checked afterwards (exit 1 if any fails; timings are never asserted): every lead answered 201,
read back by its number, one data subject per number in the keystore.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import common
from common import ADMIN_TOKEN, CLIENT_CPU, DATA_KEY, SERVER_CPU, parser, pct, serve

RATE = 500  # leads/s offered in the latency workloads
PREFILL = 100_000


def number(k: int) -> str:
    return f"+4869{k:07d}"


# ---- the client (subprocess) ----------------------------------------------------------------


async def _client(url: str, numbers: list[int], concurrency: int, rate: float
                  ) -> list[list[float]]:
    """concurrency workers (closed loop), or with rate > 0 one request every 1/rate s (open
    loop: a request is sent on time whether or not the earlier ones were answered)."""
    import aiohttp

    results: list[list[float]] = []
    queue = iter(enumerate(numbers))

    async def post(session: aiohttp.ClientSession, i: int, k: int) -> None:
        body = {"phone": number(k), "name": "Jan Kowalski", "email": f"visitor{i}@example.com",
                "consent": {"marketing": False, "recording": True}, "clause_version": "v7"}
        sent = time.monotonic()
        async with session.post(url, json=body) as response:
            await response.read()
            results.append([sent, time.monotonic() - sent, response.status])

    async def worker(session: aiohttp.ClientSession) -> None:
        for i, k in queue:
            await post(session, i, k)

    sessions = [aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, local_addr=(f"127.0.0.{10 + c}", 0)),
        timeout=aiohttp.ClientTimeout(total=60)) for c in range(concurrency)]
    try:
        if rate > 0:
            start, tasks = time.monotonic(), []
            for i, k in queue:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(sessions[i % len(sessions)], i, k)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(worker(session) for session in sessions))
    finally:
        for session in sessions:
            await session.close()
    return results


def client_main(args: argparse.Namespace) -> None:
    job = json.loads(sys.stdin.read())
    import uvloop
    json.dump(uvloop.run(_client(args.client, job["numbers"], job["concurrency"], job["rate"])),
              sys.stdout)


def run_client(url: str, numbers: list[int], concurrency: int, rate: float = 0
               ) -> list[list[float]]:
    """In a subprocess on CPU 1 (blocking: call it in a thread); its errors show."""
    return json.loads(common.run_client(__file__, url, input=json.dumps(
        {"numbers": numbers, "concurrency": concurrency, "rate": rate})))


# ---- the server and the figures ---------------------------------------------------------------


async def measure(root: Path, n: int, seconds: float, prefill: int) -> tuple[list[tuple], list[str]]:
    from callengine.flow import Strategy
    from callengine.model import Agent, Consent, widget_settings_from_input
    from callengine.recordings import RecordingVault
    from callengine.services import Services
    from callengine.storage import KeyStore, Store
    from callengine.web import WebDeps, make_app

    os.sched_setaffinity(0, {SERVER_CPU})  # before aiosqlite's threads start: they inherit it
    database, keystore = root / "callengine.db", root / "keystore" / "keystore.db"
    (root / "recordings").mkdir(mode=0o700)
    rows, failures = [], []
    settings = {"group": "sales", "allowed_regions": ["PL"], "max_leads_per_hour": 100_000,
                "max_numbers_per_client_per_hour": 100_000,
                "max_numbers_per_client_per_day": 100_000,
                # the proof of work is the visitor's browser's cost, not the intake's
                "challenge": "off"}
    async with Store.open(database, DATA_KEY, keystore=keystore) as store, \
            KeyStore.open(keystore) as keys:
        await store.add_agent(Agent("alice", "PJSIP/alice"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input(settings),
                                        time.time())
        full = await store.add_widget("full", "Full", widget_settings_from_input(
            {**settings, "max_leads_per_hour": 1_000_000}), time.time())
        services = Services(store, vault=RecordingVault(root / "recordings", keys))
        runner, origin = await serve(make_app(WebDeps(services, ADMIN_TOKEN)))
        base = f"{origin}/api/v1/widgets"
        url = f"{base}/{widget.public_key}/leads"
        accepted: dict[str, int] = {}
        try:
            await asyncio.to_thread(run_client, url, list(range(9_000_000, 9_000_100)), 1)
            accepted.update({number(k): 1 for k in range(9_000_000, 9_000_100)})
            per_rate = int(RATE * seconds)
            started = time.time()
            consent = Consent(False, True, "v7")
            for chunk in range(0, prefill, 1000):  # the full widget's last hour (not timed)
                await asyncio.gather(*(store.create_lead(
                    full, phone_e164=number(5_000_000 + k), phone_region="PL",
                    phone_kind="mobile", name=None, email=None, consent=consent,
                    now=started - 3000 + k * 2500 / prefill)
                    for k in range(chunk, min(prefill, chunk + 1000))))
            accepted.update({number(5_000_000 + k): 1 for k in range(prefill)})
            print(f"  (pre-filled {prefill:,} leads into widget 'full' in"
                  f" {time.time() - started:.1f} s, not timed)")
            workloads = [
                ("throughput", url, list(range(n)), 50, 0),
                (f"{RATE}/s", url, list(range(n, n + per_rate)), 50, RATE),
                (f"{RATE}/s, 100k", f"{base}/{full.public_key}/leads",
                 list(range(n + per_rate, n + 2 * per_rate)), 50, RATE),
            ]
            for name, target, numbers, in_flight, rate in workloads:
                cpu_before = time.process_time()  # this process: the event loop and SQLite
                results = await asyncio.to_thread(run_client, target, numbers, in_flight, rate)
                cpu_us = (time.process_time() - cpu_before) * 1e6 / len(results)
                wall = max(s + t for s, t, _ in results) - min(s for s, _, _ in results)
                latencies = [t * 1000 for _, t, _ in results]
                not_201 = sum(1 for *_, status in results if status != 201)
                rows.append((name, "open" if rate else in_flight, len(results),
                             len(results) / wall, pct(latencies, 50), pct(latencies, 99),
                             not_201, cpu_us))
                if not_201:
                    failures.append(f"{name}: {not_201} answer(s) not 201")
                for k in numbers:
                    accepted[number(k)] = accepted.get(number(k), 0) + 1
            for phone, count in list(accepted.items())[:: max(1, len(accepted) // 200)]:
                leads = await store.leads_for_number(phone)
                if len(leads) != count or any(lead.phone_e164 != phone for lead in leads):
                    failures.append(f"{phone[:6]}…: {len(leads)} lead(s) read back, {count} sent")
                    break
        finally:
            await runner.cleanup()
    db = sqlite3.connect(database)
    stored = db.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
    subjects_named = db.execute("SELECT COUNT(DISTINCT subject_id) FROM leads").fetchone()[0]
    db.close()
    subjects = sqlite3.connect(keystore).execute("SELECT COUNT(*) FROM subject_keys").fetchone()[0]
    expected = sum(accepted.values())
    if stored != expected:
        failures.append(f"{stored:,} leads in the store, {expected:,} accepted")
    if not subjects == subjects_named == len(accepted):
        failures.append(f"{subjects:,} subject keys, {subjects_named:,} subjects named by leads,"
                        f" {len(accepted):,} numbers")
    return rows, failures


def main() -> int:
    ap = parser(__doc__, client=True)
    ap.add_argument("--leads", type=int, default=5000, help="leads of the throughput workload")
    ap.add_argument("--seconds", type=float, default=10.0, help="of each 500/s workload")
    ap.add_argument("--prefill", type=int, default=PREFILL, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="2,000 leads, 4 s at 500/s")
    ap.add_argument("--dir", default="/var/tmp", help="where the temporary store goes (on disk)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the server process into FILE")
    args = ap.parse_args()
    if args.client:
        client_main(args)
        return 0
    if args.quick:
        args.leads, args.seconds = 2000, 4.0
    root = Path(tempfile.mkdtemp(prefix="bench-intake-", dir=args.dir))
    print(f"bench_intake: server pinned to CPU {SERVER_CPU}, client to CPU {CLIENT_CPU} (taskset);"
          f" {args.leads:,} leads throughput, {args.seconds:g} s at {RATE}/s;"
          f" Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; store in {root}")
    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        import uvloop  # the engine's loop (callengine run)
        rows, failures = uvloop.run(measure(root, args.leads, args.seconds, args.prefill))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'workload':<14} {'in flight':>9} {'leads':>7} {'leads/s':>9} {'p50 ms':>8}"
          f" {'p99 ms':>8} {'not 201':>8} {'server CPU µs/lead':>19}")
    for name, in_flight, count, rate, p50, p99, bad, cpu_us in rows:
        print(f"{name:<14} {in_flight!s:>9} {count:>7,} {rate:>9,.0f} {p50:>8.2f} {p99:>8.2f}"
              f" {bad:>8} {cpu_us:>19,.0f}")
    for failure in failures:
        print(f"FAIL {failure}")
    print("checks: " + ("FAILED" if failures else "ok (every lead 201, stored and read back by"
                                                    " its number, one subject per number)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
