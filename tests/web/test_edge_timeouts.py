"""Read timeouts: clients that send their headers or body slowly (slowloris) are cut off within
the configured timeout (1 s here), with some slack; a well-behaved keep-alive client is not."""

from __future__ import annotations

import asyncio
import time

import pytest

from callengine.config import ConfigError, load_config
from tests.web.edge_support import edge, problem_of

TIMEOUT_S = 1.0
SLACK_S = 1.5
LINGERING_S = 2.0  # callengine.web.server.LINGERING_S: reading what follows a refused body


async def _trickle(port: int, head: bytes, drip: bytes, every_s: float = 0.2
                   ) -> tuple[float, bytes]:
    """Connect, send `head`, then one byte of `drip` every `every_s` until the server answers or
    closes; how long the connection lived, and what the server answered. A byte still dripping
    when the server closes makes its kernel answer with a reset (seen on a slow loop): once the
    answer is in, a reset ends the reading like a close."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = bytearray()

    async def read() -> None:
        try:
            while chunk := await reader.read(65536):
                answer.extend(chunk)
        except ConnectionResetError:
            if not answer:
                raise

    reading = asyncio.create_task(read())
    try:
        writer.write(head)
        for byte in drip:
            if reading.done() or answer:
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(every_s)
        await asyncio.wait_for(reading, 30)
    except (ConnectionError, OSError):
        await reading
    finally:
        writer.close()
    return time.monotonic() - started, bytes(answer)


async def test_slow_headers_are_cut_off(tmp_path):
    async with edge(tmp_path, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S) as e:
        drip = b"X-Slow: " + b"a" * 500 + b"\r\n\r\n"
        results = await asyncio.gather(
            *[_trickle(e.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", drip) for _ in range(5)],
            *[_trickle(e.port, b"", b"") for _ in range(5)],  # connects, sends nothing
        )
    for lived, answer in results:
        assert TIMEOUT_S - 0.1 <= lived <= TIMEOUT_S + SLACK_S
        assert answer == b""  # no request was read: nothing to answer


async def test_slow_bodies_are_cut_off_with_a_problem(tmp_path):
    async with edge(tmp_path, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S) as e:
        head = (f"POST {e.leads_path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n").encode()
        results = await asyncio.gather(*[_trickle(e.port, head, b" " * 1000) for _ in range(5)])
        assert await e.store.list_leads() == []
    for lived, answer in results:
        assert lived <= TIMEOUT_S + LINGERING_S + SLACK_S
        status, _, problem = problem_of(answer)
        assert status == 408 and problem["type"].endswith("/body-timeout")


async def test_a_prompt_keep_alive_client_is_served_past_the_timeout(tmp_path):
    async with edge(tmp_path, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S) as e:
        reader, writer = await asyncio.open_connection("127.0.0.1", e.port)
        try:
            for _ in range(3):  # one connection, idle past the timeout between its requests
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert head.startswith(b"HTTP/1.1 200")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                await asyncio.sleep(TIMEOUT_S + 0.3)
        finally:
            writer.close()


ENV = {"CALLENGINE_ARI_PASSWORD": "ari-pass", "CALLENGINE_ADMIN_TOKEN": "a" * 20,
       "CALLENGINE_DATA_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}


def test_timeouts_are_configured_in_http(tmp_path):
    path = tmp_path / "callengine.toml"
    path.write_text("")
    assert (load_config(path, env=ENV).http.header_timeout_s,
            load_config(path, env=ENV).http.body_timeout_s) == (10.0, 10.0)
    path.write_text("[http]\nheader_timeout_s = 5\nbody_timeout_s = 2.5\n")
    http = load_config(path, env=ENV).http
    assert (http.header_timeout_s, http.body_timeout_s) == (5.0, 2.5)
    path.write_text("[http]\nheader_timeout_s = 0\nbody_timeout_s = 301\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path, env=ENV)
    assert len(refused.value.problems) == 2
