"""The ARI event parser (callengine/asterisk/events.py) on events recorded from the real
Asterisk (fixtures/*.json, made by record_events.py): the sequence of port events the engine
needs, per scenario, and None for everything else. No Asterisk needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callengine.asterisk.events import parse_event
from callengine.telephony import (
    AsteriskShuttingDown,
    ChannelDestroyed,
    ChannelEnteredApp,
    ChannelRinging,
    EndpointState,
    PlaybackFinished,
)

FIXTURES = Path(__file__).parent / "fixtures"
# The ARI events the engine acts on; every other type must parse to None.
NEEDED = {"StasisStart", "ChannelDestroyed", "ChannelHangupRequest", "Dial",
          "ChannelStateChange", "PlaybackFinished", "PlaybackFailed"}


def replay(name: str) -> tuple[list[dict], list[tuple]]:
    """The fixture's messages, and its parsed events with channel ids replaced by roles in
    order of appearance (our first channel is the agent, the second the visitor), consecutive
    repeats folded (Dial RINGING and ChannelStateChange Ringing say the same)."""
    messages = json.loads((FIXTURES / f"{name}.json").read_text())
    roles: dict[str, str] = {}

    def role(channel_id: str | None) -> str:
        if channel_id not in roles:
            roles[channel_id] = ("agent", "visitor", "third")[len(roles)]
        return roles[channel_id]

    seen: list[tuple] = []
    for message in messages:
        event = parse_event(message)
        match event:
            case None:
                continue
            case ChannelRinging(channel_id=cid):
                item: tuple = ("ringing", role(cid))
            case ChannelEnteredApp(channel_id=cid, args=args, name=channel_name):
                assert channel_name.startswith("PJSIP/")
                item = ("entered", role(cid), args[1:])  # args[0] is the lead id
            case ChannelDestroyed(channel_id=cid, cause=cause, cause_text=text):
                item = ("destroyed", role(cid), cause, text)
            case AsteriskShuttingDown(channel_id=cid):
                item = ("shutting-down", role(cid))
            case PlaybackFinished(channel_id=cid, failed=failed):
                item = ("playback-finished", role(cid), failed)
            case _:
                raise AssertionError(f"unexpected {event}")
        if not seen or seen[-1] != item:
            seen.append(item)
    return messages, seen


SCENARIOS = {
    "answered": [
        ("ringing", "agent"),
        ("entered", "agent", ("agent:0",)),
        ("playback-finished", "agent", False),  # the whisper
        ("ringing", "visitor"),
        ("entered", "visitor", ("visitor",)),
        ("destroyed", "visitor", 16, "Normal Clearing"),  # the visitor's BYE
        ("destroyed", "agent", 16, "Normal Clearing"),  # our hangup (soft 32: not an event)
    ],
    "agent_busy": [
        ("ringing", "agent"),
        ("destroyed", "agent", 17, "User busy"),
    ],
    "agent_no_answer": [
        ("ringing", "agent"),
        ("destroyed", "agent", 19, "User alerting, no answer"),
    ],
    "visitor_busy": [
        ("ringing", "agent"),
        ("entered", "agent", ("agent:0",)),
        ("ringing", "visitor"),
        ("destroyed", "visitor", 17, "User busy"),
        ("destroyed", "agent", 16, "Normal Clearing"),
    ],
    "asterisk_restart": [
        ("ringing", "agent"),
        ("entered", "agent", ("agent:0",)),
        ("ringing", "visitor"),
        ("entered", "visitor", ("visitor",)),
        ("shutting-down", "visitor"),
        ("shutting-down", "agent"),
        ("destroyed", "agent", 16, "Normal Clearing"),
        ("destroyed", "visitor", 16, "Normal Clearing"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_calls_give_the_events_the_engine_needs(name):
    _, events = replay(name)
    assert events == SCENARIOS[name]


def test_every_fixture_is_checked():
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_events_the_engine_does_not_need_map_to_none(name):
    messages, _ = replay(name)
    others = [m for m in messages if m["type"] not in NEEDED]  # ChannelVarset, StasisEnd, …
    assert [parse_event(m) for m in others] == [None] * len(others)
    # Of the needed types, only these carry nothing for the engine:
    for message in messages:
        if message["type"] in NEEDED and parse_event(message) is None:
            assert (
                message["type"] == "Dial" and message.get("dialstatus") != "RINGING"
                or message["type"] == "ChannelStateChange"
                and message["channel"]["state"] != "Ringing"
                or message["type"] == "ChannelHangupRequest"
                and not int(message.get("cause", 0)) & 4
            ), message["type"]


def test_the_fixtures_hold_events_the_engine_ignores():
    types = {m["type"] for name in SCENARIOS for m in replay(name)[0]}
    assert {"ChannelVarset", "StasisEnd", "ChannelEnteredBridge", "BridgeDestroyed"} <= types


def test_our_own_hangup_is_not_a_shutdown():
    """DELETE /channels/{id} shows as a soft hangup with flag 32; only flag 4 is Asterisk
    stopping (both as recorded)."""
    messages, _ = replay("answered")
    soft = [m for m in messages if m["type"] == "ChannelHangupRequest" and m.get("soft")]
    assert [m["cause"] for m in soft] == [32] and parse_event(soft[0]) is None
    restart, _ = replay("asterisk_restart")
    shutdown = [m for m in restart if m["type"] == "ChannelHangupRequest"]
    assert {m["cause"] for m in shutdown} == {4}
    assert all(isinstance(parse_event(m), AsteriskShuttingDown) for m in shutdown)


def test_playback_target_and_a_failed_playback():
    messages, _ = replay("answered")
    finished, = [m for m in messages if m["type"] == "PlaybackFinished"]
    event = parse_event(finished)
    assert event.playback_id == finished["playback"]["id"] and not event.failed
    assert event.channel_id == finished["playback"]["target_uri"].removeprefix("channel:")
    failed = {**finished, "type": "PlaybackFailed"}  # Asterisk ≥ 21, for a missing sound file
    assert parse_event(failed).failed


def test_an_endpoint_state_change():
    """As Asterisk 22.10 sent it (subscribed to endpoint:PJSIP) when a channel someone else
    made arrived on agent1, and when agent7's phone unregistered."""
    busy = {"type": "EndpointStateChange", "application": "probe",
            "timestamp": "2026-12-02T07:09:29.684+0000", "asterisk_id": "00:00:00:00:00:00",
            "endpoint": {"technology": "PJSIP", "resource": "agent1", "state": "online",
                         "channel_ids": ["other-1"]}}
    gone = {**busy, "endpoint": {"technology": "PJSIP", "resource": "agent7",
                                 "state": "offline", "channel_ids": []}}
    assert parse_event(busy) == EndpointState("PJSIP/agent1", "online", ("other-1",))
    assert parse_event(gone) == EndpointState("PJSIP/agent7", "offline", ())
    for other in ("PeerStatusChange", "ContactStatusChange"):  # sent beside it: not needed
        assert parse_event({**gone, "type": other}) is None
