"""Running the engine in-process (or as a subprocess) against the test Asterisk."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from callengine.app import Running, running
from callengine.config import (
    AmiConfig,
    AriConfig,
    Config,
    DialingConfig,
    HttpConfig,
    PromptsConfig,
    RecordingConfig,
)
from callengine.flow import Strategy
from callengine.model import Agent, Consent, Lead, Widget, widget_settings_from_input
from callengine.audio import DEFAULT_SAMPLE_RATE
from callengine.storage import Store
from tests.support import postgres
from tests.support.logcheck import full_numbers_in

ADMIN_TOKEN = "test-admin-token-0123456789"
DATA_KEY = bytes(range(32))  # the store's data key in tests (a real one comes from a secret)
DATA_KEY_B64 = base64.b64encode(DATA_KEY).decode()
VISITOR = "+48601234567"  # dialled as PJSIP/+48601234567@pstn → the "PSTN" sipp on 5070
REPO = Path(__file__).resolve().parents[2]


def make_config(tmp_path: Path, asterisk: Any, *, ari_url: str | None = None,
                port: int = 0, recording_route: str = "fifo",
                public_key_file: Path | None = None,
                sample_rate: int = DEFAULT_SAMPLE_RATE) -> Config:
    ami = asterisk.ami
    return Config(
        # (the suite on PostgreSQL: the database standing in for this file)
        store_url=postgres.url_for(tmp_path / "callengine.db"),
        database=tmp_path / "callengine.db",
        keystore=tmp_path / "keystore.db",
        data_key=DATA_KEY,
        recordings_dir=tmp_path / "recordings",
        ari=AriConfig(
            url=ari_url or asterisk.ari_url,
            user=asterisk.ari_user,
            password=asterisk.ari_password,
            app="callengine",
        ),
        http=HttpConfig(host="127.0.0.1", port=port, admin_token=ADMIN_TOKEN),
        dialing=DialingConfig(max_concurrent_calls=5, poll_interval_s=0.2, engine_lease_s=3),
        log_level="INFO",
        ami=AmiConfig(host=ami.host, port=ami.port, user=ami.username, secret=ami.secret),
        recording=RecordingConfig(
            route=recording_route,
            public_key_file=public_key_file,
            private_key_files=(),
            fifo_dir=asterisk.host_path("/var/lib/callengine-asterisk/fifo"),
            fifo_dir_asterisk="/var/lib/callengine-asterisk/fifo",
            fifo_group=asterisk.group_id,
            rtp_bind="127.0.0.1",
            rtp_advertise="127.0.0.1",
            rtp_ports=(40000, 40999),
            orphan_check_s=1.0,
            sample_rate=sample_rate,
        ),
        prompts=PromptsConfig(
            dir=asterisk.host_path("/var/lib/callengine-asterisk/prompts"),
            dir_asterisk="/var/lib/callengine-asterisk/prompts",
        ),
    )


async def add_widget(
    store: Store,
    *,
    agents: tuple[str, ...] = ("agent1",),
    strategy: Strategy = Strategy.RING_ALL,
    ring_timeout: int = 10,
    widget_id: str = "shop",
    accept_digit: str | None = None,
    accept_timeout: int = 10,
    **settings: Any,
) -> Widget:
    for name in agents:
        if name not in {a.name for a in await store.list_agents()}:
            await store.add_agent(Agent(name, f"PJSIP/{name}"))
    group = f"g-{widget_id}"
    await store.add_group(group, strategy, ring_timeout, list(agents), accept_digit,
                          accept_timeout)
    raw = {"group": group, "allowed_regions": ["PL"], "caller_id": "Shop <+48221234567>",
           "visitor_ring_timeout": 10, "challenge": "off", **settings}
    return await store.add_widget(widget_id, "Shop", widget_settings_from_input(raw), time.time())


async def queue_lead(store: Store, widget: Widget, phone: str = VISITOR) -> Lead:
    """A due lead for VISITOR (or `phone`), straight into the store (no HTTP, no consents)."""
    return await store.create_lead(
        widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name=None,
        email=None, consent=Consent(False, False, "v1"), now=time.time())


async def submit_lead(base_url: str, widget: Widget, phone: str = VISITOR, *,
                      recording_consent: bool = False) -> str:
    body = {"phone": phone, "consent": {"marketing": False, "recording": recording_consent},
            "clause_version": "v1"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/api/v1/widgets/{widget.public_key}/leads",
                                json=body) as response:
            assert response.status == 201, await response.text()
            return (await response.json())["id"]


async def wait_for_lead(store: Store, lead_id: str, *, status: str = "done",
                        progress: str | None = None, timeout: float = 60) -> Lead:
    deadline = time.monotonic() + timeout
    while True:
        lead = await store.get_lead(lead_id)
        if lead.status == status and (progress is None or lead.progress == progress):
            return lead
        if time.monotonic() > deadline:
            raise AssertionError(f"lead never reached {status}/{progress}: {lead}")
        await asyncio.sleep(0.1)


async def poll(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Await `check()` every 10 ms until it returns something truthy (returned), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


class EngineProcess:
    """`callengine run` as a real process, to kill it with SIGKILL mid-call."""

    def __init__(self, config_path: Path, env: dict[str, str]):
        self.config_path = config_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.log_path = config_path.parent / "engine.log"

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callengine", "--config", str(self.config_path), "run"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, cwd=REPO,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """Stop it gracefully; then its log must hold no full phone number."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        leaks = [line for line in self.log().splitlines() if full_numbers_in(line)]
        assert not leaks, f"full phone numbers in the engine's log: {leaks[:3]}"

    def log(self) -> str:
        if not self.log_path.exists():  # never started
            return ""
        return self.log_path.read_text(errors="replace")


def write_config(tmp_path: Path, asterisk: Any, port: int, *, engine_id: str = "main",
                 store_dir: Path | None = None, node: str = "main",
                 more_nodes: dict[str, Any] | None = None, down_after_s: float = 20
                 ) -> tuple[Path, dict[str, str]]:
    """A `callengine run` configuration in tmp_path; store_dir: where the store is (default
    tmp_path), for several engines on one store. An engine id other than main gets its own
    ARI application. The lease is short (3 s): a killed engine's is free soon. `asterisk` is
    the [ari] node, named `node`; more_nodes: name → Asterisk, as [nodes.<name>]."""
    path = tmp_path / "callengine.toml"
    nodes = ""
    for name, other in (more_nodes or {}).items():
        secret = tmp_path / f"{name}.ari_password"
        secret.write_text(other.ari_password)
        secret.chmod(0o600)
        nodes += (f'\n[nodes.{name}]\nurl = "{other.ari_url}"\nuser = "{other.ari_user}"\n'
                  f'password_file = "{secret}"\n')
    store = (store_dir or tmp_path).resolve()
    app = "callengine" if engine_id == "main" else f"callengine-{engine_id}"
    url = postgres.url_for(store / "callengine.db")  # the suite on PostgreSQL
    path.write_text(
        f"""
[store]
{f'url = "{url}"' if url else ""}
database = "{store / 'callengine.db'}"
recordings_dir = "{store / 'recordings'}"
keystore = "{store / 'keystore/keystore.db'}"

[ari]
url = "{asterisk.ari_url}"
user = "{asterisk.ari_user}"
app = "{app}"
node = "{node}"
down_after_s = {down_after_s}
{nodes}
[http]
host = "127.0.0.1"
port = {port}

[dialing]
max_concurrent_calls = 5
poll_interval_s = 0.2
engine_id = "{engine_id}"
engine_lease_s = 3
"""
    )
    env = {"CALLENGINE_ARI_PASSWORD": asterisk.ari_password,
           "CALLENGINE_ADMIN_TOKEN": ADMIN_TOKEN, "CALLENGINE_DATA_KEY": DATA_KEY_B64}
    return path, env


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config_port(config_path: Path) -> int:
    import tomllib

    return tomllib.loads(config_path.read_text())["http"]["port"]


async def wait_http(base_url: str, timeout: float = 20) -> None:
    """Until the engine's HTTP API answers /healthz."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{base_url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "the engine's HTTP API never came up"
            await asyncio.sleep(0.1)


__all__ = [
    "DATA_KEY", "DATA_KEY_B64",
    "config_port", "free_port", "wait_http",
    "ADMIN_TOKEN", "VISITOR", "EngineProcess", "Running", "add_widget", "make_config",
    "poll", "running", "submit_lead", "wait_for_lead", "write_config",
]
