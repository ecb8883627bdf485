"""The rows and the runner of the table-driven call-flow tests (tests/core/test_flow_*.py) for the
pure state machine (callengine/flow.py).

One table per state / scenario group. Every row is
    (description, plan overrides, events, expected commands, expected Result fields[, state])
and is run by `run_row`, which builds a CallPlan, feeds the events (explicit timestamps), collects
the commands and then checks, for EVERY row, the machine-wide invariants in `check_invariants`:

- the visitor Originate appears only while an agent leg has answered, is still live and (when a
  whisper is configured) has heard it — or its guard fired;
- no command after Finish, at most one Finish;
- Finish only once every originated leg is gone, unless the ending grace timer fired (then every
  leg still up was at least told to hang up);
- HangUp / Bridge only name legs the machine originated;
- every timer the machine started is cancelled or has fired by the time it finishes;
- when the plan asks agents to accept, the visitor Originate comes only after the agent on the
  line pressed the plan's digit;
- Result.retryable is False exactly when the visitor was connected (or refused the recording
  notice by hanging up);
- after DONE every further event returns [].

Expected commands are either an exact list per event (`[[...], [...], ...]`, one inner list per
event) or `Sub(...)`: an ordered subsequence of the transcript, in which events may appear as
anchors ("these commands came after this event"), plus an optional `forbid` list.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import pytest

from callengine.flow import (
    ENDING_GRACE_S,
    VISITOR,
    WHISPER_GUARD_S,
    Bridge,
    CallFlow,
    CallPlan,
    CancelTimer,
    DigitPressed,
    Finish,
    HangUp,
    IndicateRinging,
    Interrupted,
    LegAnswered,
    LegGone,
    LegRinging,
    Originate,
    Outcome,
    Play,
    PlaybackDone,
    Progress,
    Result,
    Start,
    StartTimer,
    State,
    Strategy,
    TimerFired,
)

# ---- the plan every row starts from ---------------------------------------------------------

EP = ("PJSIP/agent1", "PJSIP/agent2", "PJSIP/agent3")
VISITOR_EP = "PJSIP/+48601234567@pstn"
CID = "Shop <+48221234567>"
AGENT_TO = 20
VISITOR_TO = 30
BEEP = "sound:beep"

A0, A1, A2 = "agent:0", "agent:1", "agent:2"
V = VISITOR

EVENT_TYPES = (Start, LegRinging, LegAnswered, LegGone, PlaybackDone, DigitPressed, TimerFired,
               Interrupted)


def make_plan(**overrides: Any) -> CallPlan:
    kwargs: dict[str, Any] = dict(
        agent_endpoints=EP,
        strategy=Strategy.RING_ALL,
        agent_ring_timeout=AGENT_TO,
        visitor_endpoint=VISITOR_EP,
        visitor_ring_timeout=VISITOR_TO,
        caller_id=CID,
        whisper=BEEP,
    )
    kwargs.update(overrides)
    return CallPlan(**kwargs)


SEQ = {"strategy": Strategy.SEQUENTIAL}
NO_WHISPER = {"whisper": None}

# ---- event shorthands (timestamps always explicit) ------------------------------------------


def start(at: float) -> Start:
    return Start(at)


def ring(at: float, leg: str) -> LegRinging:
    return LegRinging(at, leg)


def ans(at: float, leg: str) -> LegAnswered:
    return LegAnswered(at, leg)


def gone(at: float, leg: str, cause: int, text: str = "", failed: bool = False) -> LegGone:
    return LegGone(at, leg, cause, text, originate_failed=failed)


def played(at: float, leg: str) -> PlaybackDone:
    return PlaybackDone(at, leg)


def press(at: float, leg: str, digit: str) -> DigitPressed:
    return DigitPressed(at, leg, digit)


def fired(at: float, name: str) -> TimerFired:
    return TimerFired(at, name)


def intr(at: float, reason: str, *legs_gone: str) -> Interrupted:
    return Interrupted(at, reason, frozenset(legs_gone))


# ---- command shorthands ---------------------------------------------------------------------


def O(i: int) -> Originate:  # noqa: E743 - reads like the table it sits in
    return Originate(f"agent:{i}", EP[i], AGENT_TO, CID)


OV = Originate(V, VISITOR_EP, VISITOR_TO, CID)
P_RINGING = Progress(State.RINGING_AGENTS)


def P_WHISPER(i: int) -> Progress:
    return Progress(State.WHISPER, agent=EP[i])


def P_DIALLING(i: int) -> Progress:
    return Progress(State.DIALLING_VISITOR, agent=EP[i])


def P_CONNECTED(i: int) -> Progress:
    return Progress(State.CONNECTED, agent=EP[i])


def whisper_cmds(i: int) -> list:
    return [Play(f"agent:{i}", BEEP), StartTimer("whisper", WHISPER_GUARD_S)]


def dial_cmds(i: int) -> list:
    return [P_DIALLING(i), IndicateRinging(f"agent:{i}", on=True), OV]


def connect_cmds(i: int) -> list:
    return [
        IndicateRinging(f"agent:{i}", on=False),
        Bridge((f"agent:{i}", V)),
        P_CONNECTED(i),
    ]


START_ENDING = StartTimer("ending", ENDING_GRACE_S)
CANCEL_ENDING = CancelTimer("ending")
CANCEL_WHISPER = CancelTimer("whisper")


class _AnyFinish:
    """Matches any Finish in an expected list; the Result is checked field by field."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Finish)

    def __repr__(self) -> str:
        return "Finish(…)"


FIN = _AnyFinish()

# ---- rows and the runner --------------------------------------------------------------------


@dataclass(frozen=True)
class Sub:
    """Expected: an ordered subsequence of the transcript (events act as anchors)."""

    items: tuple
    forbid: tuple = ()  # command instances, or command classes, that must not appear at all

    def __init__(self, *items: Any, forbid: tuple = ()) -> None:
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "forbid", forbid)


class Row(NamedTuple):
    desc: str
    plan: dict
    events: list
    expected: list | Sub
    result: dict | None  # None: the attempt must not have finished
    state: State | None = None  # the machine's state after the last event, when it matters


def _fmt(transcript: list) -> str:
    lines = []
    for ev, cmds in transcript:
        lines.append(f"  {ev!r}")
        lines.extend(f"      -> {c!r}" for c in cmds)
    return "\n".join(lines)


def check_invariants(plan: CallPlan, transcript: list) -> None:
    """Machine-wide invariants, asserted for every row of every table."""
    originated: set[str] = set()
    live: set[str] = set()
    answered_agents: set[str] = set()
    whisper_heard: set[str] = set()  # answered agents who heard the whisper (or its guard fired)
    hung_up: set[str] = set()
    timers: set[str] = set()
    accepted: set[str] = set()  # agents who pressed the plan's digit
    finished = False
    last_answered: str | None = None
    where = "\n" + _fmt(transcript)

    for ev, cmds in transcript:
        # what the event tells us about the world
        match ev:
            case LegAnswered(leg=leg) if leg in live and leg.startswith("agent:"):
                answered_agents.add(leg)
                last_answered = leg
            case LegGone(leg=leg):
                live.discard(leg)
            case Interrupted(legs_gone=legs):
                live -= set(legs)
            case PlaybackDone(leg=leg) if leg in answered_agents:
                whisper_heard.add(leg)
            case DigitPressed(leg=leg, digit=digit) if digit == plan.accept_digit:
                accepted.add(leg)
            case TimerFired(name=name):
                if name == "whisper" and last_answered is not None:
                    whisper_heard.add(last_answered)
                timers.discard(name)

        if finished:
            assert cmds == [], f"commands after Finish for {ev!r}: {cmds!r}{where}"
            continue

        for cmd in cmds:
            assert not finished, f"command {cmd!r} emitted after Finish{where}"
            match cmd:
                case Originate(leg=leg):
                    assert leg not in originated, f"{leg} originated twice{where}"
                    if leg == VISITOR:
                        on_line = [a for a in answered_agents if a in live]
                        assert on_line, (
                            f"visitor dialled with no answered agent on the line{where}"
                        )
                        if plan.whisper:
                            assert any(a in whisper_heard for a in on_line), (
                                f"visitor dialled before the agent heard the whisper{where}"
                            )
                        if plan.accept_digit is not None:
                            assert any(a in accepted for a in on_line), (
                                f"visitor dialled before the agent accepted{where}"
                            )
                    originated.add(leg)
                    live.add(leg)
                case HangUp(leg=leg):
                    assert leg in originated, f"HangUp of never-originated {leg}{where}"
                    hung_up.add(leg)
                case Bridge(legs=legs):
                    assert set(legs) <= originated, f"Bridge of unknown legs {legs}{where}"
                case StartTimer(name=name):
                    timers.add(name)
                case CancelTimer(name=name):
                    timers.discard(name)
                case Finish(result=result):
                    finished = True
                    if isinstance(ev, TimerFired) and ev.name == "ending":
                        left = live - hung_up
                        assert not left, f"finished by grace timer, {left} never hung up{where}"
                    else:
                        assert not live, f"Finish while legs {sorted(live)} still up{where}"
                    assert not timers, (
                        f"Finish with timer(s) {sorted(timers)} still running "
                        f"(started, never cancelled nor fired){where}"
                    )
                    # One exception: a visitor who hangs up on the recording notice is not
                    # called again although they never talked to anyone.
                    notice_refused = result.cause == "the visitor hung up during the recording notice"
                    assert result.retryable is (not result.connected and not notice_refused), (
                        f"retryable={result.retryable} but connected={result.connected}{where}"
                    )


def _match_sub(sub: Sub, transcript: list) -> None:
    flat: list = []
    for ev, cmds in transcript:
        flat.append(("event", ev))
        flat.extend(("cmd", c) for c in cmds)
    pos = 0
    for item in sub.items:
        kind = "event" if isinstance(item, EVENT_TYPES) else "cmd"
        while pos < len(flat) and not (flat[pos][0] == kind and flat[pos][1] == item):
            pos += 1
        assert pos < len(flat), (
            f"expected {item!r} (in this order) not found after the previous items:\n"
            f"{_fmt(transcript)}"
        )
        pos += 1
    for bad in sub.forbid:
        for _, cmds in transcript:
            for c in cmds:
                hit = isinstance(c, bad) if isinstance(bad, type) else c == bad
                assert not hit, f"forbidden command {c!r} emitted:\n{_fmt(transcript)}"


POST_DONE_EVENTS = [
    start(10_000.0),
    ring(10_000.0, A0),
    ans(10_000.0, A0),
    ans(10_000.0, A1),
    ring(10_000.0, V),
    ans(10_000.0, V),
    played(10_000.0, A0),
    gone(10_000.0, A0, 16),
    gone(10_000.0, A1, 16),
    gone(10_000.0, A2, 16),
    gone(10_000.0, V, 16),
    gone(10_000.0, V, 0, "x", failed=True),
    fired(10_000.0, "whisper"),
    fired(10_000.0, "accept:agent:0"),
    press(10_000.0, A0, "1"),
    fired(10_000.0, "ending"),
    intr(10_000.0, "shutdown"),
    intr(10_000.0, "shutdown", A0, V),
]


def run_row(row: Row) -> tuple[CallFlow, list]:
    plan = make_plan(**row.plan)
    flow = CallFlow(plan)
    transcript: list = []
    for ev in row.events:
        cmds = flow.handle(ev)
        assert isinstance(cmds, list)
        transcript.append((ev, list(cmds)))

    check_invariants(plan, transcript)

    if isinstance(row.expected, Sub):
        _match_sub(row.expected, transcript)
    else:
        assert len(row.expected) == len(row.events), "row error: one expected list per event"
        for i, ((ev, got), want) in enumerate(zip(transcript, row.expected)):
            assert got == want, (
                f"event #{i} {ev!r}:\n   got  {got!r}\n   want {want!r}\n{_fmt(transcript)}"
            )

    finishes = [c for _, cmds in transcript for c in cmds if isinstance(c, Finish)]
    if row.result is None:
        assert not finishes, f"unexpected Finish:\n{_fmt(transcript)}"
        assert not flow.done
    else:
        assert len(finishes) == 1, f"expected exactly one Finish:\n{_fmt(transcript)}"
        result = finishes[0].result
        for name, want in row.result.items():
            got = getattr(result, name)
            assert got == want, f"Result.{name}: got {got!r}, want {want!r}\n{result!r}"
        assert flow.done and flow.state is State.DONE
        # After DONE every event returns [] and the machine stays DONE.
        for ev in POST_DONE_EVENTS:
            assert flow.handle(ev) == [], f"{ev!r} after DONE produced commands"
            assert flow.state is State.DONE

    if row.state is not None:
        assert flow.state is row.state
    return flow, transcript


def table(rows: list[Row]):
    return pytest.mark.parametrize("row", rows, ids=[r.desc for r in rows])


def full_result(**kw: Any) -> dict:
    """Every Result field, defaults included: for rows that pin the whole Result."""
    base = {f.name: f.default for f in fields(Result) if f.name != "outcome"}
    base.update(kw)
    return base


# ---- shared prefixes: an agent answered and heard the whisper, the visitor is dialled -------

# agent:0 answers at 5, the others confirm gone, the whisper ends at 7: the visitor is dialled.
WHISPERED = [
    start(0.0),
    ring(1.0, A0),
    ans(5.0, A0),
    gone(5.5, A1, 16),
    gone(5.5, A2, 16),
    played(7.0, A0),
]
WHISPERED_CMDS = [
    [P_RINGING, O(0), O(1), O(2)],
    [],
    [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
    [],
    [],
    [CANCEL_WHISPER, *dial_cmds(0)],
]
ENDING_ON_VISITOR_GONE = [HangUp(A0), START_ENDING]
AGENT_CONFIRMS = gone(40.0, A0, 16, "Normal Clearing")


def visitor_ended(q850: int | None, outcome: Outcome, cause: str) -> dict:
    return full_result(
        outcome=outcome,
        cause=cause,
        q850=q850,
        agent="PJSIP/agent1",
        agent_ring_s=5.0,
        retryable=True,
    )
