"""The webhooks' delivery worker: an asyncio task of the app, apart from the engine (a call
never waits for a CRM). Each round claims the due deliveries by lease (the store's
locked_until: several engines on one store share the work), posts them with aiohttp's client
(a timeout each, at most `concurrency` at once, one endpoint's in event order), and records
each attempt: 2xx delivered; otherwise again after events.BACKOFF_S, then dead."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp

from callengine.access import Principal, Role
from callengine.hooks import signing
from callengine.hooks.events import Claimed, envelope, retry_delay
from callengine.numbers import mask

log = logging.getLogger(__name__)

WORKER = Principal("webhooks", Role.ADMIN)  # the audit's actor of a full number's delivery
LEASE_S = 120.0  # a claimed delivery not recorded by then (the process died) is claimed again
POLL_S = 1.0
BATCH = 100
TIMEOUT_S = 10.0
CONCURRENCY = 8
ERROR_MAX = 200  # characters of an error kept per attempt


class DeliveryStore(Protocol):
    async def claim_deliveries(self, now: float, lease_s: float, limit: int
                               ) -> list[Claimed]: ...

    async def record_delivery(self, delivery_id: str, now: float, *, code: int | None,
                              latency_ms: float, error: str | None, delivered: bool,
                              retry_at: float | None) -> None: ...

    async def audit(self, principal: Principal, action: str, target: str, detail: str,
                    now: float) -> Any: ...

    async def release_deliveries(self, delivery_ids: list[str], next_at: float | None
                                 ) -> None: ...


def body_of(claimed: Claimed) -> str:
    """The event's data with the lead's number as the endpoint may have it: in full (audited)
    for an endpoint with full_numbers, else masked; none once erased or purged."""
    data = dict(claimed.payload)
    if claimed.phone_e164 is not None:
        if claimed.full_numbers:
            data["phone"] = claimed.phone_e164
        else:
            data["phone_masked"] = mask(claimed.phone_e164)
    return envelope(claimed.delivery.event_type, claimed.event_at, data)


class DeliveryWorker:
    def __init__(self, store: DeliveryStore, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 concurrency: int = CONCURRENCY, timeout_s: float = TIMEOUT_S,
                 lease_s: float = LEASE_S, poll_s: float = POLL_S, batch: int = BATCH,
                 on_try: Callable[[str, str], None] = lambda event, outcome: None):
        self._store = store
        self._on_try = on_try  # (event type, "delivered" | "failed" | "dead"): the metrics
        self._clock = clock
        self._sleep = sleep
        self._lease_s, self._poll_s, self._batch = lease_s, poll_s, batch
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        """Until cancelled; a failed round is logged and the next one tried."""
        try:
            while True:
                try:
                    sent = await self.run_once()
                except Exception:
                    log.exception("webhooks: a delivery round failed; the next one retries")
                    sent = 0
                if not sent:
                    await self._sleep(self._poll_s)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run_once(self) -> int:
        """One round: what is due now, sent and recorded; returns how many were tried."""
        claimed = await self._store.claim_deliveries(self._clock(), self._lease_s, self._batch)
        if not claimed:
            return 0
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        by_endpoint: dict[str, list[Claimed]] = {}
        for item in claimed:
            by_endpoint.setdefault(item.delivery.endpoint_id, []).append(item)
        await asyncio.gather(*(self._endpoint_in_order(items) for items in by_endpoint.values()))
        return len(claimed)

    async def _endpoint_in_order(self, items: list[Claimed]) -> None:
        """One endpoint's deliveries, in event order; after a failure, the rest of this round's
        wait (a receiver down is not hammered with each of them)."""
        for n, item in enumerate(items):
            async with self._slots:
                retry_at = await self._deliver(item)
            if retry_at is not False:  # failed: the rest wait as long, still in order
                rest = [later.delivery.id for later in items[n + 1:]]
                if rest:
                    await self._store.release_deliveries(rest, retry_at)
                return

    async def _deliver(self, claimed: Claimed) -> float | None | bool:
        """False when delivered; else when it is tried again (None: dead)."""
        delivery = claimed.delivery
        body = body_of(claimed)
        if claimed.full_numbers and claimed.phone_e164 is not None:
            await self._store.audit(WORKER, "webhooks.full_number", f"delivery:{delivery.id}",
                                    f"endpoint:{delivery.endpoint_id} lead:{delivery.lead_id}"
                                    f" event:{delivery.event_id}", self._clock())
        # the send time on the wall clock (the receiver checks it against its own), whatever
        # clock schedules the retries
        headers = signing.headers(delivery.event_id, int(time.time()), body, claimed.secrets)
        assert self._session is not None
        started = time.monotonic()
        code, error = None, None
        try:
            async with self._session.post(claimed.url, data=body.encode(), headers=headers,
                                          allow_redirects=False) as response:
                code = response.status
                await response.content.read(4096)  # what a receiver says is not kept
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = (f"{type(exc).__name__}: {exc}")[:ERROR_MAX]
        latency_ms = (time.monotonic() - started) * 1000
        ok = code is not None and 200 <= code < 300
        if not ok and error is None:
            error = f"HTTP {code}"
        retry_at = await self._record(claimed, code, latency_ms, error, ok)
        self._on_try(delivery.event_type,
                     "delivered" if ok else "failed" if retry_at is not None else "dead")
        level = logging.INFO if ok else logging.WARNING
        log.log(level, "[lead %s] webhook %s %s to endpoint %s: %s (attempt %d, %.0f ms)",
                delivery.lead_id, delivery.event_type, delivery.event_id, delivery.endpoint_id,
                "delivered" if ok else error, delivery.attempts + 1, latency_ms)
        return False if ok else retry_at

    async def _record(self, claimed: Claimed, code: int | None, latency_ms: float,
                      error: str | None, ok: bool) -> float | None:
        now = self._clock()
        delay = None if ok else retry_delay(claimed.delivery.attempts + 1)
        retry_at = None if delay is None else now + delay
        await self._store.record_delivery(
            claimed.delivery.id, now, code=code, latency_ms=latency_ms, error=error,
            delivered=ok, retry_at=retry_at)
        if not ok and delay is None:
            log.error("[lead %s] webhook %s to endpoint %s is dead after %d attempts (replay:"
                      " callengine webhook replay)", claimed.delivery.lead_id,
                      claimed.delivery.event_id, claimed.delivery.endpoint_id,
                      claimed.delivery.attempts + 1)
        return retry_at
