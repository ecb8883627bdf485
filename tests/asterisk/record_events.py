"""Records the ARI events the engine receives in real calls, as fixtures for the event parser.

Each scenario runs the whole engine (callengine.app.running) against the test Asterisk with
sipp phones, and keeps every websocket message the ARI client hands to parse_event, raw and
in order, in tests/asterisk/fixtures/<scenario>.json. tests/asterisk/test_events.py replays
them without Asterisk.

Re-record (needs the chroot and sipp, like every `asterisk` test; takes ~1 min):

    PYTHONPATH=$PWD .venv/bin/python -m pytest -q -p no:cacheprovider -m asterisk \\
        tests/asterisk/record_events.py

(the file is not named test_*.py, so the normal runs skip it). Then run test_events.py and
commit the fixtures if the sequences it asserts still hold. The visitor's number is the tests'
fake one; `asterisk_id` (the host's MAC address) is replaced by zeros.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from callengine.app import running
from callengine.asterisk import ari as ari_module
from tests.support.engine import add_widget, make_config, submit_lead, wait_for_lead
from tests.support.phones import Phone

pytestmark = pytest.mark.asterisk

FIXTURES = Path(__file__).parent / "fixtures"
ANONYMOUS_ID = "00:00:00:00:00:00"


@pytest.fixture
def recorded(monkeypatch, request):
    """Every raw event the engine's ARI client parses during the test, saved at its end."""
    messages: list[dict[str, Any]] = []
    parse = ari_module.parse_event

    def keep(data: dict[str, Any]):
        messages.append(json.loads(json.dumps(data)))
        return parse(data)

    monkeypatch.setattr(ari_module, "parse_event", keep)
    yield messages
    FIXTURES.mkdir(exist_ok=True)
    name = request.node.name.removeprefix("test_")
    for message in messages:
        if "asterisk_id" in message:
            message["asterisk_id"] = ANONYMOUS_ID
    (FIXTURES / f"{name}.json").write_text(json.dumps(messages, indent=1, ensure_ascii=False)
                                           + "\n")


def agent(scenario: str = "answer", **kw: Any) -> Phone:
    return Phone(5081, scenario, tone_hz=440, **kw)


def pstn(scenario: str = "answer", **kw: Any) -> Phone:
    return Phone(5070, scenario, tone_hz=1000, **kw)


async def _call(asterisk, tmp_path, **settings: Any):
    async with running(make_config(tmp_path, asterisk)) as service:
        widget = await add_widget(service.store, agents=("agent1",), **settings)
        lead_id = await submit_lead(service.base_url, widget)
        return await wait_for_lead(service.store, lead_id, timeout=40)


async def test_answered(asterisk, tmp_path, recorded):
    """Agent answers, hears the whisper, the visitor answers, talks 2 s and hangs up."""
    async with agent(answer_after_ms=500), pstn(answer_after_ms=800, hangup_after_ms=2000):
        lead = await _call(asterisk, tmp_path, whisper="sound:beep")
    assert lead.outcome == "connected"


async def test_agent_busy(asterisk, tmp_path, recorded):
    async with agent("busy"), pstn():
        lead = await _call(asterisk, tmp_path)
    assert lead.outcome == "agents-busy"


async def test_agent_no_answer(asterisk, tmp_path, recorded):
    async with agent("ring_forever"), pstn():
        lead = await _call(asterisk, tmp_path, ring_timeout=3)
    assert lead.outcome == "agents-no-answer"


async def test_visitor_busy(asterisk, tmp_path, recorded):
    async with agent(answer_after_ms=300), pstn("busy"):
        lead = await _call(asterisk, tmp_path, whisper=None)
    assert lead.outcome == "visitor-busy"


async def test_asterisk_restart(asterisk, tmp_path, recorded):
    """`core restart now` during a bridged call: both legs soft-hung-up ("shutdown")."""
    async with agent(answer_after_ms=200), pstn(answer_after_ms=200):
        async with running(make_config(tmp_path, asterisk)) as service:
            widget = await add_widget(service.store, agents=("agent1",), whisper=None)
            lead_id = await submit_lead(service.base_url, widget)
            await wait_for_lead(service.store, lead_id, status="calling", progress="connected")
            await asyncio.sleep(1)
            await asyncio.to_thread(asterisk.restart)
            lead = await wait_for_lead(service.store, lead_id, timeout=30)
    assert lead.cause == "interrupted: Asterisk shut down"
