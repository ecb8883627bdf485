"""Two real Asterisk nodes on one machine (fixtures `asterisk` on 127.0.0.1 and
`second_asterisk` on 127.0.0.2, same ports, separate state and secrets): each answers on its own
address, each reaches only the phones on its own address, and a call on node 2 carries audio.

Presence is shown with agent7, an endpoint whose phone registers: the static test agents
(agent1..agent6, qualify off) read "online" (NonQual) whether a phone listens or not (see
tests/engine/test_presence_asterisk.py), so they cannot tell which node has a phone."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import time
import uuid

import aiohttp
import numpy as np
import pytest

from tests.support.asterisk import AriApp
from tests.support.audio import band_fractions
from tests.support.phones import (
    AGENT_TONE_HZ, PSTN_PORT, VISITOR_TONE_HZ, RegisteringPhone, agent_port, udp_bound_addresses,
)

pytestmark = pytest.mark.asterisk

APP = "callengine-node2-test"
AGENT7_PASSWORD = "test-password-agent7"  # tests/asterisk-test/pjsip_test.conf
SLIN16_PT = 118  # Asterisk's dynamic payload type for slin16 over externalMedia RTP
TAP_S = 2.0


async def info(node) -> dict:
    status, body = await node.ari("GET", "/asterisk/info")
    assert status == 200, (node, status, body)
    return body  # type: ignore[return-value]


async def endpoint_state(node, name: str) -> str:
    status, body = await node.ari("GET", f"/endpoints/PJSIP/{name}")
    assert status == 200, (node, body)
    return body["state"]


async def ami_login(node) -> bytes:
    ami = node.ami
    reader, writer = await asyncio.open_connection(ami.host, ami.port)
    try:
        assert (await reader.readline()).startswith(b"Asterisk Call Manager")
        writer.write(f"Action: Login\r\nUsername: {ami.username}\r\nSecret: {ami.secret}\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()


async def test_both_nodes_answer_as_separate_instances(asterisk, second_asterisk):
    assert (asterisk.address, second_asterisk.address) == ("127.0.0.1", "127.0.0.2")
    assert second_asterisk.ari_url == "http://127.0.0.2:8088/ari"
    one, two = await info(asterisk), await info(second_asterisk)
    assert one["system"]["version"].startswith("22.") and two["system"]["version"].startswith("22.")
    assert one["status"]["startup_time"] != two["status"]["startup_time"]
    pids = {node.address: (node.var_dir / "asterisk.pid").read_text().strip()
            for node in (asterisk, second_asterisk)}
    assert len(set(pids.values())) == 2, pids

    # Their own secrets: node 1's ARI password does not open node 2.
    assert asterisk.ari_password != second_asterisk.ari_password
    token = base64.b64encode(f"callengine:{asterisk.ari_password}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as session:
        async with session.get(f"{second_asterisk.ari_url}/asterisk/info") as resp:
            assert resp.status == 401
    # AMI on node 2's address, with node 2's secret.
    assert second_asterisk.ami.host == "127.0.0.2"
    assert b"Response: Success" in await ami_login(second_asterisk)
    assert b"Response: Success" in await ami_login(asterisk)
    # Each node's SIP transport is on its own address.
    assert "127.0.0.2:5060" in second_asterisk.cli("pjsip show transports")
    assert "127.0.0.1:5060" in asterisk.cli("pjsip show transports")


async def test_a_phone_registered_on_node2_is_online_there_only(asterisk, second_asterisk):
    assert await endpoint_state(asterisk, "agent7") == "offline"
    assert await endpoint_state(second_asterisk, "agent7") == "offline"
    phone = RegisteringPhone(agent_port(7), "agent7", AGENT7_PASSWORD, host=second_asterisk.address,
                             answer_after_ms=200)
    assert phone.registrar == "127.0.0.2:5060"
    await phone.astart()
    try:
        await phone.registered()
        assert await endpoint_state(second_asterisk, "agent7") == "online"
        assert await endpoint_state(asterisk, "agent7") == "offline"
        contacts = second_asterisk.cli("pjsip show contacts")
        assert f"127.0.0.2:{agent_port(7)}" in contacts, contacts
    finally:
        await asyncio.to_thread(phone.unregister)
    deadline = time.monotonic() + 5
    while await endpoint_state(second_asterisk, "agent7") != "offline":
        assert time.monotonic() < deadline, "agent7 still online on node 2 after unregistering"
        await asyncio.sleep(0.1)


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[tuple[bytes, tuple]] = []

    def datagram_received(self, data: bytes, addr) -> None:
        self.packets.append((data, addr))


def slin16_payload(packet: bytes) -> bytes | None:
    """The audio of one RTP packet (RFC 3550 header, CSRCs, extension) if it is slin16."""
    if len(packet) < 12 or packet[0] >> 6 != 2 or packet[1] & 0x7F != SLIN16_PT:
        return None
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        (words,) = struct.unpack_from("!H", packet, offset + 2)
        offset += 4 + 4 * words
    end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)
    return packet[offset:end]


async def test_a_call_on_node2_is_answered_and_carries_audio(asterisk, second_asterisk):
    """agent1 and a visitor through node 2's "pstn" trunk, both sipp phones on 127.0.0.2, in a
    mixing bridge of node 2 with an externalMedia tap whose RTP comes to us: both tones in it.
    Node 1's agent1 (contact 127.0.0.1:5081, no phone there) does not even ring."""
    node = second_asterisk
    suffix = uuid.uuid4().hex
    agent, visitor, tap, bridge = (f"node2-{part}-{suffix}" for part in ("agent", "visitor", "tap", "bridge"))
    loop = asyncio.get_running_loop()
    transport, rtp = await loop.create_datagram_endpoint(_Rtp, local_addr=(node.address, 0))
    port = transport.get_extra_info("sockname")[1]
    async with AriApp(node, APP) as app, AriApp(asterisk, APP) as app1, \
            node.phone(agent_port(1), tone_hz=AGENT_TONE_HZ, answer_after_ms=100) as agent_phone, \
            node.phone(PSTN_PORT, tone_hz=VISITOR_TONE_HZ, answer_after_ms=100) as pstn:
        try:
            # node 1 has no phone for agent1: it never rings there (timeout, 480)
            lonely = await app1.originate("PJSIP/agent1", timeout=2)
            await app.originate("PJSIP/agent1", timeout=10, channelId=agent)
            await app.originate("PJSIP/+4915112345678@pstn", timeout=10, channelId=visitor)
            started = await app.wait_for("StasisStart", agent)
            assert started["channel"]["state"] == "Up"
            assert (await app.wait_for("StasisStart", visitor))["channel"]["state"] == "Up"
            await agent_phone.wait_for("answered")
            await pstn.wait_for("answered")
            assert [c.dialled for c in pstn.calls()] == ["+4915112345678"]
            # The calls' media sockets are on node 2's address. (CHANNEL(rtp,src) names the
            # port but reads 127.0.0.1 here: the kernel's source address towards 127.0.0.2.)
            for channel in (agent, visitor):
                status, body = await node.ari("GET", f"/channels/{channel}/variable",
                                              variable="CHANNEL(rtp,src)")
                assert status == 200, body
                rtp_port = int(body["value"].rsplit(":", 1)[1])
                bound = udp_bound_addresses(rtp_port)  # (node 1 may use the port on its own)
                assert node.address in bound and "0.0.0.0" not in bound, (body, bound)

            status, body = await node.ari("POST", "/bridges", type="mixing", bridgeId=bridge)
            assert status == 200, body
            status, body = await node.ari("POST", "/channels/externalMedia", app=APP, channelId=tap,
                                          external_host=f"{node.address}:{port}", format="slin16")
            assert status == 200, body
            await app.wait_for("StasisStart", tap)
            for attempt in range(20):  # 422 "not in Stasis" right after the StasisStart: retry
                status, body = await node.ari("POST", f"/bridges/{bridge}/addChannel",
                                              channel=f"{agent},{visitor},{tap}")
                if status != 422:
                    break
                await asyncio.sleep(0.1)
            assert status == 204, (status, body)
            _, local_address = await node.ari("GET", f"/channels/{tap}/variable",
                                              variable="UNICASTRTP_LOCAL_ADDRESS")
            await asyncio.sleep(TAP_S)

            destroyed = await app1.wait_for("ChannelDestroyed", lonely, timeout=10)
            assert (destroyed["cause"], destroyed.get("tech_cause")) == (19, 480)
            assert not app1.find("ChannelStateChange", lonely,
                                 lambda e: e["channel"]["state"] == "Ringing")
        finally:
            for channel in (agent, visitor, tap):
                await node.ari("DELETE", f"/channels/{channel}")
            await node.ari("DELETE", f"/bridges/{bridge}")
            transport.close()
        for channel in (agent, visitor, tap):
            await app.wait_for("ChannelDestroyed", channel)
        await agent_phone.wait_for("bye_received")
        await pstn.wait_for("bye_received")
    assert agent_phone.errors() == "" and pstn.errors() == ""

    payloads = [p for p in (slin16_payload(data) for data, _ in rtp.packets) if p]
    assert len(payloads) > 40 * TAP_S, (len(rtp.packets), len(payloads))
    pcm = np.frombuffer(b"".join(payloads[10:]), ">i2").astype("<i2").tobytes()  # skip the join
    shares = band_fractions(pcm, 16000)
    assert shares[AGENT_TONE_HZ] > 0.2 and shares[VISITOR_TONE_HZ] > 0.2, shares
    print(f"\nnode 2 tap: {len(payloads)} slin16 packets from {rtp.packets[0][1]} "
          f"(UNICASTRTP_LOCAL_ADDRESS {local_address}), tone shares {shares}")

    # nothing left on either node
    for each in (asterisk, second_asterisk):
        channels, bridges = await asyncio.to_thread(each.wait_idle, 5)
        assert (channels, bridges) == ([], []), each


def test_node2_phone_ports_do_not_collide_with_node1s():
    """Phones on both nodes' addresses with the same port at once (no Asterisk needed)."""
    from tests.support.phones import Phone

    with contextlib.ExitStack() as stack:
        one = stack.enter_context(Phone(agent_port(3), "busy"))
        two = stack.enter_context(Phone(agent_port(3), "busy", host="127.0.0.2"))
        assert (one.host, two.host) == ("127.0.0.1", "127.0.0.2")
        with pytest.raises(RuntimeError, match="already in use"):
            Phone(agent_port(3), "busy", host="127.0.0.2").start()
