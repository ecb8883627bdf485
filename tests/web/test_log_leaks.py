"""No full number in any log line of the real engine process, whatever a client sends.

The engine runs as `callengine run` (no Asterisk needed: ARI points at a closed port, the
engine retries and serves HTTP meanwhile); each injection carries a number of its own, and
afterwards the process's whole output (stdout and stderr, the purge child's included) must hold
none of them in any spelling: +48…, 0048…, %2B48…, 48… (E.164 without "+") or the national
601… digits."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from callengine.storage import Store
from tests.support.engine import (
    ADMIN_TOKEN,
    DATA_KEY,
    EngineProcess,
    add_widget,
    free_port,
    wait_http,
    write_config,
)
from tests.support.logcheck import full_numbers_in

NO_ASTERISK = SimpleNamespace(ari_url="http://127.0.0.1:9/ari", ari_user="callengine",
                              ari_password="x")


def number(index: int) -> str:
    """A valid Polish mobile number per injection, so a leak says which one it was."""
    return f"+48601777{index:03d}"


def leaks_in(log: str, numbers: list[str]) -> list[str]:
    """Lines that hold a full number: the suite's check (also URL-decoded) or the national
    digits of a number this test sent (which covers every other spelling of it)."""
    national = [n[3:] for n in numbers]
    found = []
    for line in log.splitlines():
        digits_only = re.sub(r"[ \-]", "", unquote(line))
        if (full_numbers_in(line) or full_numbers_in(unquote(line))
                or any(digits in digits_only for digits in national)):
            found.append(line)
    return found


async def raw_exchange(port: int, *chunks: bytes, pause: float = 0.2) -> bytes:
    """Send each chunk in turn on one connection (waiting for an answer between them, so a
    first good request is served before the next arrives), then read what is left."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            try:
                received += await asyncio.wait_for(reader.read(65536), pause * 5)
            except (asyncio.TimeoutError, ConnectionError):
                pass
        try:
            received += await asyncio.wait_for(reader.read(65536), pause)
        except (asyncio.TimeoutError, ConnectionError):
            pass
    finally:
        writer.close()
    return received


GOOD = b"GET /healthz HTTP/1.1\r\nHost: engine\r\n\r\n"


def http_garbage(n) -> list[tuple[bytes, ...]]:
    """Keep-alive: a good request, then something broken that carries a number."""
    return [
        (GOOD, f"FOO /x?phone={n(1)} HTTP/1.1\r\nHost: engine\r\n\r\n".encode()),
        (GOOD, f"GET /x?phone={n(2)}\x01 HTTP/1.1\r\nHost: engine\r\n\r\n".encode()),
        (GOOD, f"GET /x HTTP/{n(3)}\r\nHost: engine\r\n\r\n".encode()),
        (GOOD, f"GET /x?p={n(4)} HTTP/1.1\r\nPhone {n(4)}\r\n\r\n".encode()),
        (GOOD, f"GET /x HTTP/1.1\r\nHost: engine\r\nContent-Length: {n(5)}\r\n\r\n".encode()),
        (GOOD, f"POST /healthz HTTP/1.1\r\nHost: engine\r\nTransfer-Encoding: chunked\r\n\r\n"
               f"{n(6)}\r\nxx\r\n0\r\n\r\n".encode()),
        (GOOD, f"GET /{'a' * 9000}{n(7)} HTTP/1.1\r\nHost: engine\r\n\r\n".encode()),
        (GOOD, f"GET /x HTTP/1.1\r\nHost: engine\r\nX-{n(8)}: 1\r\nX-Big: {'b' * 9000}"
               f"{n(8)}\r\n\r\n".encode()),
        (f"{n(9)} / HTTP/1.1\r\n\r\n".encode(),),  # the first "request" of a connection
        (GOOD, f"GET /x?phone=%2B{n(10)[1:]} HTTP/1.1\r\nHost: engine\r\nX: \x00{n(10)}\r\n\r\n"
               .encode()),
        (GOOD, f"GET /x HTTP/1.1\r\nHost: {n(11)}\r\nHost: {n(11)}\r\n\r\n".encode()),
        (GOOD, f"GET /x HTTP/1.1\r\nHost: engine\r\nTransfer-Encoding: {n(12)}\r\n\r\n".encode()),
    ]


def lead_request(path: str, body: bytes, content_type: str = "application/json",
                 headers: str = "", chunked: bool = False) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: engine\r\nContent-Type: {content_type}\r\n{headers}"
            "Connection: close\r\n")
    if chunked:
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(
            b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
            for i in range(0, len(body), 7)) + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def api_abuse(n, key: str) -> list[bytes]:
    leads = f"/api/v1/widgets/{key}/leads"

    def good(phone: str) -> bytes:
        return json.dumps({"phone": phone, "consent": {"marketing": False, "recording": False},
                           "clause_version": "v1"}).encode()

    return [
        lead_request(leads, good(n(20)), content_type=f"application/json; charset={n(21)}"),
        lead_request(leads, good(n(22)), content_type=f"text/{n(22)[1:]}; charset={n(22)}"),
        lead_request(leads, f'{{"phone": {n(23)}, "x": "{n(23)}'.encode()),  # bad JSON
        lead_request(leads, json.dumps({"phone": int(n(24)[1:])}).encode()),  # wrong type
        lead_request(leads, json.dumps({"phone": [n(25)], "name": {"n": n(25)},
                                        "consent": n(25), "clause_version": 7}).encode()),
        lead_request(leads, good(n(26)) + b" " * 20_000),  # too large
        lead_request(leads, good(n(27)), chunked=True),
        lead_request(leads, good("0048" + n(28)[1:])),  # 00 form (a valid lead, masked)
        lead_request(leads, good(n(29)[3:])),  # national form
        lead_request(leads, good(n(30)[1:])),  # E.164 without "+"
        lead_request(leads, b"\xff\xfe" + good(n(31))),  # not UTF-8
        lead_request(leads, good(n(32)), headers=f"Origin: https://{n(32)}.example\r\n"
                                                 f"Cookie: phone={n(32)}\r\n"
                                                 f"X-Forwarded-For: {n(32)}\r\n"
                                                 f"Referer: https://shop/?p={n(32)}\r\n"
                                                 f"User-Agent: {n(32)}\r\n"),
        lead_request(f"/api/v1/widgets/{n(33)}/leads?phone={n(33)}", good(n(33))),
        lead_request(f"{leads}?phone={n(34)}&phone=%2B{n(34)[1:]}", good(n(34))),
        lead_request("/api/v1/leads", b"", headers=f"Authorization: Bearer {n(35)}\r\n"),
        lead_request("/api/v1/leads", b"", headers=f"Authorization: Basic {n(36)}\r\n"),
        lead_request(f"/api/v1/leads/{n(37)}", b"",
                     headers=f"Authorization: Bearer {ADMIN_TOKEN}\r\n"),
        (f"GET /api/v1/leads?phone={n(38)}&widget={n(38)} HTTP/1.1\r\nHost: engine\r\n"
         f"Authorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n").encode(),
        lead_request(leads, good(n(39)), content_type=f"application/json; {n(39)}"),
        lead_request(leads, good(n(40)), content_type=f"application/json; charset=\"{n(40)}\""),
        (f"OPTIONS {leads} HTTP/1.1\r\nHost: engine\r\nOrigin: https://{n(41)}.example\r\n"
         f"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n").encode(),
    ]


async def up(process: EngineProcess, port: int) -> None:
    """Serving, and the purge it runs at start is over (stopping the engine mid-purge is
    finding 9's business, not this file's)."""
    await wait_http(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 20
    while "executed successfully" not in process.log():
        assert time.monotonic() < deadline, "the first purge never ended"
        await asyncio.sleep(0.05)


@pytest.fixture
def engine(tmp_path: Path):
    port = free_port()
    config_path, env = write_config(tmp_path, NO_ASTERISK, port)

    async def seed() -> str:
        async with Store.open(tmp_path / "callengine.db", DATA_KEY) as store:
            return (await add_widget(store)).public_key

    key = asyncio.run(seed())
    process = EngineProcess(config_path, env)
    process.start()
    try:
        yield process, port, key
    finally:
        if process.process is not None and process.process.poll() is None:
            process.kill()


async def test_no_full_number_in_any_log_line_of_the_engine_process(engine):
    process, port, key = engine
    await up(process, port)
    for exchange in http_garbage(number):
        await raw_exchange(port, *exchange)
    for request in api_abuse(number, key):
        await raw_exchange(port, request)
    time.sleep(0.5)
    process.process.terminate()
    process.process.wait(15)
    log = process.log()
    sent = [number(i) for i in range(1, 42)]
    assert log.count("Error handling request") >= 10, "the garbage reached no logger"
    leaks = leaks_in(log, sent)
    assert not leaks, f"{len(leaks)} log lines hold a full number: {leaks[:4]}"
    # and a client's garbage is one WARNING line each, not an ERROR with a traceback
    assert log.count("WARNING aiohttp.server: Error handling request") >= 10
    assert "Traceback" not in log, log[-3000:]
    process.stop()  # the suite's own check of the engine's log


async def test_a_bad_charset_is_a_clean_415_with_no_traceback(engine):
    process, port, key = engine
    await up(process, port)
    answer = await raw_exchange(port, lead_request(
        f"/api/v1/widgets/{key}/leads", b'{"phone": "+48601777666"}',
        content_type="application/json; charset=+48601777666"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 415"), answer[:200]
    assert b"application/problem+json" in head
    assert json.loads(body)["type"].endswith("/unsupported-charset")
    assert b"48601777666" not in body
    process.stop()
    assert "Traceback" not in process.log() and "ERROR" not in process.log()


async def test_a_start_without_a_recordings_directory_logs_no_error(engine):
    process, port, _ = engine
    await up(process, port)
    time.sleep(1.0)
    process.stop()
    errors = [line for line in process.log().splitlines() if " ERROR " in line]
    assert not errors, errors


async def test_a_malformed_request_is_logged_by_its_kind_only(tmp_path, caplog):
    """In process, served on 127.0.0.2 and sent from 127.0.0.3 (so that address can only be
    the peer's): aiohttp's parser faults, each carrying a number, are logged as their kind;
    no line holds the number (in any spelling) or the client's address."""
    from callengine.services import Services
    from callengine.web import WebDeps, listening

    peer = "127.0.0.3"
    faults = [
        f"GET /x?phone={number(50)}\x01 HTTP/1.1\r\nHost: engine\r\n\r\n",  # bad request line
        f"GET /x HTTP/1.1\r\nHost: engine\r\nX: \x00{number(51)}\r\n\r\n",  # bad header value
        f"GET /x HTTP/1.1\r\nPhone {number(52)}\r\n\r\n",  # a header without a colon
        f"{number(53)} / HTTP/1.1\r\n\r\n",  # the number as the method
        f"GET /x HTTP/1.1\r\nHost: engine\r\nContent-Length: {number(54)}\r\n\r\n",
    ]
    caplog.set_level(logging.DEBUG)
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        async with listening(WebDeps(Services(store), ADMIN_TOKEN), "127.0.0.2", 0) as port:
            for raw in faults:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.2", port, local_addr=(peer, 0))
                writer.write(raw.encode())
                answer = await asyncio.wait_for(reader.read(65536), 5)
                writer.close()
                assert re.match(rb"HTTP/1.[01] 400 ", answer), answer[:200]
    lines = [record.getMessage() for record in caplog.records]
    lines += [record.exc_text or "" for record in caplog.records]
    kinds = [r.getMessage() for r in caplog.records if r.name == "aiohttp.server"]
    assert len(kinds) == len(faults), lines
    assert all(re.fullmatch(r"Error handling request: 400 \w+", kind) for kind in kinds), kinds
    assert not leaks_in("\n".join(lines), [number(i) for i in range(50, 55)]), lines
    assert not [line for line in lines if peer in line], lines
