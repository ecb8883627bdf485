"""The call flow's vocabulary: what callengine.flow's state machine is told and tells back.

The attempt's plan (CallPlan), the events it takes in, the commands it returns and the Result
it finishes with, its states, and the names both sides share (leg roles, Q.850 causes, the
accept digit and its prompt). Pure data, no I/O; split from callengine.flow, which holds the
transitions and re-exports every public name here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

VISITOR = "visitor"

# Q.850 causes (what ChannelDestroyed reports) that the outcome mapping needs.
CAUSE_NORMAL_CLEARING = 16
CAUSE_USER_BUSY = 17
CAUSE_NO_USER_RESPONSE = 18
CAUSE_NO_ANSWER = 19
CAUSE_CALL_REJECTED = 21

ACCEPT_DIGITS = "0123456789*#"
_DIGIT_SOUNDS = {"*": "star", "#": "pound"}


def accept_prompt(digit: str) -> str:
    """The prompt asking the agent to press `digit`: Asterisk's core sounds "press" and the
    digit ("press one"), played as one playback (ARI takes a comma-separated media list)."""
    return f"sound:vm-press,sound:digits/{_DIGIT_SOUNDS.get(digit, digit)}"


class Outcome(str, enum.Enum):
    CONNECTED = "connected"
    AGENTS_NO_ANSWER = "agents-no-answer"
    AGENTS_BUSY = "agents-busy"
    VISITOR_BUSY = "visitor-busy"
    VISITOR_NO_ANSWER = "visitor-no-answer"
    VISITOR_UNREACHABLE = "visitor-unreachable"
    FAILED = "failed"


class Strategy(str, enum.Enum):
    """ring-all rings every agent at once; the others one at a time, in the plan's order
    (callengine.ringorder puts the group's free agents in it, by strategy)."""

    RING_ALL = "ring-all"
    SEQUENTIAL = "sequential"
    ROUND_ROBIN = "round-robin"
    LEAST_RECENT = "least-recent"
    RANDOM = "random"


class State(str, enum.Enum):
    NEW = "new"
    RINGING_AGENTS = "ringing-agents"
    WHISPER = "whisper"
    ACCEPT = "accept"  # asked to press the digit; the lead's progress stays "whisper"
    DIALLING_VISITOR = "dialling-visitor"
    NOTICE = "recording-notice"
    CONNECTED = "connected"
    ENDING = "ending"
    DONE = "done"


# Every call's first state, which Start reports first: the driver writes it with the attempt.
FIRST_PROGRESS = State.RINGING_AGENTS


@dataclass(frozen=True)
class CallPlan:
    """Everything the machine needs to know about one attempt, decided before it starts."""

    agent_endpoints: tuple[str, ...]  # in the order they are tried
    strategy: Strategy
    agent_ring_timeout: int
    visitor_endpoint: str
    visitor_ring_timeout: int
    caller_id: str
    whisper: str | None = None  # Asterisk media URI played to the agent, e.g. "sound:beep"
    record: bool = False  # record the bridged call (policy and consent decided beforehand)
    recording_notice: str | None = None  # media played to the visitor before bridging
    # After the whisper the agent must press this digit within accept_timeout seconds of the
    # prompt's end, or the call goes to the next agent. None: the answer is enough.
    accept_digit: str | None = None
    accept_timeout: int = 10

    def __post_init__(self) -> None:
        if not self.agent_endpoints:
            raise ValueError("a call plan needs at least one agent")
        if self.accept_digit is not None and self.accept_digit not in ACCEPT_DIGITS:
            raise ValueError(f"the accept digit must be one of {ACCEPT_DIGITS}")


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    at: float


@dataclass(frozen=True)
class LegRinging:
    at: float
    leg: str


@dataclass(frozen=True)
class LegAnswered:
    at: float
    leg: str


@dataclass(frozen=True)
class LegGone:
    """The leg's channel is destroyed (or was never created: originate failed)."""

    at: float
    leg: str
    cause: int
    cause_text: str = ""
    originate_failed: bool = False


@dataclass(frozen=True)
class PlaybackDone:
    at: float
    leg: str
    failed: bool = False  # the media could not be played


@dataclass(frozen=True)
class DigitPressed:
    """The far end of a leg pressed a DTMF digit (reported when the key is released)."""

    at: float
    leg: str
    digit: str


@dataclass(frozen=True)
class TimerFired:
    at: float
    name: str


@dataclass(frozen=True)
class Interrupted:
    """The call can't go on for a reason outside the call (Asterisk restarted, shutdown).

    The driver says which legs are already gone; the rest are hung up."""

    at: float
    reason: str
    legs_gone: frozenset[str] = frozenset()


Event = (
    Start | LegRinging | LegAnswered | LegGone | PlaybackDone | DigitPressed | TimerFired
    | Interrupted
)


# ---- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Originate:
    leg: str
    endpoint: str
    timeout: int
    caller_id: str


@dataclass(frozen=True)
class HangUp:
    leg: str


@dataclass(frozen=True)
class Play:
    leg: str
    media: str


@dataclass(frozen=True)
class StopPlaying:
    """Stop whatever is being played to the leg (the accept prompt, once the digit came)."""

    leg: str


@dataclass(frozen=True)
class IndicateRinging:
    leg: str
    on: bool


@dataclass(frozen=True)
class Bridge:
    legs: tuple[str, ...]


@dataclass(frozen=True)
class DestroyBridge:
    pass


@dataclass(frozen=True)
class StartRecording:
    """Tap the bridged call's audio (both parties) into an encrypted recording."""

    leg: str


@dataclass(frozen=True)
class StartTimer:
    name: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    name: str


@dataclass(frozen=True)
class Progress:
    """A milestone worth persisting and showing (lead status, demo output)."""

    state: State
    agent: str | None = None


class Answer(str, enum.Enum):
    """How an agent asked to accept the call answered."""

    ACCEPTED = "accepted"
    TIMEOUT = "timeout"  # pressed nothing within the plan's accept_timeout
    WRONG_DIGIT = "wrong-digit"
    HUNG_UP = "hung-up"  # hung up while asked (during the whisper or the prompt too)


@dataclass(frozen=True)
class Acceptance:
    """One agent asked to accept the attempt's call, and their answer (kept per attempt)."""

    agent: str  # endpoint
    answer: Answer
    at: float  # seconds from the attempt's start until the answer
    digit: str | None = None  # the wrong digit pressed


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    cause: str = ""
    q850: int | None = None
    agent: str | None = None  # endpoint of the agent who answered
    agent_ring_s: float | None = None  # from start until an agent answered
    visitor_ring_s: float | None = None  # from dialling the visitor until they answered
    talk_s: float | None = None  # from bridging until the first hangup
    hung_up_by: str | None = None  # "agent" or "visitor"
    retryable: bool = False  # nobody reached the visitor yet; trying again later makes sense
    # Agents asked to accept (plan.accept_digit), in order: () when nobody was asked.
    acceptances: tuple[Acceptance, ...] = ()
    # A milestone the driver persists as it happens; kept here too for the summary.
    connected: bool = False


@dataclass(frozen=True)
class Finish:
    result: Result


Command = (
    Originate | HangUp | Play | StopPlaying | IndicateRinging | Bridge | DestroyBridge
    | StartRecording | StartTimer | CancelTimer | Progress | Finish
)


def agent_leg(index: int) -> str:
    return f"agent:{index}"


def is_agent_leg(leg: str) -> bool:
    return leg.startswith("agent:")


def visitor_outcome(cause: int, rang: bool) -> Outcome:
    """Map how the visitor's leg ended (before answering) to an outcome.

    Measured: 486 → 17; 480 → 19; ringing then timeout → 19 after Ringing; nobody there → 19
    with no Ringing, or 18 (SIP timer B). Only "did it ring" tells no-answer from unreachable."""
    if cause in (CAUSE_USER_BUSY, CAUSE_CALL_REJECTED):
        return Outcome.VISITOR_BUSY
    if cause in (CAUSE_NO_ANSWER, CAUSE_NO_USER_RESPONSE, CAUSE_NORMAL_CLEARING) and rang:
        return Outcome.VISITOR_NO_ANSWER
    return Outcome.VISITOR_UNREACHABLE
