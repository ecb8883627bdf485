"""`check-config` checks that ARI and AMI answer with the configured credentials, against a
local fake ARI HTTP server and a fake AMI TCP server on loopback (never the real Asterisk):
one clear line per check, exit 1 when one fails, no secret printed."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiohttp import web

from callengine import cli
from tests.test_config import ENV, write

ARI_PASSWORD = ENV["CALLENGINE_ARI_PASSWORD"]
AMI_SECRET = "ami-secret-0123456789"


async def _ari_info(request: web.Request) -> web.Response:
    expected = "Basic " + base64.b64encode(f"callengine:{ARI_PASSWORD}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        return web.json_response({"message": "Authentication required"}, status=401)
    return web.json_response({"system": {"version": "22.5.2"}, "status": {}})


async def _ami_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Asterisk's manager as panoramisk sees it: the banner, then Login answered by ActionID."""
    writer.write(b"Asterisk Call Manager/9.0.0\r\n")
    try:
        while True:
            fields: dict[str, str] = {}
            while (line := (await reader.readline()).decode().strip()):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if not fields:
                return
            action_id = fields.get("actionid", "")
            if fields.get("action", "").lower() == "login":
                ok = fields.get("username") == "callengine" and fields.get("secret") == AMI_SECRET
                answer = ("Response: Success\r\nMessage: Authentication accepted" if ok
                          else "Response: Error\r\nMessage: Authentication failed")
            else:
                answer = "Response: Goodbye\r\nMessage: Thanks for all the fish."
            writer.write(f"{answer}\r\nActionID: {action_id}\r\n\r\n".encode())
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextmanager
def servers() -> Iterator[tuple[int, int]]:
    """(ARI HTTP port, AMI TCP port) served from a thread of their own (the CLI runs its own
    event loop)."""
    loop = asyncio.new_event_loop()
    ready: dict[str, int] = {}
    started = threading.Event()
    held: list = []

    async def start() -> None:
        app = web.Application()
        app.router.add_get("/ari/asterisk/info", _ari_info)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready["ari"] = runner.addresses[0][1]
        ami = await asyncio.start_server(_ami_session, "127.0.0.1", 0)
        ready["ami"] = ami.sockets[0].getsockname()[1]
        held.extend((runner, ami))
        started.set()

    async def stop() -> None:
        runner, ami = held
        ami.close()
        sessions = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        await runner.cleanup()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield ready["ari"], ready["ami"]
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def config_text(ari_port: int, ami_port: int) -> str:
    return (f'[ari]\nurl = "http://127.0.0.1:{ari_port}/ari"\n'
            f'[ami]\nhost = "127.0.0.1"\nport = {ami_port}\n')


@pytest.fixture
def env(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CALLENGINE_AMI_SECRET", AMI_SECRET)
    return monkeypatch


def test_both_answer(tmp_path, env, capsys):
    with servers() as (ari, ami):
        assert cli.main(["--config", str(write(tmp_path, config_text(ari, ami))),
                         "check-config"]) == 0
    out = capsys.readouterr().out
    assert f"ok: ARI at http://127.0.0.1:{ari}/ari answers as 'callengine' (Asterisk 22.5.2)" in out
    assert f"ok: AMI at 127.0.0.1:{ami} accepts user 'callengine'" in out


def test_wrong_credentials_are_named(tmp_path, env, capsys):
    env.setenv("CALLENGINE_ARI_PASSWORD", "not-the-password")
    env.setenv("CALLENGINE_AMI_SECRET", "not-the-secret-0123")
    with servers() as (ari, ami):
        assert cli.main(["--config", str(write(tmp_path, config_text(ari, ami))),
                         "check-config"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: ARI at" in out and "refused user 'callengine' (401)" in out
    assert (f"FAILED: AMI at 127.0.0.1:{ami} refused user 'callengine' (Authentication failed)"
            in out)
    assert "not-the-password" not in out and "not-the-secret" not in out


def test_nothing_listening(tmp_path, env, capsys):
    with servers() as (ari, ami):
        pass  # both closed again: their ports refuse connections
    env.setenv("CALLENGINE_AMI_SECRET", AMI_SECRET)
    path = write(tmp_path, config_text(ari, ami))
    from callengine.asterisk import probe

    real = probe.probe_ami

    async def quick(*args, **kwargs):
        return await real(*args, **{**kwargs, "timeout": 0.5})
    env.setattr(probe, "probe_ami", quick)
    assert cli.main(["--config", str(path), "check-config"]) == 1
    out = capsys.readouterr().out
    assert f"FAILED: ARI at http://127.0.0.1:{ari}/ari is not reachable" in out
    assert f"FAILED: AMI at 127.0.0.1:{ami} gave no login within 0.5 s" in out


def test_an_http_server_that_is_not_ari(tmp_path, env, capsys):
    with servers() as (ari, ami):
        path = write(tmp_path, f'[ari]\nurl = "http://127.0.0.1:{ari}/nope"\n')
        env.delenv("CALLENGINE_AMI_SECRET")  # no AMI configured: not checked
        assert cli.main(["--config", str(path), "check-config"]) == 1
    out = capsys.readouterr().out
    assert "answers HTTP 404, not ARI: is res_ari loaded" in out
    assert "AMI" not in out
