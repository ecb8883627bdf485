"""How long from a lead accepted (its 201) to the first agent's originate request?

    .venv/bin/python bench/bench_dispatch.py            # 10 s at 100 leads/s
    .venv/bin/python bench/bench_dispatch.py --quick    # 3 s

The real HTTP app and the real Engine (its dispatcher, woken by intake as app.py wires it) on
a real Store on disk, in this process pinned to CPU 0; the client a subprocess on CPU 1
(taskset), posting valid leads open loop at --rate. Telephony is the in-process fake of the
ARI port (tests/support/fake_ari.py, channels left ringing), so no HTTP or websocket to an
Asterisk is in the figure: only the engine's own latency is measured, from the moment the
client has the 201 to the moment the engine calls originate for the lead's first agent (both
CLOCK_MONOTONIC, one clock for both processes; a negative value: the originate came before
the answer reached the client). The widget's group is sequential over 2,000 agents, so no
lead waits for a free agent. Checked: every lead 201, every lead's agent originated once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA_KEY = bytes(range(32))
ADMIN_TOKEN = "bench-admin-token-0123456789"
SERVER_CPU, CLIENT_CPU = 0, 1
AGENTS = 2000


async def _client(url: str, count: int, rate: float) -> list[list]:
    import aiohttp

    results: list[list] = []

    async def post(session: aiohttp.ClientSession, i: int) -> None:
        body = {"phone": f"+4869{i:07d}", "consent": {"marketing": False, "recording": False},
                "clause_version": "v7"}
        async with session.post(url, json=body) as response:
            data = await response.json()
            results.append([time.monotonic(), response.status, data.get("id")])

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start, tasks = time.monotonic(), []
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, i)))
        await asyncio.gather(*tasks)
    return results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def measure(root: Path, count: int, rate: float) -> tuple[list[float], list[str]]:
    from aiohttp import web

    from callengine.config import DialingConfig
    from callengine.engine import Engine
    from callengine.flow import Strategy
    from callengine.model import Agent, widget_settings_from_input
    from callengine.services import Services
    from callengine.storage import Store
    from callengine.web import WebDeps, make_app
    from tests.support.fake_ari import FakeAri

    originated: dict[str, float] = {}

    class TimedAri(FakeAri):
        async def originate(self, endpoint, channel_id, *, app_args, timeout, caller_id=None):
            if app_args and app_args[0] not in originated:
                originated[app_args[0]] = time.monotonic()
            await super().originate(endpoint, channel_id, app_args=app_args, timeout=timeout,
                                    caller_id=caller_id)

    os.sched_setaffinity(0, {SERVER_CPU})
    failures: list[str] = []
    async with Store.open(root / "callengine.db", DATA_KEY,
                          keystore=root / "keystore" / "keystore.db") as store:
        for k in range(AGENTS):
            await store.add_agent(Agent(f"a{k}", f"PJSIP/a{k}"))
        await store.add_group("sales", Strategy.SEQUENTIAL, 20, [f"a{k}" for k in range(AGENTS)])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input({
            "group": "sales", "allowed_regions": ["PL"], "max_leads_per_hour": 1_000_000,
            "max_numbers_per_client_per_hour": 100_000,
            "max_numbers_per_client_per_day": 100_000}), time.time())
        engine = Engine(store, TimedAri(answer=False),
                        DialingConfig(max_concurrent_calls=AGENTS, poll_interval_s=1.0))
        running = asyncio.create_task(engine.run())
        await asyncio.wait_for(engine.ready.wait(), 10)
        runner = web.AppRunner(make_app(WebDeps(Services(store, on_lead=engine.wake),
                                                ADMIN_TOKEN)), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = (f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/widgets/"
               f"{widget.public_key}/leads")
        try:
            done = await asyncio.to_thread(
                subprocess.run, ["taskset", "-c", str(CLIENT_CPU), sys.executable, __file__,
                                 "--client", url, "--count", str(count), "--rate", str(rate)],
                cwd=REPO, check=True, capture_output=True, text=True)
            results = json.loads(done.stdout)
            await asyncio.sleep(1.0)  # the last leads' originates
        finally:
            await runner.cleanup()
            running.cancel()
            try:
                await running
            except (asyncio.CancelledError, Exception):
                pass
    bad = sum(1 for _, status, _ in results if status != 201)
    if bad:
        failures.append(f"{bad} answer(s) not 201")
    latencies = [(originated[lead_id] - answered) * 1000 for answered, status, lead_id in results
                 if status == 201 and lead_id in originated]
    missing = sum(1 for _, status, lead_id in results if status == 201
                  and lead_id not in originated)
    if missing:
        failures.append(f"{missing} accepted lead(s) never originated")
    return latencies, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0, help="leads/s offered")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="3 s")
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        json.dump(asyncio.run(_client(args.client, args.count, args.rate)), sys.stdout)
        return 0
    if args.quick:
        args.seconds = 3.0
    count = int(args.rate * args.seconds)
    root = Path(tempfile.mkdtemp(prefix="bench-dispatch-", dir=args.dir))
    print(f"bench_dispatch: {count:,} leads at {args.rate:g}/s; server + engine on CPU"
          f" {SERVER_CPU}, client on CPU {CLIENT_CPU}; telephony is the in-process fake ARI"
          f" port: only the engine's own latency is measured; Python {sys.version.split()[0]},"
          f" SQLite {sqlite3.sqlite_version}")
    try:
        latencies, failures = asyncio.run(measure(root, count, args.rate))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if latencies:
        print(f"201 received → first agent originate: p50 {pct(latencies, 50):.2f} ms,"
              f" p99 {pct(latencies, 99):.2f} ms, max {max(latencies):.2f} ms"
              f" ({len(latencies):,} leads)")
    for failure in failures:
        print(f"FAIL {failure}")
    print("checks: " + ("FAILED" if failures else "ok (every lead 201, each originated)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
