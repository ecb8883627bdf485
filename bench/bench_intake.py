"""How many leads per second does intake take, one at a time and many at once?

    .venv/bin/python bench/bench_intake.py            # 5,000 leads per workload
    .venv/bin/python bench/bench_intake.py --quick    # 1,000

The real HTTP app (web.make_app on the Services of a real Store, its keystore and intake
journal, as app.py builds them) on 127.0.0.1, in a fresh directory on disk (`--dir`, default
/var/tmp). The client is a subprocess (this script with --client), so its CPU and clock are
not the server's: it POSTs valid leads, as the widget does, and times each from send to the
last byte of the answer. Workloads, one after another on the same store:

  sequential   N leads one at a time, each a new number
  concurrent   N leads, --concurrency in flight at once, each a new number
  returning    N leads one at a time, over N/5 numbers of the first workload (five each)

Printed per workload: leads/s (N over the wall time from the first send to the last answer)
and latency p50 / p99. Checked afterwards (exit 1 if any fails; timings are never asserted):
every lead answered 201, every one of them in the store with its number, one data subject per
number in the keystore.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA_KEY = bytes(range(32))  # as tests/support/engine.py
ADMIN_TOKEN = "bench-admin-token-0123456789"
RETURNING_LEADS_PER_NUMBER = 5


def number(k: int) -> str:
    return f"+4869{k:07d}"


# ---- the client (subprocess) ----------------------------------------------------------------


async def _client(url: str, numbers: list[int], concurrency: int) -> list[list[float]]:
    import aiohttp

    results: list[list[float]] = []
    queue = iter(enumerate(numbers))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i, k in queue:
            body = {"phone": number(k), "name": "Jan Kowalski", "email": f"visitor{i}@example.com",
                    "consent": {"marketing": False, "recording": True}, "clause_version": "v7"}
            sent = time.monotonic()
            async with session.post(url, json=body) as response:
                await response.read()
                results.append([sent, time.monotonic() - sent, response.status])

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return results


def client_main(args: argparse.Namespace) -> None:
    job = json.loads(sys.stdin.read())
    json.dump(asyncio.run(_client(args.client, job["numbers"], job["concurrency"])), sys.stdout)


def run_client(url: str, numbers: list[int], concurrency: int) -> list[list[float]]:
    """In a subprocess (blocking: call it in a thread)."""
    done = subprocess.run([sys.executable, __file__, "--client", url], cwd=REPO, check=True,
                          input=json.dumps({"numbers": numbers, "concurrency": concurrency}),
                          capture_output=True, text=True)
    return json.loads(done.stdout)


# ---- the server and the figures ---------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def measure(root: Path, n: int, concurrency: int) -> tuple[list[tuple], list[str]]:
    from aiohttp import web

    from callengine.flow import Strategy
    from callengine.model import Agent, widget_settings_from_input
    from callengine.recordings import RecordingVault
    from callengine.services import Services
    from callengine.storage import KeyStore, Store
    from callengine.web import WebDeps, make_app

    database, keystore = root / "callengine.db", root / "keystore" / "keystore.db"
    (root / "recordings").mkdir(mode=0o700)
    rows, failures = [], []
    async with Store.open(database, DATA_KEY, keystore=keystore) as store, \
            KeyStore.open(keystore) as keys:
        await store.add_agent(Agent("alice", "PJSIP/alice"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input({
            "group": "sales", "allowed_regions": ["PL"],
            "max_leads_per_number_per_day": 100, "max_leads_per_hour": 100_000,
        }), time.time())
        services = Services(store, vault=RecordingVault(root / "recordings", keys))
        runner = web.AppRunner(make_app(WebDeps(services, ADMIN_TOKEN)), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/widgets/{widget.public_key}/leads"
        try:
            await asyncio.to_thread(run_client, url, list(range(9_000_000, 9_000_100)), 1)
            # (the warm-up's 100 numbers above are apart from these)
            sequential, concurrent = list(range(n)), list(range(n, 2 * n))
            seen = sequential[:n // RETURNING_LEADS_PER_NUMBER]  # numbers with a lead already
            workloads = [
                ("sequential", sequential, 1),
                ("concurrent", concurrent, concurrency),
                ("returning", [k for k in seen for _ in range(RETURNING_LEADS_PER_NUMBER)], 1),
            ]
            accepted: dict[str, int] = {}
            for name, numbers, in_flight in workloads:
                results = await asyncio.to_thread(run_client, url, numbers, in_flight)
                wall = max(s + t for s, t, _ in results) - min(s for s, _, _ in results)
                latencies = [t * 1000 for _, t, _ in results]
                not_201 = sum(1 for *_, status in results if status != 201)
                rows.append((name, in_flight, len(results), len(results) / wall,
                             pct(latencies, 50), pct(latencies, 99), not_201))
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
    expected = sum(accepted.values()) + 100
    if stored != expected:
        failures.append(f"{stored:,} leads in the store, {expected:,} accepted")
    if not subjects == subjects_named == len(accepted) + 100:
        failures.append(f"{subjects:,} subject keys, {subjects_named:,} subjects named by leads,"
                        f" {len(accepted) + 100:,} numbers")
    return rows, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=5000, help="leads per workload")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="1,000 leads per workload")
    ap.add_argument("--dir", default="/var/tmp", help="where the temporary store goes (on disk)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the server process into FILE")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client_main(args)
        return 0
    if args.quick:
        args.leads = 1000
    root = Path(tempfile.mkdtemp(prefix="bench-intake-", dir=args.dir))
    print(f"bench_intake: {args.leads:,} leads per workload, concurrency {args.concurrency};"
          f" Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; store in {root}")
    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        rows, failures = asyncio.run(measure(root, args.leads, args.concurrency))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'workload':<12} {'in flight':>9} {'leads':>7} {'leads/s':>9} {'p50 ms':>8}"
          f" {'p99 ms':>8} {'not 201':>8}")
    for name, in_flight, count, rate, p50, p99, bad in rows:
        print(f"{name:<12} {in_flight:>9} {count:>7,} {rate:>9,.0f} {p50:>8.2f} {p99:>8.2f}"
              f" {bad:>8}")
    for failure in failures:
        print(f"FAIL {failure}")
    print("checks: " + ("FAILED" if failures else "ok (every lead 201, stored and read back by"
                                                    " its number, one subject per number)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
