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
the answer reached the client). The engine reserves every free agent of a lead's group for
that lead's call (its agents ring by the group's strategy), so each lead gets a widget of its
own whose group is one agent of its own: no lead waits for a free agent, and the figure is
dispatch latency, not queueing. Checked: every lead 201, every lead's agent originated, each
lead's first originate to its own agent.
"""

from __future__ import annotations

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

from common import ADMIN_TOKEN, CLIENT_CPU, DATA_KEY, SERVER_CPU, parser, pct, run_client, serve

DRAIN_S = 30.0  # after the last answer, how long the leads still waiting may take to originate


async def _client(urls: list[str], rate: float) -> list[list]:
    import aiohttp

    results: list[list] = []

    async def post(session: aiohttp.ClientSession, i: int) -> None:
        body = {"phone": f"+4869{i:07d}", "consent": {"marketing": False, "recording": False},
                "clause_version": "v7"}
        async with session.post(urls[i], json=body) as response:
            data = await response.json()
            results.append([time.monotonic(), response.status, data.get("id"), i])

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start, tasks = time.monotonic(), []
        for i in range(len(urls)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, i)))
        await asyncio.gather(*tasks)
    return results


async def measure(root: Path, count: int, rate: float) -> tuple[list[float], list[str]]:
    from callengine.config import DialingConfig
    from callengine.engine import Engine
    from callengine.flow import Strategy
    from callengine.model import Agent, widget_settings_from_input
    from callengine.services import Services
    from callengine.storage import Store
    from callengine.web import WebDeps, make_app
    from tests.support.fake_ari import FakeAri

    originated: dict[str, tuple[float, str]] = {}

    class TimedAri(FakeAri):
        async def originate(self, endpoint, channel_id, *, app_args, timeout, caller_id=None):
            if app_args and app_args[0] not in originated:
                originated[app_args[0]] = (time.monotonic(), endpoint)
            await super().originate(endpoint, channel_id, app_args=app_args, timeout=timeout,
                                    caller_id=caller_id)

    os.sched_setaffinity(0, {SERVER_CPU})
    failures: list[str] = []
    async with Store.open(root / "callengine.db", DATA_KEY,
                          keystore=root / "keystore" / "keystore.db") as store:
        keys: list[str] = []  # lead i posts to widget i, whose group is agent i alone
        for k in range(count):
            await store.add_agent(Agent(f"a{k}", f"PJSIP/a{k}"))
            await store.add_group(f"g{k}", Strategy.SEQUENTIAL, 20, [f"a{k}"])
            widget = await store.add_widget(f"w{k}", f"Shop {k}", widget_settings_from_input({
                "group": f"g{k}", "allowed_regions": ["PL"], "max_leads_per_hour": 1_000_000,
                "max_numbers_per_client_per_hour": 100_000,
                "max_numbers_per_client_per_day": 100_000, "challenge": "off"}), time.time())
            keys.append(widget.public_key)
        engine = Engine(store, TimedAri(answer=False),
                        DialingConfig(max_concurrent_calls=count, poll_interval_s=1.0))
        running = asyncio.create_task(engine.run())
        await asyncio.wait_for(engine.ready.wait(), 10)
        runner, origin = await serve(make_app(WebDeps(Services(store, on_lead=engine.wake),
                                                      ADMIN_TOKEN)))
        base = f"{origin}/api/v1/widgets/"
        urls_file = root / "urls.json"
        urls_file.write_text(json.dumps([f"{base}{key}/leads" for key in keys]))
        try:
            results = json.loads(await asyncio.to_thread(
                run_client, __file__, str(urls_file), "--rate", str(rate),
                stderr=subprocess.PIPE))
            # the last leads' originates: until each accepted lead has one, at most DRAIN_S
            accepted = {lead_id for _, status, lead_id, _ in results if status == 201}
            give_up = time.monotonic() + DRAIN_S
            while not accepted <= originated.keys() and time.monotonic() < give_up:
                await asyncio.sleep(0.05)
        finally:
            await runner.cleanup()
            running.cancel()
            try:
                await running
            except (asyncio.CancelledError, Exception):
                pass
    bad = sum(1 for _, status, _, _ in results if status != 201)
    if bad:
        failures.append(f"{bad} answer(s) not 201")
    latencies = [(originated[lead_id][0] - answered) * 1000
                 for answered, status, lead_id, _ in results
                 if status == 201 and lead_id in originated]
    missing = sum(1 for _, status, lead_id, _ in results if status == 201
                  and lead_id not in originated)
    if missing:
        failures.append(f"{missing} accepted lead(s) never originated")
    wrong = sum(1 for _, _, lead_id, i in results
                if lead_id in originated and originated[lead_id][1] != f"PJSIP/a{i}")
    if wrong:
        failures.append(f"{wrong} lead(s) originated to another lead's agent")
    if len(results) != count:
        failures.append(f"{len(results)} answers for {count} leads")
    by_send = [(originated[lead_id][0] - answered) * 1000
               for answered, status, lead_id, _ in sorted(results, key=lambda r: r[3])
               if status == 201 and lead_id in originated]
    tenth = max(1, len(by_send) // 10)
    if by_send:
        print(f"p50 of the first / last tenth of the leads sent: {pct(by_send[:tenth], 50):.2f}"
              f" / {pct(by_send[-tenth:], 50):.2f} ms (a growing backlog shows here)")
    return latencies, failures


def main() -> int:
    ap = parser(__doc__, client=True)
    ap.add_argument("--rate", type=float, default=100.0, help="leads/s offered")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="3 s")
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    if args.client:
        urls = json.loads(Path(args.client).read_text())
        json.dump(asyncio.run(_client(urls, args.rate)), sys.stdout)
        return 0
    if args.quick:
        args.seconds = 3.0
    count = int(args.rate * args.seconds)
    root = Path(tempfile.mkdtemp(prefix="bench-dispatch-", dir=args.dir))
    print(f"bench_dispatch: {count:,} leads at {args.rate:g}/s; server + engine on CPU"
          f" {SERVER_CPU}, client on CPU {CLIENT_CPU}; a widget, group and agent per lead")
    print("Asterisk is faked (the in-process fake ARI port, no HTTP or websocket): only the"
          " engine's own latency counts, 201 at the client → originate request at the fake ARI;"
          f" Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")
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
    print("checks: " + ("FAILED" if failures else
                        "ok (every lead 201, each originated to its own agent)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
