"""One call the engine is running: its lead and attempt, its flow, its legs, timers and
recording, and its log (every line carries the lead id and attempt number, never the number)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from callengine.flow import CallFlow
from callengine.model import Attempt, Lead, Widget
from callengine.recordings import ActiveRecording

ID_PREFIX = "ce-"  # every channel and bridge a callengine engine creates


def engine_prefix(engine_id: str) -> str:
    """What the ids of one engine's channels and bridges start with: `ce-<engine id>-`. An
    engine touches only those (several engines may drive one Asterisk)."""
    return f"{ID_PREFIX}{engine_id}-"


def new_id(prefix: str = ID_PREFIX) -> str:
    # Full-width uuids: ARI matches channel ids by prefix, so ids must never prefix each other.
    return prefix + uuid.uuid4().hex


class CallLog(logging.LoggerAdapter):
    """Every line about a call carries the lead id and attempt number, never the number."""

    def process(self, msg: str, kwargs: Any) -> tuple[str, Any]:
        # The ids as record attributes too: the JSON log format's lead_id and attempt fields.
        kwargs["extra"] = {**kwargs.get("extra", {}), "lead_id": self.extra["lead"],
                           "attempt": self.extra["attempt"]}
        return f"[lead {self.extra['lead']} #{self.extra['attempt']}] {msg}", kwargs


@dataclass(eq=False)
class ActiveCall:
    lead: Lead
    attempt: Attempt
    widget: Widget
    flow: CallFlow
    agent_endpoints: tuple[str, ...]
    log: CallLog
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    legs: dict[str, str] = field(default_factory=dict)  # leg → channel id
    created: set[str] = field(default_factory=set)  # legs whose originate Asterisk accepted
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    bridge_id: str | None = None
    finished: bool = False
    names: dict[str, str] = field(default_factory=dict)  # leg → Asterisk channel name
    recording: ActiveRecording | None = None
    progress: str | None = None  # the lead's progress as the store has it
    # The agent endpoints this call keeps from other calls: all of the plan's at first; an
    # agent's is given back when its leg is gone or, once another answered, if never rung.
    held: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.held.update(self.agent_endpoints)

    def live_legs_on(self, channel_ids: frozenset[str]) -> frozenset[str]:
        """The legs still live whose channels are among these (a node's that went down)."""
        return frozenset(leg for leg, cid in self.legs.items()
                         if cid in channel_ids and leg in self.flow.live)


def call_ids(lead: Lead, attempt: Attempt) -> dict[str, Any]:
    return {"lead": lead.id, "attempt": attempt.number}
