"""One engine driving two real Asterisk nodes (`asterisk` on 127.0.0.1 as node "main",
`second_asterisk` on 127.0.0.2 as "node2"): an agent whose phone registers with node 2 is rung
there, the visitor is dialled through node 2's own trunk, the call is recorded through the RTP
route from node 2; node 2 stopped mid-call ends that call with its cause while node 1 goes on
dialling; nothing is left on either node.

agent7 is the endpoint that tells nodes apart: its phone registers (the static agent1..agent6
read online on every node, tests/engine/test_second_node.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from callengine.app import running
from callengine.config import NodeConfig
from callengine.presence import FREE, OFFLINE
from tests.support.audio import assert_both_tones, decrypt, scan_for_plaintext
from tests.support.engine import add_widget, make_config, submit_lead, wait_for_lead
from tests.support.phones import AGENT_TONE_HZ, PSTN_PORT, VISITOR_TONE_HZ, RegisteringPhone, agent_port
from tests.support.recordings import NOTICE, recipient_keys, recording_notice

pytestmark = pytest.mark.asterisk

AGENT7_PASSWORD = "test-password-agent7"  # tests/asterisk-test/pjsip_test.conf
DOWN_AFTER_S = 3.0


def two_node_config(tmp_path: Path, asterisk, second_asterisk, **kw):
    config = make_config(tmp_path, asterisk, recording_route="rtp", **kw)
    node2 = NodeConfig("node2", second_asterisk.ari_url, second_asterisk.ari_user,
                       second_asterisk.ari_password)
    return replace(config, ari=replace(config.ari, down_after_s=DOWN_AFTER_S), nodes=(node2,))


def agent7_on(node, **kw) -> RegisteringPhone:
    return RegisteringPhone(agent_port(7), "agent7", AGENT7_PASSWORD, host=node.address,
                            tone_hz=AGENT_TONE_HZ, **kw)


async def until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)
    return value


async def free(service, endpoint: str) -> bool:
    return service.engine.presence.state(endpoint) == FREE


async def app_registered(node) -> bool:
    """The engine's ARI application is subscribed on that node (its websocket is up)."""
    status, _ = await node.ari("GET", "/applications/callengine")
    return status == 200


async def test_a_call_on_node2_rings_dials_and_records_there(asterisk, second_asterisk, tmp_path):
    private, public_file = recipient_keys(tmp_path)
    for node in (asterisk, second_asterisk):  # a prompt is played by the node of the call
        recording_notice(node, tmp_path)
    config = two_node_config(tmp_path, asterisk, second_asterisk, public_key_file=public_file)
    async with running(config) as service, agent7_on(second_asterisk, answer_after_ms=200) as phone, \
            second_asterisk.phone(PSTN_PORT, tone_hz=VISITOR_TONE_HZ, answer_after_ms=300,
                                  hangup_after_ms=5000) as visitor, \
            asterisk.phone(PSTN_PORT, tone_hz=VISITOR_TONE_HZ) as node1_pstn:
        await phone.registered()
        await until(lambda: free(service, "PJSIP/agent7"),
                    10, "agent7 never read online")
        widget = await add_widget(service.store, agents=("agent7",), recording="on",
                                  recording_notice=NOTICE)
        lead_id = await submit_lead(service.base_url, widget, recording_consent=True)
        await wait_for_lead(service.store, lead_id, status="calling", progress="connected",
                            timeout=30)
        # mid-call, both legs and the bridge live on node 2, none on node 1
        ours2 = [c["name"] for c in await second_asterisk.channels() if c["id"].startswith("ce-")]
        assert len(ours2) == 3, ours2  # the agent, the visitor, the recording's tap
        assert len(await second_asterisk.bridges()) == 1
        assert await asterisk.channels() == [] and await asterisk.bridges() == []
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
        attempt, = await service.store.attempts_for(lead_id)
        recording, = await service.store.list_recordings(lead_id=lead_id)
        await asyncio.to_thread(phone.unregister)
    assert lead.outcome == "connected", (lead, attempt)
    assert attempt.agent == "PJSIP/agent7" and 3 < attempt.talk_s < 6, attempt
    assert [c.dialled for c in visitor.calls()] == ["+48601234567"]
    assert node1_pstn.calls() == []  # node 1's trunk was never used
    assert recording.status == "complete" and recording.route == "rtp", recording
    pcm = decrypt(config.recordings_dir / recording.file_name,
                  await _file_key(config.keystore, recording.id, private))
    assert_both_tones(pcm, config.recording.sample_rate)
    assert scan_for_plaintext(tmp_path, second_asterisk.state_dir, asterisk.state_dir) == []


async def _file_key(keystore_path: Path, recording_id: str, private: bytes) -> bytes:
    from callengine.recordings import RecordingVault
    from callengine.storage import KeyStore

    async with KeyStore.open(keystore_path) as keystore:
        return await RecordingVault(Path("."), keystore, [private]).file_key(recording_id)


@pytest.mark.parametrize("how, cause, within", [
    ("stop", "interrupted: Asterisk node node2 shut down", (0, 3)),  # its channels hung up
    ("kill", "interrupted: Asterisk node node2 down", (DOWN_AFTER_S - 0.5, DOWN_AFTER_S + 5)),
])
async def test_node2_lost_mid_call_ends_its_call_and_node1_dials_on(
        asterisk, second_asterisk, tmp_path, how, cause, within, caplog):
    """Stopped (`core stop now`: Asterisk hangs its channels up and says why) or SIGKILLed (the
    websocket just drops: the call is closed once node 2 stayed away DOWN_AFTER_S)."""
    config = two_node_config(tmp_path, asterisk, second_asterisk)
    try:
        async with running(config) as service, \
                agent7_on(second_asterisk, answer_after_ms=200) as phone, \
                second_asterisk.phone(PSTN_PORT, tone_hz=VISITOR_TONE_HZ, answer_after_ms=300), \
                asterisk.phone(agent_port(1), tone_hz=AGENT_TONE_HZ, answer_after_ms=200) as agent1, \
                asterisk.phone(PSTN_PORT, tone_hz=VISITOR_TONE_HZ, answer_after_ms=300,
                               hangup_after_ms=2000) as visitor1:
            await phone.registered()
            await until(lambda: free(service, "PJSIP/agent7"),
                        10, "agent7 never read online")
            on_node2 = await add_widget(service.store, agents=("agent7",), widget_id="n2",
                                        whisper=None)
            on_node1 = await add_widget(service.store, agents=("agent1",), widget_id="n1",
                                        whisper=None)
            lead2 = await submit_lead(service.base_url, on_node2)
            await wait_for_lead(service.store, lead2, status="calling", progress="connected",
                                timeout=30)
            stopped = time.monotonic()
            await asyncio.to_thread(getattr(second_asterisk, how))
            done2 = await wait_for_lead(service.store, lead2, timeout=DOWN_AFTER_S + 20)
            closed_after = time.monotonic() - stopped
            attempt2, = await service.store.attempts_for(lead2)
            assert service.engine.presence.state("PJSIP/agent7") == OFFLINE
            # node 1 dials on meanwhile
            lead1 = await submit_lead(service.base_url, on_node1)
            done1 = await wait_for_lead(service.store, lead1, timeout=30)
            attempt1, = await service.store.attempts_for(lead1)
            # node 2 comes back: the engine reconnects and finds nothing of its own left there
            await asyncio.to_thread(second_asterisk.start)
            await until(lambda: app_registered(second_asterisk), 20,
                        "the engine never reconnected to node 2")
            assert service.engine.active_calls == 0
        assert attempt2.cause == cause, attempt2
        # taken for down once for the whole outage, however often the reconnects failed
        downs = [r for r in caplog.records
                 if r.name == "callengine.nodes" and "node node2 down:" in r.getMessage()]
        assert len(downs) == 1, downs
        assert attempt2.connected and attempt2.agent == "PJSIP/agent7"
        assert done2.status == "done" and done2.outcome == "failed", done2
        assert within[0] <= closed_after < within[1], closed_after
        assert done1.outcome == "connected" and attempt1.agent == "PJSIP/agent1", attempt1
        assert agent1.calls_answered == 1 and visitor1.calls_answered == 1
    finally:
        if not second_asterisk.is_running():
            second_asterisk.start()  # the session's node 2, for the tests after this one
