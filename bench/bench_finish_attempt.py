"""What the webhooks' outbox adds to finish_attempt: its transaction closes the attempt and the
lead and writes attempt.finished and lead.done (outbox.py: an INSERT … WHERE EXISTS over the
subscribed endpoints, each a json_each of its event list, and one delivery per endpoint).

    .venv/bin/python bench/bench_finish_attempt.py [--leads 2000]

Per variant, a store of its own with that many leads, each with an attempt started; then every
attempt finished (a closed lead: both events), one after another; prints p50/p99/mean ms per
finish_attempt. Variants: the outbox's statements left out (before webhooks), no endpoint, one
endpoint subscribed to '*', five endpoints (two subscribed). Checks the deliveries written."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import DATA_KEY, parser, pct  # (puts the repository on sys.path)

from callengine.flow import Outcome, Result
from callengine.model import Consent
from callengine.storage import Store
from callengine.storage.queries import leads as lead_queries
from tests.support.engine import add_widget

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def variant(directory: Path, leads: int, endpoints: list[tuple[str, ...]],
                  outbox: bool) -> tuple[list[float], int]:
    async with Store.open(directory / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store)
        attempts = []
        for i in range(leads):
            lead = await store.create_lead(
                widget, phone_e164=f"+4860{i:07d}", phone_region="PL", phone_kind="mobile",
                name=None, email=None, consent=Consent(False, False, "v1"),
                now=time.time() - 60 * (leads - i))  # one a minute: within the hourly limit
            await store.get_lead(lead.id)
            attempts.append(await store.start_attempt(lead.id, time.time()))
        for events in endpoints:  # after the seeding: only finish_attempt writes deliveries
            await store.add_webhook("http://crm.example/hook", "", events, False, SECRET, 1.0)
        saved = lead_queries._attempt_events
        if not outbox:
            async def nothing(*args, **kwargs):
                return None
            lead_queries._attempt_events = nothing
        try:
            times = []
            result = Result(Outcome.VISITOR_BUSY, q850=17, agent="PJSIP/agent1")
            for attempt in attempts:
                began = time.perf_counter()
                await store.finish_attempt(attempt, result, time.time(), retry_at=None)
                times.append((time.perf_counter() - began) * 1000)
        finally:
            lead_queries._attempt_events = saved
        rows = await store._db.execute_fetchall("SELECT COUNT(*) FROM webhook_deliveries")
        return times, rows[0][0]


async def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--leads", type=int, default=2000)
    args = ap.parse_args()
    variants = [
        ("no outbox statements", [], False, 0),
        ("outbox, no endpoint", [], True, 0),
        ("outbox, 1 endpoint '*'", [("*",)], True, 2),
        ("outbox, 5 endpoints (2 subscribed)", [("*",), ("lead.done", "attempt.finished"),
                                                ("lead.created",), ("recording.ready",),
                                                ("subject.erased",)], True, 4),
    ]
    ok = True
    print(f"finish_attempt, {args.leads} closed leads each, ms: p50 / p99 / mean")
    for name, endpoints, outbox, per_lead in variants:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            times, deliveries = await variant(Path(tmp), args.leads, endpoints, outbox)
        print(f"  {name:38} {pct(times, 50):6.3f} / {pct(times, 99):6.3f} /"
              f" {statistics.mean(times):6.3f}   deliveries {deliveries}")
        if deliveries != per_lead * args.leads:
            print(f"    CHECK FAILED: expected {per_lead * args.leads} deliveries")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
