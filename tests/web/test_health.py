"""/metrics, /readyz and /healthz over the engine driven through the fake ARI
(tests/support/fake_ari.py) and a real store, composed as callengine.app composes them:
metric values after a known set of calls, readiness while ARI is down and after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Outcome
from callengine.metrics import Metrics
from callengine.model import LEAD_DONE, Consent, Lead
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, listening
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll
from tests.support.fake_ari import FakeAri

ADMIN = "admin-token-0123456789abcdef"
METRICS = "metrics-token-0123456789abcdef"
OTHER = "+48601234599"  # a second visitor (the same number again is the same lead)


@asynccontextmanager
async def ops(tmp_path, ari: FakeAri) -> AsyncIterator[tuple[Store, Any, str]]:
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",))
        metrics = Metrics()
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.05),
                        on_finished=metrics.attempt_finished)
        metrics.watch(calls=lambda: engine.active_calls, ari=engine.ready.is_set)
        services = Services(store, on_lead=engine.wake)
        task = asyncio.create_task(engine.run())

        async def new_lead(phone: str = VISITOR) -> Lead:
            lead = await store.create_lead(
                widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name=None,
                email=None, consent=Consent(False, False, "v1"), now=time.time())
            engine.wake()
            return lead

        try:
            async with listening(WebDeps(services, ADMIN, metrics=metrics, metrics_token=METRICS,
                                         ari_ready=engine.ready.is_set),
                                 "127.0.0.1", 0) as port:
                yield store, new_lead, f"http://127.0.0.1:{port}"
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def get(url: str, token: str | None = None) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            return response.status, response.content_type, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def channel_of(ari: FakeAri, part: str, skip: set[str]):
    async def check() -> str | None:
        return next((c[2] for c in ari.requests("originate")
                     if part in c[1] and c[2] not in skip), None)
    return check


def done(store: Store, lead_id: str):
    async def check() -> Lead | None:
        lead = await store.get_lead(lead_id)
        return lead if lead.status == LEAD_DONE else None
    return check


async def test_metric_values_after_a_known_set_of_calls(tmp_path):
    ari = FakeAri(answer=False)
    async with ops(tmp_path, ari) as (store, new_lead, base):
        seen: set[str] = set()
        # 1: the agent answers, then the visitor; they talk; the visitor hangs up.
        first = await new_lead()
        agent = await poll(channel_of(ari, "agent1", seen))
        seen.add(agent)
        ari.answer(agent)
        visitor = await poll(channel_of(ari, "@pstn", seen))
        seen.add(visitor)
        ari.answer(visitor)

        async def connected() -> bool:
            return (await store.get_lead(first.id)).progress == "connected"
        await poll(connected)
        status, _, text = await get(f"{base}/metrics", METRICS)
        assert status == 200
        assert samples(text)[("callengine_calls_count", ())] == 1
        ari.far_end_hangs_up("@pstn")
        assert (await poll(done(store, first.id))).outcome == Outcome.CONNECTED.value
        # 2: the agent's phone is busy (the lead's one attempt: it closes).
        second = await new_lead(OTHER)
        agent = await poll(channel_of(ari, "agent1", seen))
        seen.add(agent)
        ari.reject(agent, 17, "User busy")
        busy = (await poll(done(store, second.id))).outcome

        status, kind, text = await get(f"{base}/metrics", METRICS)
    assert status == 200 and kind == "text/plain"
    values = samples(text)
    assert values[("callengine_attempts_total", (("outcome", "connected"),))] == 1
    assert values[("callengine_attempts_total", (("outcome", busy),))] == 1
    assert values[("callengine_leads_count", (("outcome", "connected"), ("status", "done")))] == 1
    assert values[("callengine_leads_count", (("outcome", busy), ("status", "done")))] == 1
    assert values[("callengine_calls_count", ())] == 0
    assert values[("callengine_calls_agent_ring_seconds_count", ())] == 1  # one agent answered
    assert values[("callengine_calls_visitor_ring_seconds_count", ())] == 1
    assert values[("callengine_calls_talk_seconds_count", ())] == 1
    assert values[("callengine_ari_connection_state", ())] == 1
    assert values[("callengine_recordings_bytes_total", ())] == 0
    for phone in (VISITOR, OTHER):  # no number, in any form
        assert phone[1:] not in text and phone[-9:] not in text


async def test_metrics_need_the_metrics_or_the_admin_token(tmp_path):
    async with ops(tmp_path, FakeAri()) as (_, _, base):
        for token in (None, "wrong-token-0123456789", ""):
            status, kind, _ = await get(f"{base}/metrics", token)
            assert (status, kind) == (401, "application/problem+json")
        assert (await get(f"{base}/metrics", ADMIN))[0] == 200
        assert (await get(f"{base}/metrics", METRICS))[0] == 200


async def test_readyz_is_false_while_ari_is_down_and_true_after(tmp_path):
    ari = FakeAri()
    async with ops(tmp_path, ari) as (_, _, base):
        async def answers(wanted: int):
            async def check():
                status, kind, text = await get(f"{base}/readyz")
                return (status, kind, text) if status == wanted else None
            return check

        status, kind, text = await poll(await answers(200))
        assert kind == "application/json" and '"ari": {"ok": true' in text
        assert (await get(f"{base}/healthz"))[0] == 200

        ari.go_down()
        status, kind, text = await poll(await answers(503))
        assert kind == "application/problem+json"
        assert '"ari": {"ok": false, "detail": "ARI events not connected"}' in text
        assert '"store": {"ok": true' in text
        assert (await get(f"{base}/healthz"))[0] == 200  # alive all the same
        metrics_text = (await get(f"{base}/metrics", ADMIN))[2]
        assert samples(metrics_text)[("callengine_ari_connection_state", ())] == 0

        ari.come_back()
        await poll(await answers(200))


async def test_readyz_is_false_when_the_store_fails(tmp_path):
    async with ops(tmp_path, FakeAri()) as (store, _, base):
        async def broken() -> int:
            raise RuntimeError("disk gone")
        store.schema_version = broken  # type: ignore[method-assign]
        status, kind, text = await get(f"{base}/readyz")
    assert (status, kind) == (503, "application/problem+json")
    assert '"store": {"ok": false, "detail": "the store failed (RuntimeError)"}' in text
