"""A thin typed ARI client on aiohttp: the REST calls the engine needs and the events websocket,
implementing the Telephony and ExternalMedia ports (callengine.telephony).

Written by hand because the Python ARI libraries are broken on Python 3 (ari-py), unmaintained
(aioari) or built on another async stack (asyncari); ARI is ~10 REST calls and one websocket.
ARI's HTTP statuses end here: they become the port's typed errors (ari_error); event JSON is
translated in events.py. Credentials travel in an Authorization header, never in a URL (URLs
end up in logs).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from callengine.asterisk.events import endpoint_state, parse_event
from callengine.telephony import (
    Connected,
    Disconnected,
    EndpointState,
    ExternalMediaChannel,
    Gone,
    NotReady,
    TelephonyError,
    TelephonyEvent,
)

log = logging.getLogger(__name__)


def ari_error(method: str, path: str, status: int, message: str, *,
              unavailable: bool = False) -> TelephonyError:
    """ARI's answer (or its absence: status 0) as the port's typed error: 404 → Gone,
    422 → NotReady, anything else TelephonyError. `unavailable`: not an answer from ARI at all
    (Asterisk down, or its HTTP server up without ARI loaded: an HTML 404 during restarts)."""
    kind = {404: Gone, 422: NotReady}.get(status, TelephonyError)
    return kind(f"ARI {method} {path} → {status}: {message}", message,
                unavailable=unavailable or status == 0)


# addChannel right after a channel entered the app sometimes answers 422 "Channel not in Stasis
# application" (measured: 2 runs in 4): retry with a growing pause, BRIDGE_TRIES requests at most.
BRIDGE_TRIES = 5
BRIDGE_BACKOFF_S = 0.1  # × the number of the failed try


async def retry_not_ready(add: Callable[[], Awaitable[None]], timeout: float | None = None) -> int:
    """Run `add` until it does not raise NotReady (BRIDGE_TRIES at most, and no pause that ends
    past `timeout` seconds from now); returns the tries it took."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            await add()
            return tries
        except NotReady:
            pause = BRIDGE_BACKOFF_S * tries
            if tries >= BRIDGE_TRIES or (deadline is not None and loop.time() + pause > deadline):
                raise
        await asyncio.sleep(pause)


# ---- client -----------------------------------------------------------------------------------


class AriClient:
    """Use as `async with AriClient(...) as ari`: the HTTP session lives as long as the block."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        *,
        request_timeout: float = 10.0,
        max_backoff: float = 5.0,
        endpoint_technologies: tuple[str, ...] = ("PJSIP",),
    ):
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth_header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._max_backoff = max_backoff
        self._technologies = endpoint_technologies  # whose endpoints' states we follow
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AriClient:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": self._auth_header}, timeout=self._timeout
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("AriClient used outside 'async with'")
        return self._session

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        url = f"{self.base_url}{path}"
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self.session.request(method, url, params=clean, json=json) as response:
                if response.status >= 400:
                    is_json = response.content_type == "application/json"
                    raise ari_error(method, path, response.status, await _error_text(response),
                                    unavailable=not is_json)
                if response.status == 204 or response.content_length == 0:
                    return None
                return await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ari_error(method, path, 0, f"{type(exc).__name__}: {exc}") from exc

    # -- REST ---------------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        return await self.request("GET", "/asterisk/info")

    async def originate(
        self,
        endpoint: str,
        channel_id: str,
        *,
        app_args: list[str],
        timeout: int,
        caller_id: str | None = None,
        near: str | None = None,  # one Asterisk: every channel is near every other
    ) -> None:
        # Parameters go in the JSON body, not the query string: the endpoint holds the
        # visitor's number, and URLs end up in access logs.
        body = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": ",".join(app_args),
            "channelId": channel_id,
            "timeout": timeout,
        }
        if caller_id:
            body["callerId"] = caller_id
        await self.request("POST", "/channels", json=body)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/play",
            params={"media": media, "playbackId": playback_id},
        )

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def answer_channel(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str
                                   ) -> None:
        await self.request("POST", f"/channels/{channel_id}/continue",
                           params={"context": context, "extension": extension, "priority": 1})

    async def ring(self, channel_id: str, on: bool) -> None:
        await self.request("POST" if on else "DELETE", f"/channels/{channel_id}/ring")

    async def create_bridge(self, bridge_id: str, near: str | None = None) -> None:
        await self.request("POST", "/bridges", params={"type": "mixing", "bridgeId": bridge_id})

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str], *,
                            timeout: float | None = None) -> int:
        """addChannel, retried while ARI answers NotReady (see retry_not_ready); returns the
        requests it took."""
        return await retry_not_ready(
            lambda: self.request("POST", f"/bridges/{bridge_id}/addChannel",
                                 params={"channel": ",".join(channel_ids)}),
            timeout,
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def channel_ids(self) -> dict[str, str]:
        """Every channel Asterisk has: id → state ("Up", "Ring", "Ringing", …)."""
        channels = await self.request("GET", "/channels")
        return {c["id"]: c.get("state", "") for c in channels}

    async def bridge_ids(self) -> list[str]:
        return [b["id"] for b in await self.request("GET", "/bridges")]

    async def endpoint_states(self) -> list[EndpointState]:
        """The endpoints of the technologies we follow, as they are now."""
        states: list[EndpointState] = []
        for tech in self._technologies:
            states += [endpoint_state(e) for e in await self.request("GET", f"/endpoints/{tech}")]
        return states

    async def _subscribe_endpoints(self) -> None:
        """EndpointStateChange for every endpoint of our technologies. An app without a
        websocket loses its subscriptions (and a restart everything): asked after each
        connect, before Connected, so the list read on Connected misses no later change."""
        for tech in self._technologies:
            await self.request("POST", f"/applications/{self.app}/subscription",
                               params={"eventSource": f"endpoint:{tech}"})

    async def external_media(
        self, channel_id: str, external_host: str, format: str, near: str | None = None
    ) -> ExternalMediaChannel:
        """An externalMedia channel in our app sending RTP (UDP, client mode) to external_host
        ("host:port") in `format` (an Asterisk format name: "slin", "slin16", "ulaw", …).
        Add it to a bridge to get the bridge's mix; addChannel may answer NotReady for a moment
        after this returns (the channel enters Stasis asynchronously)."""
        body = await self.request(
            "POST",
            "/channels/externalMedia",
            params={
                "app": self.app,
                "channelId": channel_id,
                "external_host": external_host,
                "format": format,
                "encapsulation": "rtp",
                "transport": "udp",
                "connection_type": "client",
                "direction": "both",
            },
        )
        body = body or {}
        variables = body.get("channelvars") or {}
        port = variables.get("UNICASTRTP_LOCAL_PORT")
        return ExternalMediaChannel(
            channel_id=body.get("id", channel_id),
            name=body.get("name", ""),
            local_address=variables.get("UNICASTRTP_LOCAL_ADDRESS") or None,
            local_port=int(port) if port else None,
        )

    async def channel_var(self, channel_id: str, name: str) -> str:
        """A channel variable or function (GET /channels/{id}/variable); Gone if the
        channel is gone or the variable is not set."""
        body = await self.request(
            "GET", f"/channels/{channel_id}/variable", params={"variable": name}
        )
        return (body or {}).get("value", "")

    # -- events -------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[TelephonyEvent]:
        """Events for our app, forever: reconnects with jittered backoff after every drop.

        Yields Connected after each (re)connect and Disconnected after each drop, so the
        consumer can reconcile: Asterisk does not replay events missed while disconnected."""
        ws_url = self.base_url.replace("http", "ws", 1) + "/events"
        params = {"app": self.app, "subscribeAll": "false"}
        backoff = 0.2
        while True:
            try:
                started = (await self.info()).get("status", {}).get("startup_time", "")
                async with self.session.ws_connect(
                    ws_url, params=params, heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(
                        ws_close=5.0
                    )
                ) as ws:
                    backoff = 0.2
                    await self._subscribe_endpoints()
                    log.info("ARI events connected (app=%s)", self.app)
                    yield Connected(started)
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        event = parse_event(message.json())
                        if event is not None:
                            yield event
                    reason = f"websocket closed ({ws.close_code})"
            except (aiohttp.ClientError, asyncio.TimeoutError, TelephonyError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            log.warning("ARI events lost: %s; reconnecting in %.1f s", reason, backoff)
            yield Disconnected(reason)
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self._max_backoff)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _error_text(response: aiohttp.ClientResponse) -> str:
    if response.content_type != "application/json":
        return response.reason or "not an ARI answer"
    try:
        body = await response.json()
        return str(body.get("message") or body.get("error") or body)
    except (ValueError, aiohttp.ContentTypeError):
        return response.reason or "malformed ARI answer"

