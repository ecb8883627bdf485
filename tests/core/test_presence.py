"""The presence view (callengine.presence): what each report makes of an endpoint, and when a
change frees one (the dispatcher is woken then). Pure: tables, no fakes."""

from __future__ import annotations

import pytest

from callengine.presence import BUSY_ELSEWHERE, FREE, OFFLINE, UNKNOWN, Presence
from callengine.telephony import EndpointState

E = "PJSIP/agent1"


@pytest.mark.parametrize("state, channels, expected", [
    ("online", (), FREE),                          # registered, or static and not qualified
    ("online", ("ce-0b6d…",), FREE),               # on the engine's own call: its own count
    ("online", ("1733130000.12",), BUSY_ELSEWHERE),  # a call someone else made or took
    ("online", ("ce-1", "agent-pause-chan"), BUSY_ELSEWHERE),
    ("offline", (), OFFLINE),                      # no contact: not registered
    ("offline", ("1733130000.12",), OFFLINE),
    ("unknown", (), FREE),                         # Asterisk can't say: rung, as before
])
def test_a_reported_endpoint(state, channels, expected):
    presence = Presence("ce-")
    presence.rebuild([EndpointState(E, state, channels)])
    assert presence.state(E) == expected
    assert presence.can_ring(E) is (expected == FREE)


def test_an_endpoint_never_reported_is_unknown_and_rung():
    presence = Presence("ce-")
    presence.rebuild([EndpointState("PJSIP/other", "offline")])
    assert presence.state(E) == UNKNOWN and presence.can_ring(E)
    assert presence.unavailable() == {"PJSIP/other": OFFLINE}


@pytest.mark.parametrize("before, after, frees", [
    (EndpointState(E, "offline"), EndpointState(E, "online"), True),       # registered
    (EndpointState(E, "online", ("17.1",)), EndpointState(E, "online"), True),  # other call ended
    (EndpointState(E, "online"), EndpointState(E, "online", ("ce-1",)), False),  # we ring it
    (EndpointState(E, "online", ("ce-1",)), EndpointState(E, "online"), False),  # ours ended
    (EndpointState(E, "online"), EndpointState(E, "offline"), False),
    (None, EndpointState(E, "online"), False),                             # unknown → free
    (EndpointState(E, "offline"), EndpointState(E, "online", ("17.1",)), False),
])
def test_a_change_frees_an_endpoint_only_when_it_could_not_be_rung_before(before, after, frees):
    presence = Presence("ce-")
    presence.rebuild([before] if before else [])
    assert presence.update(after) is frees


def test_a_rebuild_replaces_the_whole_view():
    presence = Presence("ce-")
    presence.rebuild([EndpointState(E, "offline"), EndpointState("PJSIP/agent2", "online",
                                                                  ("17.1",))])
    assert presence.unavailable() == {E: OFFLINE, "PJSIP/agent2": BUSY_ELSEWHERE}
    presence.rebuild([EndpointState(E, "online")])
    assert presence.unavailable() == {}
    assert presence.state("PJSIP/agent2") == UNKNOWN
