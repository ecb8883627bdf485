"""The store backends side by side, in one run: SQLite (the embedded default) and PostgreSQL
with one and with two engines (two stores, each with its own pool, as two engine processes
have). Per variant, a fresh store:

- intake: LEADS new leads through create_lead, CONCURRENCY at a time (the visitors' path:
  limits, duplicate window, the commit), with two engines each taking half at once;
- dispatch: every due lead claimed (due_leads + start_attempts, 20 a round), its attempt
  finished as connected (finish_attempt: the lead closed, its webhooks' outbox rows) — the
  store's share of a call, as the dispatcher and the calls drive it; two engines at once;
- takeover (PostgreSQL): an engine that stops renewing its lease (3 s) with a call open; how
  long until a live engine has closed that call (the real Engine and its EngineLease, over a
  telephony port with nothing on it).

    .venv/bin/python bench/bench_backends.py [--leads 2000] [--concurrency 50]

Starts a throwaway PostgreSQL 15 cluster (tests/support/postgres.py) under var/; as root, the
server runs as the `postgres` user. Checks: every lead created once, claimed once, closed."""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

from common import DATA_KEY, REPO, parser  # (puts the repository on sys.path)

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Outcome, Result
from callengine.model import LEAD_DONE, Consent
from callengine.storage import Store, engine_lease
from callengine.storage.pg.store import PgStore
from tests.support.engine import add_widget
from tests.support.postgres import PostgresCluster


class NoAsterisk:
    """A telephony port with nothing on it: the takeover's hang-ups find no channel."""

    async def events(self):
        from callengine.telephony import Connected

        yield Connected("boot")
        await asyncio.Event().wait()

    async def channel_ids(self) -> dict[str, str]:
        return {}

    async def bridge_ids(self) -> list[str]:
        return []

    async def endpoint_states(self) -> list:
        return []


async def intake(stores, widget, leads: int, concurrency: int) -> float:
    """leads/s through create_lead, the stores (engines) taking their shares at once."""
    share = leads // len(stores)

    async def one_engine(k: int, store) -> None:
        numbers = [f"+4860{k * share + i:07d}" for i in range(share)]
        for start in range(0, share, concurrency):
            await asyncio.gather(*(store.create_lead(
                widget, phone_e164=number, phone_region="PL", phone_kind="mobile", name="Anna",
                email=None, consent=Consent(False, False, "v1"), now=time.time())
                for number in numbers[start:start + concurrency]))

    started = time.perf_counter()
    await asyncio.gather(*(one_engine(k, store) for k, store in enumerate(stores)))
    return share * len(stores) / (time.perf_counter() - started)


async def dispatch(stores) -> tuple[float, int]:
    """leads/s claimed and closed by the stores (engines) at once; how many."""
    done = {"n": 0}

    async def one_engine(name: str, store) -> None:
        await store.acquire_lease(engine_lease(name), name, time.time(), 600)
        while due := await store.due_leads(time.time(), limit=20):
            started = await store.start_attempts([lead.id for lead in due], time.time(),
                                                 engine=name, lease_owner=name)
            for attempt in started.values():
                await store.finish_attempt(attempt, Result(Outcome.CONNECTED, connected=True,
                                                           talk_s=30.0), time.time(), None)
            done["n"] += len(started)

    started = time.perf_counter()
    await asyncio.gather(*(one_engine(f"e{k}", store) for k, store in enumerate(stores)))
    return done["n"] / (time.perf_counter() - started), done["n"]


async def takeover(open_one) -> float:
    """Seconds from the dead engine's last renewal until its open call is closed."""
    ttl = 3.0
    async with open_one() as store:
        widget = await add_widget(store, widget_id="t")
        lead = await store.create_lead(widget, phone_e164="+48609999999", phone_region="PL",
                                       phone_kind="mobile", name=None, email=None,
                                       consent=Consent(False, False, "v1"), now=time.time())
        attempt = (await store.start_attempts([lead.id], time.time(), engine="dead"))[lead.id]
        renewed = time.time()
        await store.acquire_lease(engine_lease("dead"), "dead-run", renewed, ttl)
        engine = Engine(store, NoAsterisk(), DialingConfig(
            max_concurrent_calls=1, poll_interval_s=0.2, engine_lease_s=ttl))
        task = asyncio.create_task(engine.run())
        try:
            while (await store.attempts_for(lead.id))[0].status == "active":
                await asyncio.sleep(0.05)
            closed = time.time()
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        first = (await store.attempts_for(lead.id))[0]
        assert first.id == attempt.id and first.cause == "interrupted: engine dead stopped"
    return closed - renewed


async def variant(name: str, open_one, engines: int, leads: int, concurrency: int
                  ) -> tuple[str, float, float]:
    async with open_one() as first:
        widget = await add_widget(first, duplicate_window_s=0, max_leads_per_hour=100_000)
        async with contextlib_multi([open_one for _ in range(engines - 1)]) as more:
            stores = [first, *more]
            in_rate = await intake(stores, widget, leads, concurrency)
            out_rate, dispatched = await dispatch(stores)
        assert dispatched == leads, (dispatched, leads)
        assert await first.count_leads() == leads
        closed = await first.list_leads(limit=leads)
        assert all(lead.status == LEAD_DONE for lead in closed)
        for lead in closed[:200]:  # (a sample: one attempt each)
            assert len(await first.attempts_for(lead.id)) == 1, lead.id
    return name, in_rate, out_rate


@asynccontextmanager
async def contextlib_multi(openers):
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(opener()) for opener in openers]


async def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--leads", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=50)
    args = ap.parse_args()
    cluster = PostgresCluster(REPO / "var", durable=True)  # fsync on, as SQLite's commits
    cluster.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            directory = Path(tmp)
            sqlite_db = directory / "ce.db"

            def sqlite_store():
                return Store.open(sqlite_db, DATA_KEY)

            rows.append(await variant("SQLite, 1 engine", sqlite_store, 1, args.leads,
                                      args.concurrency))
            for engines in (1, 2):
                url = await cluster.new_database()

                def pg_store(url=url):
                    return PgStore.open(url, DATA_KEY, keystore=directory / f"{url[-8:]}-keys",
                                        audit_dir=directory / "audit")

                rows.append(await variant(f"PostgreSQL, {engines} engine(s)", pg_store, engines,
                                          args.leads, args.concurrency))
            takeover_url = await cluster.new_database()
            took = await takeover(lambda: PgStore.open(
                takeover_url, DATA_KEY, keystore=directory / "takeover-keys",
                audit_dir=directory / "audit"))
    finally:
        cluster.stop()
    print(f"{args.leads} leads per variant, intake {args.concurrency} at a time")
    print(f"{'variant':<26}{'intake leads/s':>16}{'dispatch leads/s':>18}")
    for name, in_rate, out_rate in rows:
        print(f"{name:<26}{in_rate:>16.0f}{out_rate:>18.0f}")
    print(f"takeover after the last renewal (lease 3 s, PostgreSQL): {took:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
