"""End-to-end leads/s with real calls, one and two engines, SQLite next to PostgreSQL in one
run; and the takeover time after an engine's SIGKILL.

Each variant: a fresh store, LEADS due leads queued before the engines start, then
`callengine run` processes (1 or 2) dial them through the dev Asterisk nodes until every lead
is done. Agents and visitors are the sipp "PSTN" phone of each node (agents dialled as
PJSIP/ag<N>@pstn, so there are as many as --agents asks; the phone answers after 50 ms and
hangs up 800 ms later). With one engine it drives node "main" (127.0.0.1); with two, engine a
drives "main" first and b "node2" (127.0.0.2) first, each with both nodes: an engine beside
each node. leads/s = leads / (last attempt's end - first attempt's start).

Takeover (PostgreSQL, two engines, [dialing] engine_lease_s = 3): more leads queued, engine a
SIGKILLed once it has calls up; the time from the kill until engine b has closed every attempt
a left open (and hung up a's channels).

    .venv/bin/python bench/bench_cluster_calls.py [--leads 300] [--agents 20] [--calls 10]

Starts the dev Asterisk and a second one on 127.0.0.2 (scripts/asterisk), holding
/tmp/callengine-asterisk.lock (don't run it beside the Asterisk tests), and a throwaway
PostgreSQL 15 cluster under var/. Checks: every lead done with exactly one attempt, connected;
after the kill every lead done once; 0 channels and 0 bridges left on either node."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from common import DATA_KEY, REPO, parser  # (puts the repository on sys.path)

from callengine.flow import Strategy
from callengine.model import LEAD_DONE, Agent
from callengine.storage.backends import open_store
from tests.support import postgres as pg
from tests.support.asterisk import LOCK_PATH, NODE2_ADDRESS, Asterisk, node2_var_dir
from tests.support.engine import (
    EngineProcess, add_widget, config_port, free_port, queue_lead, wait_http, write_config,
)
from tests.support.phones import PSTN_PORT


class Broken(Exception):
    """A check failed: the figures are not to be trusted."""


def engines_for(count: int, work: Path, store_dir: Path, nodes: dict[str, Asterisk],
                calls: int) -> list[EngineProcess]:
    order = [("a", "main"), ("b", "node2")][:count]
    engines = []
    for engine_id, first in order:
        (work / engine_id).mkdir(parents=True)
        others = {name: node for name, node in nodes.items() if name != first and count > 1}
        path, env = write_config(work / engine_id, nodes[first], port=free_port(),
                                 engine_id=engine_id, store_dir=store_dir, node=first,
                                 more_nodes=others)
        path.write_text(re.sub(r"max_concurrent_calls = \d+", f"max_concurrent_calls = {calls}",
                               path.read_text()))
        env["CALLENGINE_ARI_PASSWORD"] = nodes[first].ari_password
        engines.append(EngineProcess(path, env))
    return engines


def store_of(store_dir: Path):
    return open_store(store_dir / "callengine.db", DATA_KEY,
                      keystore=store_dir / "keystore/keystore.db",
                      audit_dir=store_dir / "keystore", url=pg.url_for(store_dir / "callengine.db"))


async def queue(store, widget, first: int, count: int) -> list[str]:
    ids = []
    for n in range(first, first + count):
        ids.append((await queue_lead(store, widget, f"+48601{n:06d}")).id)
    return ids


async def all_done(store, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        waiting = [i for i in ids if (await store.get_lead(i)).status != LEAD_DONE]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise Broken(f"{len(waiting)} leads not done after {timeout:.0f} s")
        await asyncio.sleep(0.5)


async def variant(label: str, engines_count: int, work: Path, nodes: dict[str, Asterisk],
                  args, *, takeover: bool = False) -> dict:
    store_dir = work / "store"
    store_dir.mkdir(parents=True)
    async with store_of(store_dir) as store:
        for n in range(args.agents):
            await store.add_agent(Agent(f"ag{n}", f"PJSIP/ag{n}@pstn"))
        widget = await add_widget(store, agents=tuple(f"ag{n}" for n in range(args.agents)),
                                  strategy=Strategy.LEAST_RECENT, whisper=None, ring_timeout=10,
                                  max_attempts=3, retry_delay_s=1, max_leads_per_hour=100000)
        ids = await queue(store, widget, 0, args.leads)
    engines = engines_for(engines_count, work, store_dir, nodes, args.calls)
    row: dict = {"variant": label}
    try:
        for engine in engines:
            engine.start()
        for engine in engines:
            await wait_http(f"http://127.0.0.1:{config_port(engine.config_path)}", timeout=60)
        async with store_of(store_dir) as store:
            await all_done(store, ids, timeout=20 + args.leads)
            attempts = [a for i in ids for a in await store.attempts_for(i)]
            leads = [await store.get_lead(i) for i in ids]
            if len(attempts) != len(ids) or any(lead.outcome != "connected" for lead in leads):
                raise Broken(f"{label}: {len(attempts)} attempts for {len(ids)} leads, outcomes "
                             f"{sorted({lead.outcome for lead in leads})}")
            span = max(a.ended_at for a in attempts) - min(a.started_at for a in attempts)
            row.update(leads_per_s=len(ids) / span, span_s=span,
                       talk_s=sorted(a.talk_s for a in attempts)[len(attempts) // 2],
                       by_engine={e.config_path.parent.name: sum(
                           a.engine == e.config_path.parent.name for a in attempts)
                           for e in engines})
            if takeover:
                row["takeover_s"] = await kill_and_take_over(store, widget, engines, args)
    finally:
        for engine in engines:
            engine.stop()
    for name, node in nodes.items():
        channels, bridges = await asyncio.to_thread(node.wait_idle, 10)
        if channels or bridges:
            raise Broken(f"{label}: left on node {name}: {len(channels)} channels, "
                         f"{len(bridges)} bridges")
    return row


async def kill_and_take_over(store, widget, engines, args) -> float:
    a, b = engines
    ids = await queue(store, widget, args.leads, 4 * args.calls)
    deadline = time.monotonic() + 30
    while not [x for x in await store.active_attempts() if x.engine == "a"]:
        if time.monotonic() > deadline:
            raise Broken("engine a never had a call up")
        await asyncio.sleep(0.05)
    a.kill()
    killed = time.monotonic()
    while [x for x in await store.active_attempts() if x.engine == "a"]:
        if time.monotonic() > killed + 60:
            raise Broken("engine a's attempts were never taken over")
        await asyncio.sleep(0.05)
    took = time.monotonic() - killed
    await all_done(store, ids, timeout=60)
    if not any("taking them over" in line for line in b.log().splitlines()):
        raise Broken("engine b never said it took engine a over")
    return took


def take_lock() -> int:
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


async def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--leads", type=int, default=300)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--calls", type=int, default=10, help="max_concurrent_calls per engine")
    args = ap.parse_args()
    take_lock()
    nodes = {"main": Asterisk(), "node2": Asterisk(node2_var_dir(), address=NODE2_ADDRESS)}
    cluster = pg.PostgresCluster(REPO / "var", durable=True)
    rows = []
    async with AsyncExitStack() as stack:
        for node in nodes.values():
            await asyncio.to_thread(node.start)
            stack.callback(node.stop)
            await stack.enter_async_context(node.phone(PSTN_PORT, answer_after_ms=50,
                                                       hangup_after_ms=800))
        cluster.start()
        stack.callback(cluster.stop)
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            for label, backend, count in (("SQLite, 1 engine", None, 1),
                                          ("SQLite, 2 engines", None, 2),
                                          ("PostgreSQL, 1 engine", cluster, 1),
                                          ("PostgreSQL, 2 engines", cluster, 2)):
                pg.ACTIVE = backend
                rows.append(await variant(label, count, Path(tmp) / f"v{len(rows)}", nodes, args,
                                          takeover=backend is not None and count == 2))
                print(_line(rows[-1]), flush=True)
    print(f"\n{args.leads} leads per variant, {args.agents} agents, {args.calls} calls per "
          f"engine at most; talk {rows[0]['talk_s']:.2f} s (median)")
    print("| variant | leads/s | span (s) | attempts by engine |")
    print("|---|---:|---:|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['leads_per_s']:.1f} | {row['span_s']:.1f} | "
              f"{', '.join(f'{k} {v}' for k, v in row['by_engine'].items())} |")
    took = next(row["takeover_s"] for row in rows if "takeover_s" in row)
    print(f"takeover after engine a's SIGKILL (PostgreSQL, lease 3 s): {took:.2f} s")
    return 0


def _line(row: dict) -> str:
    extra = f", takeover {row['takeover_s']:.2f} s" if "takeover_s" in row else ""
    return f"{row['variant']}: {row['leads_per_s']:.1f} leads/s over {row['span_s']:.1f} s{extra}"


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except Broken as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
