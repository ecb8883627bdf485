"""/readyz and /metrics against the real Asterisk (sipp phones): readiness fails while Asterisk
is stopped and recovers after it is started again; metric values after real calls."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callengine.app import running
from tests.support.engine import ADMIN_TOKEN, add_widget, make_config, submit_lead, wait_for_lead
from tests.support.phones import Phone

pytestmark = pytest.mark.asterisk

OTHER = "+48601234599"  # a second visitor (tests.support.engine.VISITOR is the first)


async def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            return response.status, await response.text()


async def _until(url: str, status: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        got, text = await _get(url)
        if got == status:
            return text
        assert time.monotonic() < deadline, f"{url} answered {got}, not {status}: {text}"
        await asyncio.sleep(0.2)


async def test_readyz_fails_while_asterisk_is_stopped_and_recovers(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service:
        ready = f"{service.base_url}/readyz"
        await _until(ready, 200)
        asterisk.stop()
        try:
            text = await _until(ready, 503)
            assert '"ari": {"ok": false' in text and '"store": {"ok": true' in text
            assert (await _get(f"{service.base_url}/healthz"))[0] == 200  # alive all the same
        finally:
            asterisk.start()
        await _until(ready, 200, timeout=60)


async def test_metric_values_after_real_calls(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service:
        widget = await add_widget(service.store, agents=("agent1",))
        async with Phone(5081, "answer", answer_after_ms=300), \
                Phone(5070, "answer", answer_after_ms=300, hangup_after_ms=2000):
            first = await submit_lead(service.base_url, widget)
            assert (await wait_for_lead(service.store, first, timeout=30)).outcome == "connected"
        async with Phone(5081, "busy"):
            second = await submit_lead(service.base_url, widget, OTHER)
            busy = (await wait_for_lead(service.store, second, timeout=30)).outcome
        status, text = await _get(f"{service.base_url}/metrics", ADMIN_TOKEN)
    assert status == 200
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}
    assert values[("callengine_attempts_total", (("outcome", "connected"),))] == 1
    assert values[("callengine_attempts_total", (("outcome", busy),))] == 1
    assert values[("callengine_leads_count", (("outcome", "connected"), ("status", "done")))] == 1
    assert values[("callengine_calls_count", ())] == 0
    assert values[("callengine_calls_talk_seconds_count", ())] == 1
    assert 1.0 < values[("callengine_calls_talk_seconds_sum", ())] < 4.0
    assert values[("callengine_ari_connection_state", ())] == 1
    assert OTHER[1:] not in text
