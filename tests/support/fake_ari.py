"""One fake of the ARI client for tests without Asterisk: implements the Telephony and
ExternalMedia ports (callengine.telephony), records every request, keeps a table of channels
and bridges, injects events and typed failures.

By default it answers as Asterisk does when every phone answers at once: an originated
channel enters the app, a playback finishes, a hangup destroys the channel. `answer=False`
leaves originated channels ringing until the test says what happens (`answer`, `reject`,
`far_end_hangs_up`). Endpoints it is told of (`set_endpoint`) are listed by endpoint_states()
and, as Asterisk does, report each channel's arrival and end on them (EndpointState events);
endpoints it is not told of are not listed (presence "unknown", rung as before). add_to_bridge retries NotReady exactly as the real client does (it uses
the client's retry_not_ready), so each try is one recorded request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from callengine.asterisk.ari import retry_not_ready
from callengine.telephony import (
    ChannelDestroyed,
    ChannelEnteredApp,
    ChannelRinging,
    Connected,
    DigitPressed,
    Disconnected,
    EndpointState,
    ExternalMediaChannel,
    Gone,
    NotReady,
    PlaybackFinished,
    TelephonyError,
    TelephonyEvent,
)

def failure(cls: type[TelephonyError], what: str = "", *,
            unavailable: bool = False) -> TelephonyError:
    """A typed failure, described the way the ARI client describes its own (the status it
    stands for appears in the text, as in real logs): failure(NotReady), failure(Gone);
    TelephonyError itself is POST /channels' 500 "Allocation failed"."""
    status, reason = {
        Gone: (404, "Channel not found"),
        NotReady: (422, "Channel not in Stasis application"),
    }.get(cls, (500, "Allocation failed"))
    if unavailable:
        status, reason = 0, "ClientConnectorError: Connection refused"
    return cls(f"ARI {what or 'request'} → {status}: {reason}", reason, unavailable=unavailable)


class FakeAri:
    """A fake ARI client. `calls`: every request as (method, *arguments), in order."""

    app = "fake-app"

    def __init__(self, *, answer: bool = True, asterisk_started: str = "boot-1",
                 fail: dict[str, list[TelephonyError | type[TelephonyError]]] | None = None):
        self.calls: list[tuple[Any, ...]] = []
        self.channels: dict[str, str] = {}  # id → endpoint
        self.states: dict[str, str] = {}  # id → "Ringing", "Up"
        self.channel_names: dict[str, str] = {}  # id → PJSIP/…-00000001
        self.bridges: dict[str, list[str]] = {}  # id → member channel ids
        self._args: dict[str, tuple[str, ...]] = {}  # channel id → its appArgs
        self.auto_answer = answer
        self.play_finishes = True  # False: playbacks run until stopped
        self.asterisk_started = asterisk_started
        self._failures: dict[str, list[TelephonyError]] = {}
        for method, errors in (fail or {}).items():
            self.fail(method, *errors)
        self._queue: asyncio.Queue[TelephonyEvent | None] = asyncio.Queue()
        self._up = asyncio.Event()  # cleared by go_down: events() stays disconnected
        self._up.set()
        self.endpoints: dict[str, EndpointState] = {}  # "PJSIP/agent1" → as Asterisk says

    # -- what tests do ----------------------------------------------------------------------

    def fail(self, method: str, *errors: TelephonyError | type[TelephonyError]) -> None:
        """The next calls of `method` raise these, one per call (classes are instantiated)."""
        self._failures.setdefault(method, []).extend(
            e if isinstance(e, TelephonyError) else failure(e, method) for e in errors)

    def emit(self, event: TelephonyEvent) -> None:
        """Deliver an event to the consumer of events()."""
        self._queue.put_nowait(event)

    def reconnect(self, *, restarted: bool = False, vanished: tuple[str, ...] = ()) -> None:
        """The websocket drops and comes back (Asterisk restarted if `restarted`: new start
        time and no channels or bridges). `vanished` channels are gone without an event, as
        when they end while nobody listens."""
        for channel_id in vanished:
            self._forget_channel(channel_id, quietly=True)
        if restarted:
            self.asterisk_started += "-restarted"
            for endpoint, state in self.endpoints.items():
                self.endpoints[endpoint] = EndpointState(endpoint, state.state)
            self.channels.clear()
            self.states.clear()
            self.bridges.clear()
        self._queue.put_nowait(None)  # events() yields Disconnected, then Connected again

    def go_down(self) -> None:
        """The websocket drops and stays down (Asterisk stopped) until `come_back`."""
        self._up.clear()
        self._queue.put_nowait(None)

    def come_back(self) -> None:
        self._up.set()

    def add_channel(self, channel_id: str, endpoint: str, state: str = "Up") -> None:
        """A channel Asterisk has that the engine did not create (through us)."""
        self.channels[channel_id] = endpoint
        self.states[channel_id] = state
        self._endpoint_channels(endpoint, add=channel_id)

    def hand_over(self, channel_id: str, endpoint: str, *args: str,
                  name: str = "PJSIP/caller-00000001") -> None:
        """The dialplan runs Stasis(app,<args>) on a channel of its own."""
        self.add_channel(channel_id, endpoint)
        self.channel_names[channel_id] = name
        self.emit(ChannelEnteredApp(channel_id, tuple(args), name))

    def press(self, channel_id: str, digits: str) -> None:
        """The far end of `channel_id` presses these keys (one DigitPressed each)."""
        for digit in digits:
            self.emit(DigitPressed(channel_id, digit))

    def set_endpoint(self, endpoint: str, state: str = "online",
                     channel_ids: tuple[str, ...] | None = None, *, quietly: bool = False) -> None:
        """Asterisk's state of `endpoint` changes (a phone registers: "online", unregisters:
        "offline"); `channel_ids` None keeps its channels. An EndpointState event follows
        unless `quietly` (it changed while nobody listened: only endpoint_states() tells)."""
        kept = self.endpoints[endpoint].channel_ids if endpoint in self.endpoints else ()
        self.endpoints[endpoint] = EndpointState(
            endpoint, state, kept if channel_ids is None else tuple(channel_ids))
        if not quietly:
            self.emit(self.endpoints[endpoint])

    def _endpoint_channels(self, endpoint: str, add: str = "", remove: str = "",
                           quietly: bool = False) -> None:
        if endpoint in self.endpoints:
            ids = tuple(c for c in self.endpoints[endpoint].channel_ids if c != remove)
            self.set_endpoint(endpoint, self.endpoints[endpoint].state,
                              ids + ((add,) if add else ()), quietly=quietly)

    def add_bridge(self, bridge_id: str) -> None:
        """A bridge Asterisk has that was not created through us."""
        self.bridges.setdefault(bridge_id, [])

    def channel_for(self, endpoint_part: str) -> str:
        """The id of the live channel whose endpoint contains `endpoint_part`."""
        return next(c for c, e in self.channels.items() if endpoint_part in e)

    def answer(self, channel_id: str) -> None:
        self.states[channel_id] = "Up"
        self.emit(ChannelEnteredApp(channel_id, self._args.get(channel_id, ()),
                                    self.channel_names.get(channel_id, "")))

    def reject(self, channel_id: str, cause: int = 17, text: str = "User busy") -> None:
        self._forget_channel(channel_id)
        self.emit(ChannelDestroyed(channel_id, cause, text))

    def far_end_hangs_up(self, endpoint_part: str) -> None:
        self.reject(self.channel_for(endpoint_part), 16, "Normal Clearing")

    def names(self) -> list[str]:
        """The methods called, in order."""
        return [c[0] for c in self.calls]

    def requests(self, method: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == method]

    # -- Telephony ---------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[TelephonyEvent]:
        while True:
            await self._up.wait()
            yield Connected(self.asterisk_started)
            while (event := await self._queue.get()) is not None:
                yield event
            yield Disconnected("websocket closed (1006)")

    async def channel_ids(self) -> dict[str, str]:
        self._request("channel_ids")
        return dict(self.states)

    async def bridge_ids(self) -> list[str]:
        self._request("bridge_ids")
        return list(self.bridges)

    async def endpoint_states(self) -> list[EndpointState]:
        self._request("endpoint_states")
        return list(self.endpoints.values())

    async def originate(self, endpoint: str, channel_id: str, *, app_args: list[str],
                        timeout: int, caller_id: str | None = None,
                        near: str | None = None) -> None:
        self._request("originate", endpoint, channel_id, tuple(app_args), timeout, caller_id)
        self.channels[channel_id] = endpoint
        self.states[channel_id] = "Ringing"
        self._endpoint_channels(endpoint, add=channel_id)
        self.channel_names[channel_id] = f"PJSIP/chan-{len(self.channel_names):08x}"
        self._args[channel_id] = tuple(app_args)
        if self.auto_answer:
            self.answer(channel_id)
        else:
            self.emit(ChannelRinging(channel_id))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self._request("hangup", channel_id)
        if channel_id not in self.channels:
            raise failure(Gone, f"DELETE /channels/{channel_id}")
        self._forget_channel(channel_id)
        self.emit(ChannelDestroyed(channel_id, 16, "Normal Clearing"))

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        self._request("play", channel_id, media, playback_id)
        if self.play_finishes:
            self.emit(PlaybackFinished(playback_id, channel_id, False))

    async def stop_playback(self, playback_id: str) -> None:
        self._request("stop_playback", playback_id)

    async def answer_channel(self, channel_id: str) -> None:
        self._request("answer_channel", channel_id)
        self.states[channel_id] = "Up"

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str
                                   ) -> None:
        self._request("continue_in_dialplan", channel_id, context, extension)

    async def ring(self, channel_id: str, on: bool) -> None:
        self._request("ring", channel_id, on)

    async def create_bridge(self, bridge_id: str, near: str | None = None) -> None:
        self._request("create_bridge", bridge_id)
        self.bridges[bridge_id] = []

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str], *,
                            timeout: float | None = None) -> int:
        async def add() -> None:
            self._request("add_to_bridge", bridge_id, tuple(channel_ids))
            if bridge_id not in self.bridges:
                raise failure(Gone, f"POST /bridges/{bridge_id}/addChannel")
            self.bridges[bridge_id] += channel_ids

        return await retry_not_ready(add, timeout)

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._request("destroy_bridge", bridge_id)
        if self.bridges.pop(bridge_id, None) is None:
            raise failure(Gone, f"DELETE /bridges/{bridge_id}")

    # -- ExternalMedia -----------------------------------------------------------------------

    async def external_media(self, channel_id: str, external_host: str, format: str,
                             near: str | None = None) -> ExternalMediaChannel:
        self._request("external_media", channel_id, external_host, format)
        self.channels[channel_id] = f"UnicastRTP/{external_host}"
        self.states[channel_id] = "Up"
        return ExternalMediaChannel(channel_id, f"UnicastRTP/{external_host}-0x1",
                                    "127.0.0.1", 10042)

    async def channel_var(self, channel_id: str, name: str) -> str:
        self._request("channel_var", channel_id, name)
        if channel_id not in self.channels:
            raise failure(Gone, f"GET /channels/{channel_id}/variable")
        return ""

    # -- inside ------------------------------------------------------------------------------

    def _request(self, method: str, *args: Any) -> None:
        """Record the request; raise the next failure injected for it, if any."""
        self.calls.append((method, *args))
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def _forget_channel(self, channel_id: str, quietly: bool = False) -> None:
        self._endpoint_channels(self.channels.get(channel_id, ""), remove=channel_id,
                                quietly=quietly)
        self.channels.pop(channel_id, None)
        self.states.pop(channel_id, None)
        for members in self.bridges.values():
            if channel_id in members:
                members.remove(channel_id)
