"""The live progress of a widget's lead as server-sent events
(`GET /api/v1/widgets/{key}/leads/{lead_id}/events`), and what bounds their cost:

- One poller per process (`EventHub`): every POLL_S a single store query reads the state of
  every lead an open stream follows, and a stream is woken only when its lead changed (not one
  query per stream per tick).
- Caps: at most `WebDeps.events_per_client` open streams per client (the intake limits'
  keyed hash of the address, IPv6 by its /64, never the address itself) and
  `events_per_lead` per lead. One more is refused before the lead is looked up: a
  problem+json 429 `too-many-streams` with `limit` and `Retry-After` (when the oldest of those
  streams ends at the latest); widget_guard's CORS headers come with it.
- A lifetime: a stream ends `events_lifetime_s` after it opened. The widget, whose
  EventSource then fails, polls the status route instead (as after any failed stream).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from callengine.model import LEAD_DONE
from callengine.services.progress import PROGRESS_FIELDS
from callengine.services.views import lead_public_view
from callengine.web.deps import DEPS, SERVICES, services
from callengine.web.problems import Problem
from callengine.web.security import widget_of

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often the process's poller reads the followed leads
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream

Reader = Callable[[dict[str, str]], Awaitable[dict[str, dict[str, Any]]]]


@dataclass(eq=False)
class Watch:
    """One open stream: its lead (and the widget it must belong to), its client, when it must
    end, the lead's latest state seen, and the event that wakes its handler."""

    lead_id: str
    widget_id: str
    client: str | None
    deadline: float  # time.monotonic()
    view: dict[str, Any] | None = None
    gone: bool = False  # the lead is no longer there (purged, erased)
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    # Whether the visitor's connection is gone. aiohttp doesn't cancel the handler when it
    # goes (handler_cancellation is off), and a quiet stream writes only every HEARTBEAT_S:
    # the poller looks each tick, so a place is freed within POLL_S.
    left: Callable[[], bool] = lambda: False

    def offer(self, view: dict[str, Any] | None) -> None:
        if view is None:
            self.gone = True
            self.woken.set()
        elif view != self.view:
            self.view = view
            self.woken.set()


class EventHub:
    """The open streams of one process: their counts per client and per lead, and the one
    poller task that reads the followed leads together (it runs while any stream follows one,
    and is started again by the next)."""

    def __init__(self, read: Reader, *, per_client: int, per_lead: int, lifetime_s: float):
        self._read = read
        self._per_client, self._per_lead, self._lifetime_s = per_client, per_lead, lifetime_s
        self._by_client: dict[str, list[Watch]] = {}
        self._by_lead: dict[str, list[Watch]] = {}
        self._followed: set[Watch] = set()
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    def reserve(self, client: str | None, lead_id: str, widget_id: str) -> Watch:
        """A place for one more stream, or Problem 429 when the client or the lead has its
        maximum open (a client with no address, not IP, has no per-client cap)."""
        now = time.monotonic()
        for limit, open_now, maximum in (
                ("client", self._by_client.get(client, []) if client else [], self._per_client),
                ("lead", self._by_lead.get(lead_id, []), self._per_lead)):
            if len(open_now) >= maximum:
                # when the oldest of them ends at the latest (none: streams are off, 0)
                soonest = min((w.deadline for w in open_now), default=now + self._lifetime_s)
                # rounded to ms first: (now + 30) - now is 30.000000000004 at some `now`
                retry = max(1, math.ceil(round(soonest - now, 3)))
                raise Problem(429, "too-many-streams", "Too many event streams",
                              f"at most {maximum} open per {limit}; poll the status route",
                              retry_after=retry, limit=limit)
        watch = Watch(lead_id, widget_id, client, now + self._lifetime_s)
        if client:
            self._by_client.setdefault(client, []).append(watch)
        self._by_lead.setdefault(lead_id, []).append(watch)
        return watch

    def follow(self, watch: Watch, view: dict[str, Any]) -> None:
        """The stream is open with the lead's state as looked up: poll it from now on."""
        watch.view = view
        self._followed.add(watch)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    def release(self, watch: Watch) -> None:
        self._followed.discard(watch)
        for index, key in ((self._by_client, watch.client), (self._by_lead, watch.lead_id)):
            watches = index.get(key) if key else None
            if watches is not None and watch in watches:
                watches.remove(watch)
                if not watches:
                    del index[key]

    def open_streams(self) -> int:
        return sum(len(watches) for watches in self._by_lead.values())

    def close(self) -> None:
        """The server is shutting down: every stream ends."""
        self.closing = True
        for watches in self._by_lead.values():
            for watch in watches:
                watch.woken.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _poll(self) -> None:
        failing = False
        try:
            while True:
                await asyncio.sleep(POLL_S)
                if not self._followed:
                    return  # (no await before the finally: a new stream starts a new task)
                wanted = {w.lead_id: w.widget_id for w in self._followed}
                try:
                    states = await self._read(wanted)
                except Exception:  # the store closing, busy: the next tick tries again
                    if not failing:
                        log.warning("reading the followed leads' progress failed", exc_info=True)
                    failing = True
                    continue
                failing = False
                for watch in list(self._followed):
                    if watch.lead_id in wanted:
                        watch.offer(states.get(watch.lead_id))
                    if watch.left():
                        watch.woken.set()
        finally:
            if self._task is asyncio.current_task():
                self._task = None


_HUB = web.AppKey("widget_events_hub", EventHub)
STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # a buffering proxy (nginx) would hold the events back
}


def progress_view(lead: Any) -> dict[str, Any]:
    view = lead_public_view(lead)
    return {k: view[k] for k in PROGRESS_FIELDS}


async def lead_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events of a lead's progress: `event: progress` with its status, progress,
    outcome and due time whenever one changes (the first at once), a comment every
    HEARTBEAT_S, the end after `done`, when the lead is gone, at the stream's lifetime or when
    the server shuts down. The place is reserved first (a 429 beyond the caps), then the lead
    is looked up before the stream starts, so an unknown one is a 404 problem. A client gone
    away ends the handler (aiohttp cancels it, or the write fails); its place is freed."""
    hub = request.app[_HUB]
    widget = widget_of(request)
    lead_id = request.match_info["lead_id"]
    watch = hub.reserve(services(request).progress.client(request.remote), lead_id, widget.id)
    try:
        lead = await services(request).leads.public_status(widget, lead_id)
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)
        transport = request.transport
        watch.left = lambda: transport is None or transport.is_closing()
        hub.follow(watch, progress_view(lead))
        await _stream(response, watch, hub)
    finally:
        hub.release(watch)
    return response


async def _stream(response: web.StreamResponse, watch: Watch, hub: EventHub) -> None:
    sent: dict[str, Any] | None = None
    written = time.monotonic()
    try:
        while True:
            watch.woken.clear()  # before looking: a change while writing wakes the wait
            view = watch.view
            if view is not None and view != sent:
                await response.write(b"event: progress\ndata: "
                                     + json.dumps(view).encode() + b"\n\n")
                sent, written = view, time.monotonic()
            now = time.monotonic()
            if watch.left():
                return  # nobody to write to
            if ((sent is not None and sent["status"] == LEAD_DONE) or watch.gone
                    or hub.closing or now >= watch.deadline):
                break
            if now - written >= HEARTBEAT_S:
                await response.write(b": heartbeat\n\n")
                written = now
            wait = min(HEARTBEAT_S - (now - written), watch.deadline - now)
            try:
                await asyncio.wait_for(watch.woken.wait(), max(wait, 0.0))
            except TimeoutError:
                pass
        await response.write_eof()
    except ConnectionResetError:  # the visitor left: nothing to tell anyone
        pass


def hub_of(app: web.Application) -> EventHub:
    return app[_HUB]


async def _close_streams(app: web.Application) -> None:
    app[_HUB].close()


async def _stop_poller(app: web.Application) -> None:
    await app[_HUB].stop()


def add_routes(app: web.Application) -> None:
    deps = app[DEPS]

    async def read(leads: dict[str, str]) -> dict[str, dict[str, Any]]:
        return await app[SERVICES].progress.states(leads)

    app[_HUB] = EventHub(read, per_client=deps.events_per_client,
                         per_lead=deps.events_per_lead, lifetime_s=deps.events_lifetime_s)
    app.on_shutdown.append(_close_streams)
    app.on_cleanup.append(_stop_poller)
    app.router.add_get("/api/v1/widgets/{key}/leads/{lead_id}/events", lead_events)
