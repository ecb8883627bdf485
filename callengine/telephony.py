"""The Telephony port: what the engine and the media taps ask of the telephone system, the
events it sends back, and the typed errors it raises (instead of a protocol's status codes).

`callengine.asterisk.ari.AriClient` implements both protocols over ARI; tests use the fake in
tests/support/fake_ari.py. Nothing here does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Protocol


# ---- errors -------------------------------------------------------------------------------------


class TelephonyError(Exception):
    """A request the telephone system refused, or could not be sent.

    str(error) is the full description for logs; `reason` is the system's own short text
    (what a failed leg's cause records). `unavailable`: not an answer from the system at all
    (Asterisk down or restarting): the request may succeed later, elsewhere nothing is wrong."""

    def __init__(self, description: str, reason: str = "", *, unavailable: bool = False):
        super().__init__(description)
        self.reason = reason or description
        self.unavailable = unavailable


class Gone(TelephonyError):
    """The channel, bridge or variable asked for does not exist (any more)."""


class NotReady(TelephonyError):
    """The channel exists but is not in a state for this yet (e.g. not in our app yet)."""


# ---- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    """The events stream is (re)connected; `asterisk_started` tells a restart from a drop.
    `node`: which Asterisk, where there are several (callengine.nodes); "" for the only one."""

    asterisk_started: str
    node: str = ""


@dataclass(frozen=True)
class Disconnected:
    reason: str
    node: str = ""


@dataclass(frozen=True)
class ChannelRinging:
    channel_id: str


@dataclass(frozen=True)
class ChannelEnteredApp:
    """For a channel we originated: the far end answered. For a channel the dialplan handed
    over (Stasis(callengine,<purpose>,...)): it arrived, `args` naming why."""

    channel_id: str
    args: tuple[str, ...]
    name: str = ""  # e.g. PJSIP/agent1-00000001 (what AMI actions want)


@dataclass(frozen=True)
class DigitPressed:
    """A DTMF digit (RFC 2833 or SIP INFO, as Asterisk hears it) ended on one of our channels."""

    channel_id: str
    digit: str


@dataclass(frozen=True)
class ChannelDestroyed:
    channel_id: str
    cause: int
    cause_text: str


@dataclass(frozen=True)
class AsteriskShuttingDown:
    """The system is hanging this channel up because it is stopping or restarting."""

    channel_id: str
    node: str = ""
    reason: str = "Asterisk shut down"  # the call's cause (it names the node when several)


@dataclass(frozen=True)
class NodeDown:
    """One of several Asterisk nodes stayed unreachable (callengine.nodes): the channels it
    held are lost to us, and their calls end with `reason` as the cause."""

    node: str
    channel_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class EndpointState:
    """What the system says of an endpoint (e.g. "PJSIP/agent1"): `state` "online" (a
    reachable contact: registered, or static and not qualified), "offline" or "unknown", and
    the ids of the channels on it now. Sent on every change, and listed by endpoint_states()."""

    endpoint: str
    state: str
    channel_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaybackFinished:
    playback_id: str
    channel_id: str | None
    failed: bool


TelephonyEvent = (
    Connected | Disconnected | ChannelRinging | ChannelEnteredApp | ChannelDestroyed
    | AsteriskShuttingDown | PlaybackFinished | DigitPressed | EndpointState | NodeDown
)


# ---- the protocols ------------------------------------------------------------------------------


class Telephony(Protocol):
    """The calls the engine makes. Every method raises TelephonyError (or a subclass)."""

    async def originate(self, endpoint: str, channel_id: str, *, app_args: list[str],
                        timeout: int, caller_id: str | None = None,
                        near: str | None = None) -> None:
        """`near`: a channel id; the new channel is made on the same Asterisk (one system:
        ignored)."""
        ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def play(self, channel_id: str, media: str, playback_id: str) -> None: ...

    async def stop_playback(self, playback_id: str) -> None: ...

    async def answer_channel(self, channel_id: str) -> None: ...

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str
                                   ) -> None:
        """The channel leaves the app for the dialplan at context,extension,1."""
        ...

    async def ring(self, channel_id: str, on: bool) -> None: ...

    async def create_bridge(self, bridge_id: str, near: str | None = None) -> None: ...

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str], *,
                            timeout: float | None = None) -> int:
        """Add the channels, retrying briefly while one is NotReady (a channel that has just
        entered the app); returns the requests it took. Raises NotReady if it stays so."""
        ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def channel_ids(self) -> dict[str, str]:
        """Every channel the system has: id → state ("Up", "Ring", "Ringing", …)."""
        ...

    async def bridge_ids(self) -> list[str]: ...

    async def endpoint_states(self) -> list[EndpointState]:
        """Every endpoint the system has, as it is now (the presence view after a reconnect)."""
        ...

    def events(self) -> AsyncIterator[TelephonyEvent]:
        """Events for our app, forever: Connected after each (re)connect, Disconnected after
        each drop (missed events are not replayed: reconcile on Connected), and every
        endpoint's EndpointState changes from the Connected on."""
        ...


@dataclass(frozen=True)
class ExternalMediaChannel:
    """What the system tells us about a new external media channel."""

    channel_id: str
    name: str  # UnicastRTP/<external_host>-<pointer>
    local_address: str | None  # UNICASTRTP_LOCAL_ADDRESS: where Asterisk's RTP comes from
    local_port: int | None  # UNICASTRTP_LOCAL_PORT


class ExternalMedia(Protocol):
    """What an RTP tap asks: a channel streaming a bridge's audio to us, in and out of the
    bridge, and hung up at the end."""

    async def external_media(self, channel_id: str, external_host: str, format: str,
                             near: str | None = None) -> ExternalMediaChannel: ...

    async def channel_var(self, channel_id: str, name: str) -> str: ...

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str], *,
                            timeout: float | None = None) -> int: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...


__all__ = [
    "AsteriskShuttingDown", "ChannelDestroyed", "ChannelEnteredApp", "ChannelRinging",
    "Connected", "Disconnected", "EndpointState", "ExternalMedia", "ExternalMediaChannel", "Gone",
    "NodeDown", "NotReady",
    "PlaybackFinished", "Telephony", "TelephonyError", "TelephonyEvent",
]


async def quietly(request: Awaitable[object]) -> None:
    """For clean-up requests whose failure changes nothing (the thing is gone already):
    logged, never raised."""
    try:
        await request
    except Gone:
        pass
    except TelephonyError as exc:
        logging.getLogger(__name__).warning("%s", exc)
