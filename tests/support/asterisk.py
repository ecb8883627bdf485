"""The real Asterisk the tests run against (started by scripts/asterisk).

tests/conftest.py turns this into the session fixture `asterisk`; see there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "asterisk"
LOCK_PATH = "/tmp/callengine-asterisk.lock"

# Where scripts/asterisk mounts the state dir inside the chroot.
CHROOT_STATE_DIR = "/var/lib/callengine-asterisk"


def chroot_dir() -> Path:
    default = Path.home() / ".cache" / "callengine" / "asterisk-sid"
    return Path(os.environ.get("CALLENGINE_CHROOT") or default)


def var_dir() -> Path:
    return Path(os.environ.get("CALLENGINE_VAR") or REPO / "var")


def missing_prerequisites() -> list[str]:
    """What the real-Asterisk tests need and this machine lacks ([] = all there)."""
    missing = []
    if not (chroot_dir() / "usr" / "sbin" / "asterisk").exists():
        missing.append(f"the Asterisk chroot at {chroot_dir()} (run scripts/setup or scripts/asterisk build)")
    for tool, package in (("sipp", "sip-tester"), ("sox", "sox"), ("curl", "curl"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {package})")
    return missing


@dataclass(frozen=True)
class AmiCredentials:
    host: str
    port: int
    username: str
    secret: str


DEFAULT_ADDRESS = "127.0.0.1"
# The tests' second Asterisk "node" (the session fixture second_asterisk): same ports, its own
# loopback address, its own state dir.
NODE2_ADDRESS = "127.0.0.2"


def node2_var_dir(first: Path | None = None) -> Path:
    """The second node's state dir: `node2` inside the first's (so $CALLENGINE_VAR holds both)."""
    return Path(first or var_dir()) / "node2"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


class Asterisk:
    """Handle on an Asterisk started by scripts/asterisk, with ARI helpers.

    `address`: the loopback address the instance binds ARI/HTTP, AMI, SIP and the test
    endpoints' media to (scripts/asterisk's CALLENGINE_ASTERISK_ADDRESS); the ports are the
    same on every address (8088, 5038, 5060)."""

    ari_user = "callengine"
    ari_port = 8088
    ami_port = 5038
    sip_port = 5060

    def __init__(self, var: Path | None = None, chroot: Path | None = None,
                 address: str = DEFAULT_ADDRESS) -> None:
        self.var_dir = var or var_dir()
        self.chroot = chroot or chroot_dir()
        self.address = address
        self.ari_url = f"http://{address}:{self.ari_port}/ari"
        self.ari_ws_url = f"ws://{address}:{self.ari_port}/ari/events"
        self.env = dict(os.environ, CALLENGINE_VAR=str(self.var_dir), CALLENGINE_CHROOT=str(self.chroot),
                        CALLENGINE_ASTERISK_ADDRESS=address)

    # ---- credentials and paths

    @property
    def ari_password(self) -> str:
        return (self.var_dir / "secrets" / "ari_password").read_text().strip()

    @property
    def ami(self) -> AmiCredentials:
        secret = (self.var_dir / "secrets" / "ami_secret").read_text().strip()
        return AmiCredentials(self.address, self.ami_port, "callengine", secret)

    @property
    def sip_registrar(self) -> str:
        """host:port of the SIP transport (where a RegisteringPhone registers)."""
        return f"{self.address}:{self.sip_port}"

    def auth_header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.ari_user}:{self.ari_password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    @property
    def state_dir(self) -> Path:
        """Host path of Asterisk's writable dir (/var/lib/callengine-asterisk inside)."""
        return self.var_dir / "asterisk" / "state"

    def host_path(self, inner: str) -> Path:
        """Host path of a path Asterisk sees under /var/lib/callengine-asterisk."""
        rel = Path(inner).relative_to(CHROOT_STATE_DIR)
        return self.state_dir / rel

    @property
    def group_id(self) -> int | None:
        """The group Asterisk runs as: the chroot's `asterisk` group when started as root
        (scripts/asterisk drops to that user); None otherwise (one uid does everything)."""
        if os.geteuid() != 0:
            return None
        for line in (self.chroot / "etc" / "group").read_text().splitlines():
            name, _, gid, *_ = line.split(":")
            if name == "asterisk":
                return int(gid)
        return None

    @property
    def recording_dir(self) -> Path:
        """Host path of Asterisk's spool/recording (ARI recordings land here)."""
        return self.state_dir / "spool" / "recording"

    @property
    def messages_log(self) -> Path:
        return self.state_dir / "log" / "messages"

    # ---- lifecycle (scripts/asterisk)

    def _script(self, *args: str, timeout: float = 60) -> str:
        proc = subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"scripts/asterisk {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout

    def start(self) -> None:
        self._script("start")
        # What Asterisk logged while starting, before any test made it log anything.
        self.startup_messages = self.messages_log.read_text()

    def stop(self) -> None:
        self._script("stop")

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug: no shutdown events, the websockets just drop."""
        pid = int((self.var_dir / "asterisk.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and not _zombie(pid):
            assert time.monotonic() < deadline, f"Asterisk pid {pid} survived SIGKILL"
            time.sleep(0.05)

    def restart(self) -> None:
        """`core restart now`; returns when ARI answers again (websockets drop with 1006)."""
        self._script("restart")

    def is_running(self) -> bool:
        return subprocess.run([str(SCRIPT), "status"], env=self.env, capture_output=True).returncode == 0

    def __repr__(self) -> str:
        return f"Asterisk({self.address}, var={self.var_dir})"

    def phone(self, port: int, role: str = "answer", **kw):
        """A test phone (tests/support/phones.py Phone, not started) on this node's address:
        the one its endpoint with contact sip:<address>:<port> reaches."""
        from tests.support.phones import Phone

        return Phone(port, role, host=self.address, **kw)

    def cli(self, command: str) -> str:
        """Output of an Asterisk CLI command (asterisk -rx)."""
        return self._script("cli", command, timeout=30)

    # ---- ARI

    async def ari(self, method: str, path: str, **params) -> tuple[int, object]:
        """One ARI request; returns (status, decoded JSON or text)."""
        async with aiohttp.ClientSession(headers=self.auth_header()) as session:
            async with session.request(method, f"{self.ari_url}{path}", params=params) as resp:
                text = await resp.text()
                try:
                    body = json.loads(text) if text else None
                except ValueError:
                    body = text
                return resp.status, body

    async def channels(self) -> list[dict]:
        status, body = await self.ari("GET", "/channels")
        assert status == 200, (status, body)
        return body  # type: ignore[return-value]

    async def bridges(self) -> list[dict]:
        status, body = await self.ari("GET", "/bridges")
        assert status == 200, (status, body)
        return body  # type: ignore[return-value]

    # Synchronous variants, for fixtures that run outside the event loop.

    def ari_sync(self, method: str, path: str) -> tuple[int, object]:
        req = urllib.request.Request(f"{self.ari_url}{path}", method=method, headers=self.auth_header())
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def leftovers(self) -> tuple[list[dict], list[dict]]:
        _, channels = self.ari_sync("GET", "/channels")
        _, bridges = self.ari_sync("GET", "/bridges")
        return list(channels or []), list(bridges or [])  # type: ignore[arg-type]

    def wait_idle(self, timeout: float = 5) -> tuple[list[dict], list[dict]]:
        """Wait for 0 channels and 0 bridges; returns what is left after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            channels, bridges = self.leftovers()
            if (not channels and not bridges) or time.monotonic() > deadline:
                return channels, bridges
            time.sleep(0.1)

    def clear(self) -> None:
        """Hang up every channel and destroy every bridge."""
        channels, bridges = self.leftovers()
        for channel in channels:
            self.ari_sync("DELETE", f"/channels/{channel['id']}")
        for bridge in bridges:
            self.ari_sync("DELETE", f"/bridges/{bridge['id']}")
        self.wait_idle(5)


class AriApp:
    """A Stasis application for tests: one events websocket, events collected in order.

        async with AriApp(asterisk, "callengine-harness") as app:
            cid = await app.originate("PJSIP/agent1", timeout=10)
            await app.wait_for("StasisStart", channel=cid)
    """

    def __init__(self, asterisk: Asterisk, name: str) -> None:
        self.asterisk = asterisk
        self.name = name
        self.events: list[dict] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: "asyncio.Task[None] | None" = None

    async def __aenter__(self) -> "AriApp":
        self._session = aiohttp.ClientSession(headers=self.asterisk.auth_header())
        self._ws = await self._session.ws_connect(
            self.asterisk.ari_ws_url, params={"app": self.name, "subscribeAll": "false"}
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._ws is not None and self._session is not None and self._reader is not None
        await self._ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._session.close()

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(msg.data))

    @staticmethod
    def _matches(event: dict, type_: str, channel: str | None, pred) -> bool:
        if event.get("type") != type_:
            return False
        if channel is not None:
            ids = {event.get("channel", {}).get("id"), event.get("peer", {}).get("id")}
            if channel not in ids:
                return False
        return pred is None or bool(pred(event))

    def find(self, type_: str, channel: str | None = None, pred=None) -> list[dict]:
        return [e for e in self.events if self._matches(e, type_, channel, pred)]

    async def wait_for(self, type_: str, channel: str | None = None, pred=None, timeout: float = 10) -> dict:
        """The first event of `type_` (about `channel`, passing `pred`), waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(type_, channel, pred)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                seen = [(e.get("type"), e.get("channel", {}).get("id")) for e in self.events]
                raise TimeoutError(f"no {type_} for {channel} within {timeout}s; events: {seen}")
            await asyncio.sleep(0.01)

    async def post(self, path: str, **params) -> tuple[int, object]:
        return await self.asterisk.ari("POST", path, **params)

    async def originate(self, endpoint: str, *, timeout: int = 15, **params) -> str:
        """POST /channels into this app with our own channel id; returns the id."""
        channel_id = params.pop("channelId", None) or f"harness-{uuid.uuid4()}"
        status, body = await self.asterisk.ari(
            "POST", "/channels", endpoint=endpoint, app=self.name,
            channelId=channel_id, timeout=str(timeout), **params,
        )
        if status != 200:
            raise RuntimeError(f"originate {endpoint} -> HTTP {status}: {body}")
        return channel_id

    async def hangup(self, channel_id: str) -> int:
        status, _ = await self.asterisk.ari("DELETE", f"/channels/{channel_id}")
        return status
