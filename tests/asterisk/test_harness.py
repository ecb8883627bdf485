"""The test harness itself, end to end: real Asterisk, real SIP calls to sipp phones.

Outcome signals asserted here are the ones the engine relies on (see
shared notes "Outcome signals").
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
import base64
from pathlib import Path

import pytest

from tests.support.asterisk import SCRIPT, AriApp
from tests.support.ci import unavailable
from tests.support.phones import PSTN_PORT, VISITOR_TONE_HZ, Phone, agent_port

pytestmark = pytest.mark.asterisk

APP = "callengine-harness"


async def test_ari_answers(asterisk):
    status, info = await asterisk.ari("GET", "/asterisk/info")
    assert status == 200
    assert info["system"]["version"].startswith("22.")
    assert await asterisk.channels() == []
    assert await asterisk.bridges() == []


async def test_ari_rejects_wrong_password(asterisk):
    import aiohttp

    bad = base64.b64encode(b"callengine:wrong").decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {bad}"}) as s:
        async with s.get(f"{asterisk.ari_url}/asterisk/info") as resp:
            assert resp.status == 401


def test_cli(asterisk):
    assert "Asterisk 22." in asterisk.cli("core show version")
    endpoints = asterisk.cli("pjsip show endpoints")
    for name in ["agent1", "agent6", "pstn"]:
        assert f"Endpoint:  {name} " in endpoints


def test_start_is_idempotent(asterisk):
    pid = (asterisk.var_dir / "asterisk.pid").read_text()
    out = subprocess.run([str(SCRIPT), "start"], env=asterisk.env, capture_output=True, text=True, check=True)
    assert "already running" in out.stdout
    assert (asterisk.var_dir / "asterisk.pid").read_text() == pid


def test_started_without_warnings(asterisk):
    log = asterisk.startup_messages  # later lines belong to the tests that ran before
    problems = [line for line in log.splitlines() if " WARNING[" in line or " ERROR[" in line]
    assert problems == []


def test_secrets_are_private(asterisk):
    for name in ["ari_password", "ami_secret"]:
        path = asterisk.var_dir / "secrets" / name
        assert path.stat().st_mode & 0o777 == 0o600
        assert len(path.read_text().strip()) >= 32
    # and none of it is in the repo's configs
    repo_confs = "".join(p.read_text() for p in (Path(__file__).parents[2] / "asterisk-conf").glob("*.conf"))
    assert asterisk.ari_password not in repo_confs


async def test_ami_login(asterisk):
    ami = asterisk.ami
    reader, writer = await asyncio.open_connection(ami.host, ami.port)
    try:
        assert (await reader.readline()).startswith(b"Asterisk Call Manager")
        writer.write(f"Action: Login\r\nUsername: {ami.username}\r\nSecret: {ami.secret}\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"Response: Success" in response
    finally:
        writer.close()


async def test_agent_answers_and_we_hang_up(asterisk):
    async with AriApp(asterisk, APP) as app, Phone(agent_port(1), "answer", answer_after_ms=300) as phone:
        cid = await app.originate("PJSIP/agent1", timeout=10)
        ringing = await app.wait_for("ChannelStateChange", cid, lambda e: e["channel"]["state"] == "Ringing")
        start = await app.wait_for("StasisStart", cid)
        assert start["channel"]["state"] == "Up"
        assert app.events.index(ringing) < app.events.index(start)
        await phone.wait_for("answered")

        # The phone streams its tone: Asterisk receives RTP on the call.
        await asyncio.sleep(1.0)
        assert _rtp_packets_received(asterisk, start["channel"]["name"]) >= 20

        assert await app.hangup(cid) == 204
        destroyed = await app.wait_for("ChannelDestroyed", cid)
        assert destroyed["cause"] == 16
        await phone.wait_for("bye_received")
    assert phone.counters() == {
        "received": 1, "answered": 1, "rejected": 0, "cancelled": 0, "bye_received": 1, "bye_sent": 0,
        "pressed": 0, "registered": 0,
    }
    assert phone.errors() == ""


async def test_agent_hangs_up(asterisk):
    async with AriApp(asterisk, APP) as app, Phone(
        agent_port(2), "answer", answer_after_ms=100, hangup_after_ms=700
    ) as phone:
        cid = await app.originate("PJSIP/agent2", timeout=10)
        await app.wait_for("StasisStart", cid)
        await app.wait_for("ChannelHangupRequest", cid)
        destroyed = await app.wait_for("ChannelDestroyed", cid)
        # Measured on 22.10.1: a plain BYE from the far end gives cause 0 "Unknown"
        # (HangupRequest without a cause); 16 would be Normal Clearing.
        assert destroyed["cause"] in (0, 16)
        await phone.wait_for("bye_sent")
    assert phone.byes_sent == 1 and phone.byes_received == 0


async def test_busy(asterisk):
    async with AriApp(asterisk, APP) as app, Phone(agent_port(3), "busy") as phone:
        t0 = time.monotonic()
        cid = await app.originate("PJSIP/agent3", timeout=10)
        destroyed = await app.wait_for("ChannelDestroyed", cid)
        assert time.monotonic() - t0 < 3
        assert (destroyed["cause"], destroyed.get("tech_cause")) == (17, 486)
        request = await app.wait_for("ChannelHangupRequest", cid)
        assert (request["cause"], request.get("tech_cause")) == (17, 486)
        assert app.find("Dial", cid, lambda e: e["dialstatus"] == "BUSY")
        assert not app.find("StasisStart", cid)
    assert phone.calls_received == 1 and phone.calls_rejected == 1


async def test_unavailable(asterisk):
    async with AriApp(asterisk, APP) as app, Phone(agent_port(4), "unavailable") as phone:
        cid = await app.originate("PJSIP/agent4", timeout=10)
        destroyed = await app.wait_for("ChannelDestroyed", cid)
        assert (destroyed["cause"], destroyed.get("tech_cause")) == (19, 480)
        assert app.find("Dial", cid, lambda e: e["dialstatus"] == "NOANSWER")
    assert phone.calls_rejected == 1


async def test_ring_forever_times_out(asterisk):
    async with AriApp(asterisk, APP) as app, Phone(agent_port(5), "ring_forever") as phone:
        t0 = time.monotonic()
        cid = await app.originate("PJSIP/agent5", timeout=3)
        await app.wait_for("ChannelStateChange", cid, lambda e: e["channel"]["state"] == "Ringing")
        destroyed = await app.wait_for("ChannelDestroyed", cid, timeout=10)
        elapsed = time.monotonic() - t0
        assert 2.8 < elapsed < 5, elapsed
        assert (destroyed["cause"], destroyed.get("tech_cause")) == (19, 480)
        await phone.wait_for("cancelled")
    assert phone.calls_received == 1 and phone.calls_answered == 0


async def test_nothing_listening_never_rings(asterisk):
    # No phone on agent6's port: same cause as no-answer, but no Ringing.
    async with AriApp(asterisk, APP) as app:
        cid = await app.originate("PJSIP/agent6", timeout=2)
        destroyed = await app.wait_for("ChannelDestroyed", cid, timeout=10)
        assert (destroyed["cause"], destroyed.get("tech_cause")) == (19, 480)
        assert not app.find("ChannelStateChange", cid, lambda e: e["channel"]["state"] == "Ringing")


async def test_unknown_endpoint_is_refused(asterisk):
    async with AriApp(asterisk, APP) as app:
        with pytest.raises(RuntimeError, match="HTTP 500"):
            await app.originate("PJSIP/nobody", timeout=2)


async def test_visitor_through_trunk(asterisk):
    number = "+4915112345678"
    async with AriApp(asterisk, APP) as app, Phone(
        PSTN_PORT, "answer", tone_hz=VISITOR_TONE_HZ, answer_after_ms=200
    ) as pstn:
        cid = await app.originate(f"PJSIP/{number}@pstn", timeout=10)
        await app.wait_for("StasisStart", cid)
        await pstn.wait_for("answered")
        assert [c.dialled for c in pstn.calls()] == [number]
        assert await app.hangup(cid) == 204
        await app.wait_for("ChannelDestroyed", cid)
        await pstn.wait_for("bye_received")


async def test_one_phone_takes_several_calls(asterisk):
    async with AriApp(asterisk, APP) as app, Phone(PSTN_PORT, "answer", answer_after_ms=100) as pstn:
        numbers = ["+4930111111", "+4930222222", "+4930333333"]
        ids = [await app.originate(f"PJSIP/{n}@pstn", timeout=10) for n in numbers]
        for cid in ids:
            await app.wait_for("StasisStart", cid)
        await pstn.wait_for("answered", 3)
        assert sorted(c.dialled for c in pstn.calls()) == sorted(numbers)
        for cid in ids:
            await app.hangup(cid)
        for cid in ids:
            await app.wait_for("ChannelDestroyed", cid)
        await pstn.wait_for("bye_received", 3)


async def test_restart_brings_ari_back(asterisk):
    _, before = await asterisk.ari("GET", "/asterisk/info")
    t0 = time.monotonic()
    await asyncio.to_thread(asterisk.restart)
    assert time.monotonic() - t0 < 15
    status, after = await asterisk.ari("GET", "/asterisk/info")
    assert status == 200
    assert after["status"]["startup_time"] != before["status"]["startup_time"]
    # and calls work again
    async with AriApp(asterisk, APP) as app, Phone(agent_port(1), "busy"):
        cid = await app.originate("PJSIP/agent1", timeout=5)
        destroyed = await app.wait_for("ChannelDestroyed", cid)
        assert destroyed["cause"] == 17


def test_runs_as_ordinary_user(asterisk):
    """scripts/asterisk start/cli/status/stop as uid 65534 with its own var dir.

    The session instance holds the fixed ports, so it is stopped meanwhile.
    The user cannot reach root's chroot (in /root): it gets a hard-linked copy
    (files stay root-owned and read-only to it; only the top dir is its own).
    """
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        unavailable("needs root and setpriv to switch to a plain user")
    nobody = 65534
    # Not pytest's tmp_path: its parent is private to root.
    tmp_path = Path(tempfile.mkdtemp(prefix="callengine-nonroot-"))
    chroot = tmp_path / "chroot"
    var = tmp_path / "var"
    subprocess.run(["cp", "-al", str(asterisk.chroot), str(chroot)], check=True)
    var.mkdir()
    for path in (tmp_path, chroot, var):
        os.chown(path, nobody, nobody)
    env = dict(os.environ, CALLENGINE_CHROOT=str(chroot), CALLENGINE_VAR=str(var), HOME=str(tmp_path))
    # The checkout itself may sit below a directory only root can enter (CI clones anywhere):
    # the user runs a copy of what the script reads.
    repo = tmp_path / "repo"
    for part in ("scripts", "asterisk-conf", "dialplan", "tests/asterisk-test"):
        shutil.copytree(SCRIPT.parents[1] / part, repo / part)
    script = repo / "scripts" / "asterisk"

    def as_nobody(*args, check=True):
        return subprocess.run(
            ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", "--", str(script), *args],
            env=env, capture_output=True, text=True, timeout=60, check=check,
        )

    asterisk.stop()
    try:
        started = as_nobody("start", check=False)
        assert started.returncode == 0, started.stdout + started.stderr
        password = (var / "secrets" / "ari_password").read_text().strip()
        assert password != asterisk.ari_password
        token = base64.b64encode(f"callengine:{password}".encode()).decode()
        req = urllib.request.Request(f"{asterisk.ari_url}/asterisk/info", headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        pid = int((var / "asterisk.pid").read_text())
        assert os.stat(f"/proc/{pid}").st_uid == nobody
        assert "Asterisk 22." in as_nobody("cli", "core show version").stdout
        assert as_nobody("status").returncode == 0
        as_nobody("stop")
        assert as_nobody("status", check=False).returncode == 1
        assert not _alive(pid)
    finally:
        as_nobody("stop", check=False)
        shutil.rmtree(tmp_path, ignore_errors=True)
        asterisk.start()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return not re.search(r"^State:\s*Z", status, re.M)


def _rtp_packets_received(asterisk, channel_name: str) -> int:
    """Asterisk's receive count for a PJSIP channel (pjsip show channelstats)."""
    short = channel_name.split("/", 1)[1]
    for line in asterisk.cli("pjsip show channelstats").splitlines():
        fields = line.split()
        if short in fields:
            i = fields.index(short)
            # ChannelId UpTime Codec ReceiveCount ...
            return int(fields[i + 3])
    raise AssertionError(f"{short} not in pjsip show channelstats")
