"""The public edge against hostile bodies: what fuzzing found as 500s, the size limit whatever
the framing, 405 with Allow, aiohttp's own parser errors as problem+json, and the widget's
Origin rule with CORS on its error answers. Through a real listener on loopback."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.web.edge_support import (
    ADMIN_HEADERS, SHOP, edge, lead_body, problem_of, raw_exchange,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def env(tmp_path):
    async with edge(tmp_path) as e, aiohttp.ClientSession(e.base) as http:
        yield e, http


async def _problem(response: aiohttp.ClientResponse) -> dict:
    assert response.content_type == "application/problem+json"
    return await response.json()


@pytest.mark.parametrize("body, headers, status, slug", [
    (json.dumps(lead_body()), {"Content-Type": "application/json; charset=no-such-codec"},
     415, "unsupported-charset"),
    (json.dumps(lead_body()), {"Content-Type": "application/json; charset=utf-16"},
     415, "unsupported-charset"),
    ("[" * 5000, JSON, 400, "malformed-json"),  # json.loads: RecursionError
    ('{"a":' * 33 + "1" + "}" * 33, JSON, 400, "malformed-json"),  # over the depth bound
    (json.dumps(lead_body(name="\ud800")), JSON, 422, "invalid-field"),  # lone surrogate
    (json.dumps(lead_body(email="a\udfff@example.com")), JSON, 422, "invalid-field"),
    (json.dumps(lead_body(name="Ann\u2028Smith")), JSON, 422, "invalid-field"),
    (json.dumps(lead_body(clause_version="v1\n")), JSON, 422, "invalid-field"),
    (b"\xff\xfe{}", JSON, 400, "malformed-json"),
])
async def test_what_fuzzing_found_is_refused_and_writes_nothing(env, body, headers, status, slug):
    e, http = env
    async with http.post(e.leads_path, data=body, headers=headers) as response:
        problem = await _problem(response)
        assert response.status == status and problem["type"].endswith("/" + slug)
    assert await e.store.list_leads() == []


async def test_nesting_within_the_bound_is_parsed(env):
    e, http = env
    nested = '{"x":' * 31 + "1" + "}" * 31  # 32 levels with the outer object: allowed
    async with http.post(e.leads_path, data=nested, headers=JSON) as response:
        assert response.status == 422  # parsed; then refused for its fields
        assert (await _problem(response))["field"] == "x"


async def test_admin_routes_refuse_the_same_bodies(env):
    e, http = env
    for body in ("[" * 5000, json.dumps({"name": "\ud800", "endpoint": "PJSIP/x"})):
        async with http.post("/api/v1/agents", data=body,
                             headers={**JSON, **ADMIN_HEADERS}) as response:
            assert response.status in (400, 422)
            await _problem(response)
    async with http.post("/api/v1/widgets", headers=ADMIN_HEADERS, json={
            "id": "w", "settings": {"group": "sales", "caller_id": "x\u202e"}}) as response:
        assert response.status == 422 and (await _problem(response))["field"] == "caller_id"


async def test_oversized_body_is_too_large_whatever_the_framing(env):
    e, http = env
    big = b'{"name": "' + b"x" * 20000 + b'"}'

    async def chunks():
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    async with http.post(e.leads_path, data=big, headers=JSON) as response:  # Content-Length
        assert response.status == 413
        assert (await _problem(response))["type"].endswith("/too-large")
    async with http.post(e.leads_path, data=chunks(), headers=JSON) as response:  # chunked
        assert response.headers.get("Transfer-Encoding") is None
        assert response.status == 413
        assert (await _problem(response))["type"].endswith("/too-large")
    assert await e.store.list_leads() == []


async def test_every_405_has_allow_and_is_a_problem(env):
    e, http = env
    for method, path, allowed in [("PUT", e.leads_path, {"OPTIONS", "POST"}),
                                  ("DELETE", "/api/v1/widgets", {"GET", "HEAD", "POST"}),
                                  ("POST", "/healthz", {"GET", "HEAD"})]:
        async with http.request(method, path, headers=ADMIN_HEADERS) as response:
            assert response.status == 405
            assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
            assert (await _problem(response))["status"] == 405


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",  # bad request line
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",  # bad header
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # request line too long
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",  # header too long
    b"POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
])
async def test_parser_errors_are_problems(env, request_bytes):
    e, _ = env
    status, headers, problem = problem_of(await raw_exchange(e.port, request_bytes))
    assert status == 400 and problem["status"] == 400
    assert problem["type"].endswith("/malformed-request")
    assert headers["x-content-type-options"] == "nosniff"
    assert b"aaaa" not in json.dumps(problem).encode()  # the client's bytes are not echoed


async def test_disallowed_origin_is_refused_before_anything_is_written(env):
    e, http = env
    for origin in ("https://evil.example", "null", SHOP + ".evil.example", SHOP + "/"):
        async with http.post(e.leads_path, json=lead_body(),
                             headers={"Origin": origin}) as response:
            assert response.status == 403
            assert (await _problem(response))["type"].endswith("/origin-not-allowed")
            assert "Access-Control-Allow-Origin" not in response.headers
        async with http.options(e.leads_path, headers={"Origin": origin}) as response:
            assert response.status == 403
    assert await e.store.list_leads() == []
    async with http.post(e.leads_path, json=lead_body(), headers={"Origin": SHOP}) as response:
        assert response.status == 201
    async with http.post(e.leads_path, json=lead_body(phone="+48 601 234 568")) as response:
        assert response.status == 201  # no Origin: not a browser's cross-site request
    assert len(await e.store.list_leads()) == 2


async def test_error_answers_to_an_allowed_origin_carry_cors(env):
    e, http = env
    origin = {"Origin": SHOP}
    key = e.widget.public_key
    attempts = [
        ("POST", e.leads_path, {"data": "{", "headers": {**JSON, **origin}}, 400),
        ("POST", e.leads_path, {"data": b"x" * 20000, "headers": {**JSON, **origin}}, 413),
        ("POST", e.leads_path, {"data": "phone=1", "headers": {"Content-Type": "text/plain",
                                                               **origin}}, 415),
        ("POST", e.leads_path, {"json": lead_body(phone="12"), "headers": origin}, 422),
        ("GET", f"/api/v1/widgets/{key}/leads/nope", {"headers": origin}, 404),
    ]
    for method, path, kwargs, status in attempts:
        async with http.request(method, path, **kwargs) as response:
            assert response.status == status
            assert response.headers["Access-Control-Allow-Origin"] == SHOP
            assert "Origin" in response.headers["Vary"]
            assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    for n in range(3):  # the default: 3 distinct numbers a client an hour
        async with http.post(e.leads_path, json=lead_body(phone=f"+48 601 234 56{n}"),
                             headers=origin) as response:
            assert response.status == 201
            assert response.headers["Access-Control-Allow-Origin"] == SHOP
    async with http.post(e.leads_path, json=lead_body(phone="+48 601 234 569"),
                         headers=origin) as response:
        assert response.status == 429 and response.headers["Retry-After"]
        assert response.headers["Access-Control-Allow-Origin"] == SHOP
        assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    async with http.options(e.leads_path, headers=origin) as response:
        assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == SHOP


async def test_security_headers_on_every_answer(env):
    e, http = env
    answers = [("GET", "/healthz", {}), ("GET", "/api/v1/leads", {}),
               ("GET", "/api/v1/leads", {"headers": ADMIN_HEADERS}),
               ("GET", "/nowhere", {}), ("POST", e.leads_path, {"json": lead_body()}),
               ("GET", "/api/v1/widgets/wk_nope/leads/x", {})]
    for method, path, kwargs in answers:
        async with http.request(method, path, **kwargs) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
