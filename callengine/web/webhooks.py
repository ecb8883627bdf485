"""The webhooks' API (docs/webhooks.md): endpoints, their secrets rotated, the deliveries
listed and replayed; admins only (the services check and audit)."""

from __future__ import annotations

from aiohttp import web

from callengine.errors import InvalidInput
from callengine.web.auth import principal
from callengine.web.deps import services
from callengine.web.problems import json_body


async def list_webhooks(request: web.Request) -> web.Response:
    found = await services(request).webhooks.list(await principal(request))
    return web.json_response({"webhooks": found})


async def add_webhook(request: web.Request) -> web.Response:
    who = await principal(request)
    made = await services(request).webhooks.add(who, await json_body(request))
    return web.json_response(made, status=201, headers={"Cache-Control": "no-store"})


async def get_webhook(request: web.Request) -> web.Response:
    who = await principal(request)
    return web.json_response(
        await services(request).webhooks.get(who, request.match_info["endpoint_id"]))


async def update_webhook(request: web.Request) -> web.Response:
    who = await principal(request)
    changed = await services(request).webhooks.update(
        who, request.match_info["endpoint_id"], await json_body(request))
    return web.json_response(changed)


async def remove_webhook(request: web.Request) -> web.Response:
    who = await principal(request)
    await services(request).webhooks.remove(who, request.match_info["endpoint_id"])
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    who = await principal(request)
    data = await json_body(request) if request.can_read_body else {}
    rotated = await services(request).webhooks.rotate(
        who, request.match_info["endpoint_id"], data.get("grace_s", 24 * 3600))
    return web.json_response(rotated, headers={"Cache-Control": "no-store"})


async def list_deliveries(request: web.Request) -> web.Response:
    who = await principal(request)
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise InvalidInput("limit", "must be a whole number") from None
    found = await services(request).webhooks.deliveries(
        who, endpoint_id=query.get("endpoint"), status=query.get("status"), limit=limit)
    return web.json_response({"deliveries": found})


async def delivery_attempts(request: web.Request) -> web.Response:
    who = await principal(request)
    found = await services(request).webhooks.attempts(who, request.match_info["delivery_id"])
    return web.json_response({"attempts": found})


async def replay_delivery(request: web.Request) -> web.Response:
    who = await principal(request)
    count = await services(request).webhooks.replay(
        who, delivery_id=request.match_info["delivery_id"])
    return web.json_response({"queued": count})


async def replay_dead(request: web.Request) -> web.Response:
    who = await principal(request)
    count = await services(request).webhooks.replay(
        who, endpoint_id=request.match_info["endpoint_id"])
    return web.json_response({"queued": count})


def add_routes(app: web.Application) -> None:
    # the deliveries' routes first: "deliveries" is no endpoint's id
    app.router.add_get("/api/v1/webhooks/deliveries", list_deliveries)
    app.router.add_get("/api/v1/webhooks/deliveries/{delivery_id}/attempts", delivery_attempts)
    app.router.add_post("/api/v1/webhooks/deliveries/{delivery_id}/replay", replay_delivery)
    app.router.add_get("/api/v1/webhooks", list_webhooks)
    app.router.add_post("/api/v1/webhooks", add_webhook)
    app.router.add_get("/api/v1/webhooks/{endpoint_id}", get_webhook)
    app.router.add_patch("/api/v1/webhooks/{endpoint_id}", update_webhook)
    app.router.add_delete("/api/v1/webhooks/{endpoint_id}", remove_webhook)
    app.router.add_post("/api/v1/webhooks/{endpoint_id}/rotate", rotate_secret)
    app.router.add_post("/api/v1/webhooks/{endpoint_id}/replay", replay_dead)
