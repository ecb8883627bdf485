"""Channels the dialplan hands to the engine: `Stasis(callengine,<purpose>,<arg>...)`.

The engine gives each such channel to the handler registered for its purpose (the first app
argument), in a task of its own, as an InboundChannel: that channel's events (digits,
playbacks ending, its end) in order, and the few requests a prompt-and-collect dialogue needs.
A channel whose purpose no handler claims is hung up, as every stranger in the app is. When the
handler returns, the engine hangs the channel up unless the handler handed it on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from callengine.calls import new_id
from callengine.telephony import (
    ChannelDestroyed,
    ChannelEnteredApp,
    DigitPressed,
    Gone,
    PlaybackFinished,
    Telephony,
    TelephonyError,
    TelephonyEvent,
)

log = logging.getLogger(__name__)


class ChannelGone(Exception):
    """The inbound channel ended (the caller hung up, or Asterisk went away)."""


@dataclass
class InboundChannel:
    channel_id: str
    name: str  # e.g. PJSIP/agent1-00000003
    args: tuple[str, ...]  # the app arguments after the purpose
    telephony: Telephony
    events: asyncio.Queue[TelephonyEvent] = field(default_factory=asyncio.Queue)
    gone: bool = False
    handed_on: bool = False  # the handler moved the channel elsewhere: do not hang it up

    @property
    def log_prefix(self) -> str:
        return f"[inbound {self.channel_id}]"

    async def next_event(self, timeout: float | None = None) -> TelephonyEvent | None:
        """The channel's next event; None when `timeout` passes first. Raises ChannelGone."""
        if self.gone:
            raise ChannelGone(self.channel_id)
        try:
            async with asyncio.timeout(timeout):
                event = await self.events.get()
        except TimeoutError:
            return None
        if isinstance(event, ChannelDestroyed):
            self.gone = True
            raise ChannelGone(self.channel_id)
        return event

    async def play(self, media: str, *, interruptible: bool = False) -> str | None:
        """Play `media` (e.g. "sound:beep") to the end. With `interruptible`, a digit pressed
        meanwhile stops it and is returned; otherwise digits pressed during it are dropped."""
        playback_id = new_id()
        await self.telephony.play(self.channel_id, media, playback_id)
        while True:
            event = await self.next_event()
            if isinstance(event, PlaybackFinished) and event.playback_id == playback_id:
                return None
            if interruptible and isinstance(event, DigitPressed):
                try:
                    await self.telephony.stop_playback(playback_id)
                except Gone:
                    pass  # it ended as the digit came
                return event.digit

    async def digit(self, timeout: float) -> str | None:
        """The next digit pressed within `timeout` seconds, else None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            event = await self.next_event(left)
            if isinstance(event, DigitPressed):
                return event.digit
        return None

    async def digits(self, *, most: int, first_timeout: float, between_timeout: float,
                     end: str = "#") -> str:
        """Digits typed until `end`, `most` of them, or a pause; "" if none came in time."""
        typed = ""
        while len(typed) < most:
            digit = await self.digit(first_timeout if not typed else between_timeout)
            if digit is None or digit == end:
                break
            typed += digit
        return typed


InboundHandler = Callable[[InboundChannel], Awaitable[None]]


class InboundChannels:
    """The engine's inbound channels: each in a task of the engine's TaskGroup, running the
    handler of its purpose; the engine's event pump routes their events here."""

    def __init__(self, telephony: Telephony, handlers: Mapping[str, InboundHandler]):
        self._telephony = telephony
        self._handlers = dict(handlers)
        self._channels: dict[str, InboundChannel] = {}

    def take(self, event: ChannelEnteredApp, tasks: asyncio.TaskGroup | None) -> bool:
        """Give a channel that entered the app to its purpose's handler; False if none."""
        handler = self._handlers.get(event.args[0]) if event.args else None
        if handler is None or tasks is None:
            return False
        channel = InboundChannel(event.channel_id, event.name, event.args[1:], self._telephony)
        self._channels[event.channel_id] = channel
        tasks.create_task(self._run(handler, channel), name=f"inbound-{event.channel_id}")
        return True

    def route(self, channel_id: str, event: TelephonyEvent) -> bool:
        channel = self._channels.get(channel_id)
        if channel is None:
            return False
        channel.events.put_nowait(event)
        return True

    def reconcile(self, live_channels: Mapping[str, str]) -> None:
        """After a reconnect: a channel that ended while events were lost has ended."""
        for channel_id, channel in self._channels.items():
            if channel_id not in live_channels:
                channel.events.put_nowait(ChannelDestroyed(channel_id, 0, "ended while events were lost"))

    async def _run(self, handler: InboundHandler, channel: InboundChannel) -> None:
        try:
            await handler(channel)
        except ChannelGone:
            log.info("%s the caller hung up", channel.log_prefix)
        except TelephonyError as exc:
            log.warning("%s %s", channel.log_prefix, exc)
        except Exception:  # one caller's dialogue must not take the engine down
            log.exception("%s handler failed", channel.log_prefix)
        finally:
            self._channels.pop(channel.channel_id, None)
            if not channel.gone and not channel.handed_on:
                try:
                    await self._telephony.hangup(channel.channel_id)
                except TelephonyError:
                    pass  # gone already, or Asterisk is: nothing left to end
