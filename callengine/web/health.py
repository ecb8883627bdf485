"""The operator's routes: `/healthz` (alive: this process answers), `/readyz` (ready to take
and call leads: ARI connected, AMI logged in where configured, the store answers a query) and
`/metrics` (Prometheus, behind a bearer token: the metrics token or the admin token).

/healthz and /readyz need no token and say nothing but which check failed; /metrics holds
counts by outcome and status only, never a number, name or address (callengine/metrics.py).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from aiohttp import web

from callengine.web.deps import DEPS, services
from callengine.web.problems import Problem

log = logging.getLogger(__name__)

STORE_TIMEOUT_S = 2.0  # a store that does not answer a one-line query within this is not ready


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = await readiness_checks(request)
    if all(check["ok"] for check in checks.values()):
        return web.json_response({"status": "ready", "checks": checks})
    failed = ", ".join(f"{name}: {check['detail']}" for name, check in checks.items()
                       if not check["ok"])
    raise Problem(503, "not-ready", "Not ready", failed, checks=checks)


async def readiness_checks(request: web.Request) -> dict[str, dict[str, Any]]:
    """Each check by name: {"ok": bool, "detail": str}. ARI and AMI only where this process
    runs them (the engine; AMI for the FIFO recording route)."""
    deps = request.app[DEPS]
    checks: dict[str, dict[str, Any]] = {"store": await _store_check(request)}
    if deps.ari_ready is not None:
        checks["ari"] = _check(deps.ari_ready(), "connected", "ARI events not connected")
    if deps.ami_ready is not None:
        checks["ami"] = _check(deps.ami_ready(), "logged in", "not logged in to AMI")
    return checks


def _check(ok: bool, good: str, bad: str) -> dict[str, Any]:
    return {"ok": ok, "detail": good if ok else bad}


async def _store_check(request: web.Request) -> dict[str, Any]:
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            await services(request).store_answers()
    except TimeoutError:
        return _check(False, "", f"no answer within {STORE_TIMEOUT_S:g} s")
    except Exception as exc:  # any failure of the store is "not ready", said by its kind only
        log.warning("readiness: the store did not answer: %s", type(exc).__name__)
        return _check(False, "", f"the store failed ({type(exc).__name__})")
    return _check(True, "answers", "")


async def metrics(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    allowed = [t for t in (deps.metrics_token, deps.admin_token) if t]
    if not (scheme.lower() == "bearer" and token and any(
            hmac.compare_digest(token.encode(), t.encode()) for t in allowed)):
        raise Problem(401, "unauthorized", "Authentication required",
                      "send the metrics token (or the admin token) as "
                      "'Authorization: Bearer <token>'")
    deps.metrics.set_lead_counts(await services(request).lead_counts())
    body, content_type = deps.metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
