"""Webhooks for CRMs (docs/webhooks.md): endpoints added, changed, removed and their secrets
rotated by admins (audited; the secret is shown once, when made), the deliveries listed and
replayed. The events are written by the store with the changes they report; the delivery
worker (callengine.hooks.delivery) posts them."""

from __future__ import annotations

import re
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import InvalidInput
from callengine.hooks import signing
from callengine.hooks.events import (
    ALL_EVENTS, DELIVERY_STATUSES, EVENT_TYPES, ROTATION_GRACE_S, Delivery, Endpoint,
)
from callengine.services.base import Service

_URL = re.compile(r"https?://[^\s/?#@]+(:\d{1,5})?(/\S{0,2000})?")
MAX_DESCRIPTION = 200
MAX_GRACE_S = 7 * 24 * 3600


def check_url(value: Any) -> str:
    if not isinstance(value, str) or not _URL.fullmatch(value):
        raise InvalidInput("url", "an http(s) address without credentials")
    return value


def check_events(value: Any) -> tuple[str, ...]:
    if value is None:
        return (ALL_EVENTS,)
    if (not isinstance(value, list) or not value
            or any(v != ALL_EVENTS and v not in EVENT_TYPES for v in value)):
        raise InvalidInput("events", f"a list of {', '.join(EVENT_TYPES)} (or \"*\": all)")
    return tuple(dict.fromkeys(value))


def _flag(field: str, value: Any, default: bool | None) -> bool | None:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(field, "true or false")
    return value


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "description": endpoint.description,
            "events": list(endpoint.events), "full_numbers": endpoint.full_numbers,
            "enabled": endpoint.enabled, "created_at": endpoint.created_at,
            "updated_at": endpoint.updated_at, "previous_secret_until": endpoint.rotated_until}


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {"id": delivery.id, "webhook_id": delivery.event_id,
            "endpoint_id": delivery.endpoint_id, "type": delivery.event_type,
            "lead_id": delivery.lead_id, "status": delivery.status,
            "attempts": delivery.attempts, "next_at": delivery.next_at,
            "last_code": delivery.last_code, "last_error": delivery.last_error,
            "last_latency_ms": delivery.last_latency_ms, "created_at": delivery.created_at,
            "delivered_at": delivery.delivered_at}


def _only(data: dict[str, Any], fields: set[str]) -> None:
    unknown = sorted(set(data) - fields)
    if unknown:
        raise InvalidInput(unknown[0], "not a field of a webhook")


class Webhooks(Service):
    async def add(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        """A new endpoint and its secret (`whsec_…`, returned here only)."""
        require(who, Permission.CONFIGURE)
        _only(data, {"url", "description", "events", "full_numbers"})
        url = check_url(data.get("url"))
        description = data.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidInput("description", f"text of at most {MAX_DESCRIPTION} characters")
        events = check_events(data.get("events"))
        full = _flag("full_numbers", data.get("full_numbers"), False)
        secret = signing.new_secret()
        endpoint = await self.store.add_webhook(url, description, events, bool(full), secret,
                                                self.ctx.clock())
        await self.ctx.audit(who, "webhooks.add", f"webhook:{endpoint.id}",
                             f"{url} events:{','.join(events)} full_numbers:{bool(full)}")
        return {**endpoint_view(endpoint), "secret": secret}

    async def list(self, who: Principal) -> list[dict[str, Any]]:
        require(who, Permission.CONFIGURE)
        return [endpoint_view(e) for e in await self.store.list_webhooks()]

    async def get(self, who: Principal, endpoint_id: str) -> dict[str, Any]:
        require(who, Permission.CONFIGURE)
        return endpoint_view(await self.store.get_webhook(endpoint_id))

    async def update(self, who: Principal, endpoint_id: str, data: dict[str, Any]
                     ) -> dict[str, Any]:
        require(who, Permission.CONFIGURE)
        _only(data, {"url", "events", "full_numbers", "enabled"})
        changes = {
            "url": None if data.get("url") is None else check_url(data["url"]),
            "events": None if data.get("events") is None else check_events(data["events"]),
            "full_numbers": _flag("full_numbers", data.get("full_numbers"), None),
            "enabled": _flag("enabled", data.get("enabled"), None),
        }
        endpoint = await self.store.update_webhook(endpoint_id, self.ctx.clock(), **changes)
        said = " ".join(f"{k}:{','.join(v) if isinstance(v, tuple) else v}"
                        for k, v in changes.items() if v is not None)
        await self.ctx.audit(who, "webhooks.update", f"webhook:{endpoint_id}", said or "nothing")
        return endpoint_view(endpoint)

    async def remove(self, who: Principal, endpoint_id: str) -> dict[str, Any]:
        require(who, Permission.CONFIGURE)
        endpoint = await self.store.remove_webhook(endpoint_id)
        await self.ctx.audit(who, "webhooks.remove", f"webhook:{endpoint_id}", endpoint.url)
        return endpoint_view(endpoint)

    async def rotate(self, who: Principal, endpoint_id: str,
                     grace_s: Any = ROTATION_GRACE_S) -> dict[str, Any]:
        """A new secret (returned here only); the current one signs too for grace_s more."""
        require(who, Permission.CONFIGURE)
        if (not isinstance(grace_s, (int, float)) or isinstance(grace_s, bool)
                or not 0 <= grace_s <= MAX_GRACE_S):
            raise InvalidInput("grace_s", f"seconds from 0 to {MAX_GRACE_S}")
        now = self.ctx.clock()
        secret = signing.new_secret()
        endpoint = await self.store.rotate_webhook_secret(endpoint_id, secret, now, now + grace_s)
        await self.ctx.audit(who, "webhooks.rotate", f"webhook:{endpoint_id}",
                             f"previous secret valid {grace_s:g} s more")
        return {**endpoint_view(endpoint), "secret": secret}

    async def deliveries(self, who: Principal, *, endpoint_id: str | None = None,
                         status: str | None = None, limit: Any = 100) -> list[dict[str, Any]]:
        require(who, Permission.CONFIGURE)
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidInput("status", f"one of {', '.join(DELIVERY_STATUSES)}")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise InvalidInput("limit", "1 to 1000")
        if endpoint_id is not None:
            await self.store.get_webhook(endpoint_id)
        return [delivery_view(d) for d in await self.store.list_deliveries(
            endpoint_id=endpoint_id, status=status, limit=limit)]

    async def attempts(self, who: Principal, delivery_id: str) -> list[dict[str, Any]]:
        require(who, Permission.CONFIGURE)
        return await self.store.delivery_attempts(delivery_id)

    async def replay(self, who: Principal, *, delivery_id: str | None = None,
                     endpoint_id: str | None = None) -> int:
        """One delivery again (whatever its status), or every dead one of an endpoint."""
        require(who, Permission.CONFIGURE)
        if (delivery_id is None) == (endpoint_id is None):
            raise InvalidInput("replay", "a delivery or an endpoint")
        if endpoint_id is not None:
            await self.store.get_webhook(endpoint_id)
        count = await self.store.replay_deliveries(self.ctx.clock(), delivery_id=delivery_id,
                                                   endpoint_id=endpoint_id)
        target = f"delivery:{delivery_id}" if delivery_id else f"webhook:{endpoint_id}"
        await self.ctx.audit(who, "webhooks.replay", target, f"{count} delivery(ies) queued")
        return count
