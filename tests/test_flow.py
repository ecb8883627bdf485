"""Table-driven tests of the pure call-flow state machine (callengine/flow.py).

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
    DestroyBridge,
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
    StartRecording,
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

EVENT_TYPES = (Start, LegRinging, LegAnswered, LegGone, PlaybackDone, TimerFired, Interrupted)


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


# =============================================================================================
# Table 1 — ring-all
# =============================================================================================

RING_ALL = [
    Row(
        "all agents originated at Start",
        {},
        [start(0.0)],
        [[P_RINGING, O(0), O(1), O(2)]],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "ringing is only noted",
        {},
        [start(0.0), ring(1.0, A0), ring(1.0, A1), ring(1.5, A2)],
        [[P_RINGING, O(0), O(1), O(2)], [], [], []],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "first answer wins, the other agents are hung up",
        {},
        [start(0.0), ring(1.0, A0), ring(1.0, A1), ring(1.5, A2), ans(4.0, A1)],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [],
            [],
            [],
            [HangUp(A0), HangUp(A2), P_WHISPER(1), *whisper_cmds(1)],
        ],
        None,
        State.WHISPER,
    ),
    Row(
        "second simultaneous answer is ignored, then the winner's whisper dials the visitor",
        {},
        [
            start(0.0),
            ans(4.0, A1),
            ans(4.0, A2),
            gone(4.25, A0, 16, "Normal Clearing"),
            gone(4.25, A2, 16, "Normal Clearing"),
            played(6.0, A1),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A0), HangUp(A2), P_WHISPER(1), *whisper_cmds(1)],
            [],
            [],
            [],
            [CANCEL_WHISPER, *dial_cmds(1)],
        ],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "all busy (17) -> agents-busy",
        {},
        [
            start(0.0),
            gone(0.5, A0, 17, "User busy"),
            gone(0.75, A1, 17, "User busy"),
            gone(1.0, A2, 17, "User busy"),
        ],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [FIN]],
        full_result(
            outcome=Outcome.AGENTS_BUSY, cause="User busy", q850=17, retryable=True
        ),
    ),
    Row(
        "mixed busy / no-answer (19) -> agents-no-answer",
        {},
        [
            start(0.0),
            gone(0.5, A0, 17, "User busy"),
            gone(20.0, A1, 19, "No answer"),
            gone(20.0, A2, 19, "No answer"),
        ],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [FIN]],
        full_result(
            outcome=Outcome.AGENTS_NO_ANSWER, cause="no agent answered", q850=19, retryable=True
        ),
    ),
    Row(
        "all no-answer (19) -> agents-no-answer",
        {},
        [start(0.0), gone(20.0, A0, 19), gone(20.0, A1, 19), gone(20.0, A2, 19)],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [FIN]],
        {"outcome": Outcome.AGENTS_NO_ANSWER, "q850": 19, "retryable": True, "agent": None},
    ),
    Row(
        "all originate failures -> failed",
        {},
        [
            start(0.0),
            gone(0.0, A0, 0, "Allocation failed", failed=True),
            gone(0.0, A1, 0, "Allocation failed", failed=True),
            gone(0.0, A2, 0, "Allocation failed", failed=True),
        ],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [FIN]],
        full_result(
            outcome=Outcome.FAILED,
            cause="no agent could be called (originate failed)",
            retryable=True,
        ),
    ),
    Row(
        "originate failures don't count: the rest busy -> agents-busy",
        {},
        [
            start(0.0),
            gone(0.0, A0, 0, "Allocation failed", failed=True),
            gone(1.0, A1, 17, "User busy"),
            gone(1.0, A2, 17, "User busy"),
        ],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [FIN]],
        {"outcome": Outcome.AGENTS_BUSY, "q850": 17, "retryable": True},
    ),
    Row(
        "one agent answers after the others are gone: nobody left to hang up",
        {},
        [
            start(0.0),
            gone(3.0, A0, 17, "User busy"),
            gone(20.0, A1, 19, "No answer"),
            ans(19.5, A2),
            played(21.5, A2),
            ring(22.0, V),
            ans(30.0, V),
            gone(90.0, V, 16, "Normal Clearing"),
            gone(90.25, A2, 16, "Normal Clearing"),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [],
            [],
            [P_WHISPER(2), *whisper_cmds(2)],
            [CANCEL_WHISPER, *dial_cmds(2)],
            [],
            connect_cmds(2),
            [HangUp(A2), DestroyBridge(), START_ENDING],
            [CANCEL_ENDING, FIN],
        ],
        full_result(
            outcome=Outcome.CONNECTED,
            cause="Normal Clearing",
            q850=16,
            agent="PJSIP/agent3",
            agent_ring_s=19.5,
            visitor_ring_s=8.5,
            talk_s=60.0,
            hung_up_by="visitor",
            retryable=False,
            connected=True,
        ),
    ),
    Row(
        "a late answer from an agent already gone is ignored",
        {},
        [start(0.0), gone(3.0, A0, 17), ans(3.5, A0)],
        [[P_RINGING, O(0), O(1), O(2)], [], []],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "visitor and whisper events while agents ring are ignored",
        {},
        [start(0.0), played(1.0, A0), fired(2.0, "whisper"), ans(3.0, V), ring(3.0, V)],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [], []],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "a second report of the same hangup neither counts nor ends early",
        {},
        [start(0.0), gone(1.0, A0, 17), gone(1.0, A0, 17), gone(2.0, A1, 17), ans(3.0, A2)],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [],
            [],
            [],
            [P_WHISPER(2), *whisper_cmds(2)],
        ],
        None,
        State.WHISPER,
    ),
    Row(
        "a second Start is ignored",
        {},
        [start(0.0), start(1.0)],
        [[P_RINGING, O(0), O(1), O(2)], []],
        None,
        State.RINGING_AGENTS,
    ),
]


@table(RING_ALL)
def test_ring_all(row: Row) -> None:
    run_row(row)


# =============================================================================================
# Table 2 — sequential
# =============================================================================================

SEQUENTIAL = [
    Row(
        "only the first agent is originated at Start",
        SEQ,
        [start(0.0)],
        [[P_RINGING, O(0)]],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "ringing does not move on to the next agent",
        SEQ,
        [start(0.0), ring(1.0, A0), ring(5.0, A0)],
        [[P_RINGING, O(0)], [], []],
        None,
    ),
    Row(
        "next agent only after the previous is gone; all exhausted -> agents-no-answer",
        SEQ,
        [
            start(0.0),
            ring(1.0, A0),
            gone(20.0, A0, 19, "No answer"),
            ring(21.0, A1),
            gone(41.0, A1, 19, "No answer"),
            gone(41.5, A2, 17, "User busy"),
        ],
        [[P_RINGING, O(0)], [], [O(1)], [], [O(2)], [FIN]],
        full_result(
            outcome=Outcome.AGENTS_NO_ANSWER,
            cause="no agent answered",
            q850=17,  # the last cause heard
            retryable=True,
        ),
    ),
    Row(
        "all busy -> agents-busy",
        SEQ,
        [start(0.0), gone(1.0, A0, 17), gone(2.0, A1, 17), gone(3.0, A2, 17)],
        [[P_RINGING, O(0)], [O(1)], [O(2)], [FIN]],
        full_result(outcome=Outcome.AGENTS_BUSY, cause="User busy", q850=17, retryable=True),
    ),
    Row(
        "an originate failure moves on to the next agent",
        SEQ,
        [start(0.0), gone(0.0, A0, 0, "Allocation failed", failed=True)],
        [[P_RINGING, O(0)], [O(1)]],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "all originate failures -> failed",
        SEQ,
        [
            start(0.0),
            gone(0.0, A0, 0, failed=True),
            gone(0.0, A1, 0, failed=True),
            gone(0.0, A2, 0, failed=True),
        ],
        [[P_RINGING, O(0)], [O(1)], [O(2)], [FIN]],
        {
            "outcome": Outcome.FAILED,
            "cause": "no agent could be called (originate failed)",
            "q850": None,
            "retryable": True,
        },
    ),
    Row(
        "answer by the second agent: nobody to hang up, whisper, visitor, connected",
        SEQ,
        [
            start(0.0),
            gone(20.0, A0, 19, "No answer"),
            ring(20.5, A1),
            ans(25.0, A1),
            played(27.0, A1),
            ring(28.0, V),
            ans(33.5, V),
            gone(93.5, A1, 16, "Normal Clearing"),
            gone(93.75, V, 16, "Normal Clearing"),
        ],
        [
            [P_RINGING, O(0)],
            [O(1)],
            [],
            [P_WHISPER(1), *whisper_cmds(1)],
            [CANCEL_WHISPER, *dial_cmds(1)],
            [],
            connect_cmds(1),
            [HangUp(V), DestroyBridge(), START_ENDING],
            [CANCEL_ENDING, FIN],
        ],
        full_result(
            outcome=Outcome.CONNECTED,
            cause="Normal Clearing",
            q850=16,
            agent="PJSIP/agent2",
            agent_ring_s=25.0,
            visitor_ring_s=6.5,
            talk_s=60.0,
            hung_up_by="agent",
            retryable=False,
            connected=True,
        ),
    ),
    Row(
        "originate failure reported twice rings the next agent only once",
        SEQ,
        [
            start(0.0),
            gone(0.0, A0, 0, "Allocation failed", failed=True),
            gone(0.0, A0, 0, "Allocation failed"),
            gone(0.5, "agent:7", 16),
        ],
        [[P_RINGING, O(0)], [O(1)], [], []],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "a single-agent plan: gone -> outcome at once",
        {**SEQ, "agent_endpoints": ("PJSIP/agent1",)},
        [start(0.0), gone(20.0, A0, 19)],
        [[P_RINGING, O(0)], [FIN]],
        {"outcome": Outcome.AGENTS_NO_ANSWER, "q850": 19},
    ),
]


@table(SEQUENTIAL)
def test_sequential(row: Row) -> None:
    run_row(row)


# =============================================================================================
# Table 3 — whisper
# =============================================================================================

WHISPER = [
    Row(
        "Play to the agent, then dial only after PlaybackDone",
        {},
        [
            start(0.0),
            ans(5.0, A0),
            gone(5.5, A1, 16),
            gone(5.5, A2, 16),
            ring(6.0, A0),
            played(8.0, A0),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
            [],
            [],
            [],
            [CANCEL_WHISPER, *dial_cmds(0)],
        ],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "a PlaybackDone from another leg does not dial the visitor",
        {},
        [start(0.0), ans(5.0, A0), played(6.0, A1), played(6.0, V)],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
            [],
            [],
        ],
        None,
        State.WHISPER,
    ),
    Row(
        "whisper guard timer fires -> visitor dialled; a late PlaybackDone is ignored",
        {},
        [
            start(0.0),
            ans(5.0, A0),
            gone(5.5, A1, 16),
            gone(5.5, A2, 16),
            fired(65.0, "whisper"),
            played(66.0, A0),
            fired(67.0, "whisper"),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
            [],
            [],
            dial_cmds(0),
            [],
            [],
        ],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "whisper guard path: visitor_ring_s counts from the guard firing",
        {},
        [
            start(0.0),
            ans(5.0, A0),
            gone(5.5, A1, 16),
            gone(5.5, A2, 16),
            fired(65.0, "whisper"),
            ans(72.5, V),
            gone(80.0, A0, 16, "Normal Clearing"),
            gone(80.5, V, 16, "Normal Clearing"),
        ],
        Sub(
            fired(65.0, "whisper"),
            OV,
            ans(72.5, V),
            Bridge((A0, V)),
            gone(80.5, V, 16, "Normal Clearing"),
            FIN,
        ),
        {
            "outcome": Outcome.CONNECTED,
            "agent_ring_s": 5.0,
            "visitor_ring_s": 7.5,
            "talk_s": 7.5,
            "hung_up_by": "agent",
        },
    ),
    Row(
        "agent hangs up during the whisper -> failed, others still up get hung up",
        {},
        [
            start(0.0),
            ans(5.0, A0),
            gone(6.0, A0, 16, "Normal Clearing"),
            played(6.0, A0),
            fired(65.0, "whisper"),
            gone(6.5, A1, 16),
            gone(6.75, A2, 16),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
            [CANCEL_WHISPER, HangUp(A1), HangUp(A2), START_ENDING],
            [],
            [],
            [],
            [CANCEL_ENDING, FIN],
        ],
        full_result(
            outcome=Outcome.FAILED,
            cause="the agent hung up before the call was bridged",
            q850=16,
            agent="PJSIP/agent1",
            agent_ring_s=5.0,
            retryable=True,
        ),
    ),
    Row(
        "agent hangs up during the whisper, the others already gone -> Finish at once",
        {},
        [
            start(0.0),
            ans(5.0, A0),
            gone(5.5, A1, 16),
            gone(5.5, A2, 16),
            gone(6.0, A0, 16, "Normal Clearing"),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
            [],
            [],
            [CANCEL_WHISPER, FIN],
        ],
        {"outcome": Outcome.FAILED, "q850": 16, "agent": "PJSIP/agent1", "retryable": True},
    ),
    Row(
        "no whisper configured -> visitor dialled right away on answer",
        NO_WHISPER,
        [start(0.0), ans(5.0, A0)],
        Sub(
            ans(5.0, A0),
            HangUp(A1),
            HangUp(A2),
            P_DIALLING(0),
            IndicateRinging(A0, on=True),
            OV,
            forbid=(Play, StartTimer("whisper", WHISPER_GUARD_S)),
        ),
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "no whisper configured, sequential: the second agent answers -> visitor dialled",
        {**NO_WHISPER, **SEQ},
        [start(0.0), gone(20.0, A0, 19), ans(23.0, A1)],
        Sub(ans(23.0, A1), P_DIALLING(1), IndicateRinging(A1, on=True), OV, forbid=(Play, HangUp)),
        None,
        State.DIALLING_VISITOR,
    ),
]


@table(WHISPER)
def test_whisper(row: Row) -> None:
    run_row(row)


# =============================================================================================
# Table 4 — dialling the visitor
# =============================================================================================

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


VISITOR_TABLE = [
    Row(
        "visitor answers -> IndicateRinging off, Bridge, Progress connected",
        {},
        [*WHISPERED, ring(8.0, V), ans(12.0, V)],
        [*WHISPERED_CMDS, [], connect_cmds(0)],
        None,
        State.CONNECTED,
    ),
    Row(
        "busy 17 -> visitor-busy",
        {},
        [*WHISPERED, gone(9.0, V, 17, "User busy"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(17, Outcome.VISITOR_BUSY, "User busy"),
    ),
    Row(
        "busy 17 after ringing -> visitor-busy",
        {},
        [*WHISPERED, ring(8.0, V), gone(15.0, V, 17, "User busy"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, [], ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(17, Outcome.VISITOR_BUSY, "User busy"),
    ),
    Row(
        "rejected 21 -> visitor-busy",
        {},
        [*WHISPERED, gone(9.0, V, 21, "Call Rejected"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(21, Outcome.VISITOR_BUSY, "Call Rejected"),
    ),
    Row(
        "19 after LegRinging -> visitor-no-answer",
        {},
        [*WHISPERED, ring(8.0, V), gone(37.0, V, 19, "No answer"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, [], ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(19, Outcome.VISITOR_NO_ANSWER, "No answer"),
    ),
    Row(
        "19 without ringing -> visitor-unreachable",
        {},
        [*WHISPERED, gone(37.0, V, 19, "No answer"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(19, Outcome.VISITOR_UNREACHABLE, "No answer"),
    ),
    Row(
        "18 without ringing (timer B) -> visitor-unreachable",
        {},
        [*WHISPERED, gone(39.0, V, 18, "No user responding"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(18, Outcome.VISITOR_UNREACHABLE, "No user responding"),
    ),
    Row(
        "18 after LegRinging -> visitor-no-answer",
        {},
        [*WHISPERED, ring(8.0, V), gone(39.0, V, 18, "No user responding"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, [], ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(18, Outcome.VISITOR_NO_ANSWER, "No user responding"),
    ),
    Row(
        "34 -> visitor-unreachable",
        {},
        [*WHISPERED, gone(7.5, V, 34, "Circuit/channel congestion"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(34, Outcome.VISITOR_UNREACHABLE, "Circuit/channel congestion"),
    ),
    Row(
        "34 even after ringing -> visitor-unreachable",
        {},
        [*WHISPERED, ring(8.0, V), gone(9.0, V, 34, "Circuit/channel congestion"), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, [], ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(34, Outcome.VISITOR_UNREACHABLE, "Circuit/channel congestion"),
    ),
    Row(
        "visitor originate failed -> failed",
        {},
        [*WHISPERED, gone(7.0, V, 0, "Allocation failed", failed=True), AGENT_CONFIRMS],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(None, Outcome.FAILED, "dialling the visitor failed: Allocation failed"),
    ),
    Row(
        "agent hangs up while the visitor rings -> HangUp(visitor), failed",
        {},
        [
            *WHISPERED,
            ring(8.0, V),
            gone(12.0, A0, 16, "Normal Clearing"),
            ans(12.5, V),
            gone(13.0, V, 16, "Normal Clearing"),
        ],
        [*WHISPERED_CMDS, [], [HangUp(V), START_ENDING], [], [CANCEL_ENDING, FIN]],
        visitor_ended(
            16, Outcome.FAILED, "the agent hung up before the call was bridged"
        ),
    ),
    Row(
        "agent answer / whisper events while the visitor rings are ignored",
        {},
        [*WHISPERED, ans(8.0, A1), played(8.0, A0), fired(9.0, "whisper"), ring(9.0, A0)],
        [*WHISPERED_CMDS, [], [], [], []],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "visitor gone, the agent never confirms -> ending grace timer finishes it",
        {},
        [*WHISPERED, gone(9.0, V, 17, "User busy"), fired(19.0, "ending")],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [FIN]],
        visitor_ended(17, Outcome.VISITOR_BUSY, "User busy"),
    ),
]


@table(VISITOR_TABLE)
def test_visitor(row: Row) -> None:
    run_row(row)


# =============================================================================================
# Table 5 — connected
# =============================================================================================

# start 100; agent:0 answers at 106.5 (agent_ring_s 6.5); whisper ends at 109 (visitor dialled);
# visitor rings at 110, answers at 121.25 (visitor_ring_s 12.25).
CONNECTED_PREFIX = [
    start(100.0),
    ring(101.0, A0),
    ring(101.0, A1),
    ans(106.5, A0),
    gone(107.0, A1, 16),
    gone(107.0, A2, 16),
    played(109.0, A0),
    ring(110.0, V),
    ans(121.25, V),
]
CONNECTED_CMDS = [
    [P_RINGING, O(0), O(1), O(2)],
    [],
    [],
    [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
    [],
    [],
    [CANCEL_WHISPER, *dial_cmds(0)],
    [],
    connect_cmds(0),
]


def talked(talk_s: float, hung_up_by: str, q850: int = 16, cause: str = "Normal Clearing"):
    return full_result(
        outcome=Outcome.CONNECTED,
        cause=cause,
        q850=q850,
        agent="PJSIP/agent1",
        agent_ring_s=6.5,
        visitor_ring_s=12.25,
        talk_s=talk_s,
        hung_up_by=hung_up_by,
        retryable=False,
        connected=True,
    )


CONNECTED = [
    Row(
        "visitor hangs up -> HangUp(agent), DestroyBridge; Finish only on the agent's LegGone",
        {},
        [
            *CONNECTED_PREFIX,
            gone(221.75, V, 16, "Normal Clearing"),
            ring(221.8, A0),
            played(221.9, A0),
            gone(222.0, A0, 16, "Normal Clearing"),
        ],
        [
            *CONNECTED_CMDS,
            [HangUp(A0), DestroyBridge(), START_ENDING],
            [],
            [],
            [CANCEL_ENDING, FIN],
        ],
        talked(100.5, "visitor"),
    ),
    Row(
        "agent hangs up first -> HangUp(visitor), DestroyBridge, Finish on the visitor's LegGone",
        {},
        [*CONNECTED_PREFIX, gone(150.0, A0, 16, "Normal Clearing"), gone(150.5, V, 16)],
        [*CONNECTED_CMDS, [HangUp(V), DestroyBridge(), START_ENDING], [CANCEL_ENDING, FIN]],
        talked(28.75, "agent"),
    ),
    Row(
        "a repeated LegGone of the visitor does not finish: the agent's is still awaited",
        {},
        [*CONNECTED_PREFIX, gone(131.25, V, 16), gone(131.25, V, 16), gone(131.5, A0, 16)],
        [*CONNECTED_CMDS, [HangUp(A0), DestroyBridge(), START_ENDING], [], [CANCEL_ENDING, FIN]],
        talked(10.0, "visitor", cause=""),
    ),
    Row(
        "the hangup cause is the first leg's",
        {},
        [*CONNECTED_PREFIX, gone(131.25, V, 127, "Interworking, unspecified"), gone(132.0, A0, 16)],
        [*CONNECTED_CMDS, [HangUp(A0), DestroyBridge(), START_ENDING], [CANCEL_ENDING, FIN]],
        talked(10.0, "visitor", q850=127, cause="Interworking, unspecified"),
    ),
    Row(
        "ending grace timer fires without confirmation -> Finish anyway",
        {},
        [*CONNECTED_PREFIX, gone(221.75, V, 16, "Normal Clearing"), fired(231.75, "ending")],
        [*CONNECTED_CMDS, [HangUp(A0), DestroyBridge(), START_ENDING], [FIN]],
        talked(100.5, "visitor"),
    ),
    Row(
        "a losing agent's late LegGone while connected changes nothing",
        {},
        [
            start(100.0),
            ans(106.5, A0),
            played(109.0, A0),
            ans(121.25, V),
            gone(122.0, A1, 16),
            gone(122.0, A2, 16),
            ans(123.0, A1),
            played(124.0, A0),
            fired(125.0, "whisper"),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
            [CANCEL_WHISPER, *dial_cmds(0)],
            connect_cmds(0),
            [],
            [],
            [],
            [],
            [],
        ],
        None,
        State.CONNECTED,
    ),
    Row(
        "losing agents still unconfirmed when the call ends are hung up again and awaited",
        {},
        [
            start(100.0),
            ans(106.5, A0),
            played(109.0, A0),
            ans(121.25, V),
            gone(131.25, V, 16, "Normal Clearing"),
            gone(131.5, A0, 16),
            gone(131.75, A1, 16),
            gone(132.0, A2, 16),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [HangUp(A1), HangUp(A2), P_WHISPER(0), *whisper_cmds(0)],
            [CANCEL_WHISPER, *dial_cmds(0)],
            connect_cmds(0),
            [HangUp(A0), HangUp(A1), HangUp(A2), DestroyBridge(), START_ENDING],
            [],
            [],
            [CANCEL_ENDING, FIN],
        ],
        {
            "outcome": Outcome.CONNECTED,
            "agent_ring_s": 6.5,
            "visitor_ring_s": 12.25,
            "talk_s": 10.0,
            "hung_up_by": "visitor",
            "retryable": False,
        },
    ),
    Row(
        "no whisper: visitor_ring_s counts from the agent's answer",
        NO_WHISPER,
        [
            start(100.0),
            ans(106.5, A0),
            gone(107.0, A1, 16),
            gone(107.0, A2, 16),
            ans(118.75, V),
            gone(178.75, V, 16, "Normal Clearing"),
            gone(179.0, A0, 16),
        ],
        Sub(ans(118.75, V), Bridge((A0, V)), gone(179.0, A0, 16), CANCEL_ENDING, FIN),
        full_result(
            outcome=Outcome.CONNECTED,
            cause="Normal Clearing",
            q850=16,
            agent="PJSIP/agent1",
            agent_ring_s=6.5,
            visitor_ring_s=12.25,
            talk_s=60.0,
            hung_up_by="visitor",
            retryable=False,
            connected=True,
        ),
    ),
]


@table(CONNECTED)
def test_connected(row: Row) -> None:
    run_row(row)


# =============================================================================================
# Table 6 — Interrupted
# =============================================================================================

INTERRUPTED = [
    Row(
        "during ringing: hang up every agent, failed and retryable",
        {},
        [
            start(0.0),
            ring(1.0, A0),
            intr(3.0, "asterisk restarted"),
            gone(3.25, A0, 16),
            gone(3.25, A1, 16),
            gone(3.5, A2, 16),
        ],
        [
            [P_RINGING, O(0), O(1), O(2)],
            [],
            [HangUp(A0), HangUp(A1), HangUp(A2), START_ENDING],
            [],
            [],
            [CANCEL_ENDING, FIN],
        ],
        full_result(
            outcome=Outcome.FAILED, cause="interrupted: asterisk restarted", retryable=True
        ),
    ),
    Row(
        "during ringing, every leg already gone -> Finish at once",
        {},
        [start(0.0), intr(3.0, "asterisk restarted", A0, A1, A2)],
        [[P_RINGING, O(0), O(1), O(2)], [FIN]],
        full_result(
            outcome=Outcome.FAILED, cause="interrupted: asterisk restarted", retryable=True
        ),
    ),
    Row(
        "during ringing, some legs gone -> only the rest are hung up",
        {},
        [start(0.0), intr(3.0, "shutdown", A0, A1), gone(3.5, A2, 16)],
        [[P_RINGING, O(0), O(1), O(2)], [HangUp(A2), START_ENDING], [CANCEL_ENDING, FIN]],
        {"outcome": Outcome.FAILED, "cause": "interrupted: shutdown", "retryable": True},
    ),
    Row(
        "sequential: an interrupted attempt rings no further agent",
        SEQ,
        [
            start(0.0),
            gone(20.0, A0, 19),
            intr(25.0, "shutdown"),
            gone(25.5, A1, 16),
        ],
        [[P_RINGING, O(0)], [O(1)], [HangUp(A1), START_ENDING], [CANCEL_ENDING, FIN]],
        {"outcome": Outcome.FAILED, "cause": "interrupted: shutdown", "retryable": True},
    ),
    Row(
        "before Start -> Finish at once, nothing originated",
        {},
        [intr(0.0, "shutdown"), start(1.0)],
        [[FIN], []],
        {"outcome": Outcome.FAILED, "cause": "interrupted: shutdown", "retryable": True},
    ),
    Row(
        "during the whisper: hang the agent up, never dial the visitor",
        {},
        [
            *WHISPERED[:5],  # answered at 5, losers gone, whisper still playing
            intr(6.0, "shutdown"),
            played(6.5, A0),
            gone(6.5, A0, 16),
        ],
        Sub(
            intr(6.0, "shutdown"),
            HangUp(A0),
            START_ENDING,
            gone(6.5, A0, 16),
            CANCEL_ENDING,
            FIN,
            forbid=(OV,),
        ),
        {
            "outcome": Outcome.FAILED,
            "cause": "interrupted: shutdown",
            "agent": "PJSIP/agent1",
            "agent_ring_s": 5.0,
            "retryable": True,
        },
    ),
    Row(
        "during the whisper, every leg already gone -> Finish at once",
        {},
        [*WHISPERED[:5], intr(6.0, "asterisk restarted", A0)],
        Sub(intr(6.0, "asterisk restarted", A0), FIN, forbid=(OV,)),
        {"outcome": Outcome.FAILED, "cause": "interrupted: asterisk restarted"},
    ),
    Row(
        "while the visitor rings: hang up both, failed and retryable",
        {},
        [*WHISPERED, ring(8.0, V), intr(10.0, "shutdown"), gone(10.5, V, 16), gone(10.5, A0, 16)],
        [
            *WHISPERED_CMDS,
            [],
            [HangUp(A0), HangUp(V), START_ENDING],
            [],
            [CANCEL_ENDING, FIN],
        ],
        full_result(
            outcome=Outcome.FAILED,
            cause="interrupted: shutdown",
            agent="PJSIP/agent1",
            agent_ring_s=5.0,
            retryable=True,
        ),
    ),
    Row(
        "during connected: hang up both, DestroyBridge, not retryable, talk_s so far",
        {},
        [*CONNECTED_PREFIX, intr(130.0, "shutdown"), gone(130.5, A0, 16), gone(130.5, V, 16)],
        [
            *CONNECTED_CMDS,
            [HangUp(A0), HangUp(V), DestroyBridge(), START_ENDING],
            [],
            [CANCEL_ENDING, FIN],
        ],
        full_result(
            outcome=Outcome.FAILED,
            cause="interrupted: shutdown",
            agent="PJSIP/agent1",
            agent_ring_s=6.5,
            visitor_ring_s=12.25,
            talk_s=8.75,
            retryable=False,
            connected=True,
        ),
    ),
    Row(
        "during connected, both legs already gone -> DestroyBridge and Finish at once",
        {},
        [*CONNECTED_PREFIX, intr(130.0, "asterisk restarted", A0, V)],
        [*CONNECTED_CMDS, [DestroyBridge(), FIN]],
        {
            "outcome": Outcome.FAILED,
            "cause": "interrupted: asterisk restarted",
            "talk_s": 8.75,
            "retryable": False,
            "connected": True,
        },
    ),
    Row(
        "during connected, the visitor already gone -> only the agent is hung up",
        {},
        [*CONNECTED_PREFIX, intr(130.0, "shutdown", V), gone(130.5, A0, 16)],
        [*CONNECTED_CMDS, [HangUp(A0), DestroyBridge(), START_ENDING], [CANCEL_ENDING, FIN]],
        {"outcome": Outcome.FAILED, "talk_s": 8.75, "retryable": False, "connected": True},
    ),
    Row(
        "while ending: the decided Result stands; legs_gone can complete it",
        {},
        [*WHISPERED, gone(9.0, V, 17, "User busy"), intr(9.5, "shutdown", A0)],
        [*WHISPERED_CMDS, ENDING_ON_VISITOR_GONE, [CANCEL_ENDING, FIN]],
        visitor_ended(17, Outcome.VISITOR_BUSY, "User busy"),
    ),
    Row(
        "while ending, legs still up: nothing new; the grace timer finishes",
        {},
        [*CONNECTED_PREFIX, gone(131.25, V, 16, "Normal Clearing"), intr(132.0, "shutdown"),
         fired(141.25, "ending")],
        [*CONNECTED_CMDS, [HangUp(A0), DestroyBridge(), START_ENDING], [], [FIN]],
        talked(10.0, "visitor"),
    ),
]


@table(INTERRUPTED)
def test_interrupted(row: Row) -> None:
    run_row(row)


# =============================================================================================
# Table 7 — retryable: false exactly once the visitor was connected
# =============================================================================================

RETRYABLE = [
    Row(
        "agents busy: retryable",
        {},
        [start(0.0), gone(1.0, A0, 17), gone(1.0, A1, 17), gone(1.0, A2, 17)],
        Sub(FIN),
        {"retryable": True, "connected": False},
    ),
    Row(
        "visitor no-answer: retryable",
        {},
        [*WHISPERED, ring(8.0, V), gone(37.0, V, 19), AGENT_CONFIRMS],
        Sub(FIN),
        {"retryable": True, "connected": False},
    ),
    Row(
        "agent left during visitor ringing: retryable",
        {},
        [*WHISPERED, gone(12.0, A0, 16), gone(12.5, V, 16)],
        Sub(FIN),
        {"retryable": True, "connected": False},
    ),
    Row(
        "connected, normal hangup: not retryable",
        {},
        [*CONNECTED_PREFIX, gone(122.0, V, 16), gone(122.0, A0, 16)],
        Sub(FIN),
        {"outcome": Outcome.CONNECTED, "retryable": False, "connected": True},
    ),
    Row(
        "connected then interrupted: failed yet not retryable",
        {},
        [*CONNECTED_PREFIX, intr(122.0, "shutdown", A0, V)],
        Sub(FIN),
        {"outcome": Outcome.FAILED, "retryable": False, "connected": True},
    ),
    Row(
        "connected, grace timer: not retryable",
        {},
        [*CONNECTED_PREFIX, gone(122.0, A0, 16), fired(132.0, "ending")],
        Sub(FIN),
        {"outcome": Outcome.CONNECTED, "retryable": False, "connected": True},
    ),
]


@table(RETRYABLE)
def test_retryable(row: Row) -> None:
    run_row(row)


# =============================================================================================
# Cross-table checks
# =============================================================================================

# =============================================================================================
# Table 8 — after DONE every event returns []
# (run_row also feeds POST_DONE_EVENTS to every finished row of every table)
# =============================================================================================

LATE = [
    start(500.0),
    ring(500.0, A0),
    ans(500.0, A0),
    ans(500.0, V),
    played(500.0, A0),
    gone(500.0, A0, 16),
    gone(500.0, V, 16),
    fired(500.0, "whisper"),
    fired(500.0, "ending"),
    intr(500.0, "shutdown"),
]

AFTER_DONE = [
    Row(
        "done by the agents' outcome",
        {},
        [start(0.0), gone(1.0, A0, 17), gone(1.0, A1, 17), gone(1.0, A2, 17), *LATE],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [FIN], *[[] for _ in LATE]],
        {"outcome": Outcome.AGENTS_BUSY},
    ),
    Row(
        "done by the grace timer: the late LegGone of the unconfirmed leg is ignored",
        {},
        [*CONNECTED_PREFIX, gone(130.0, V, 16), fired(140.0, "ending"), gone(141.0, A0, 16),
         *LATE],
        [*CONNECTED_CMDS, [HangUp(A0), DestroyBridge(), START_ENDING], [FIN], [],
         *[[] for _ in LATE]],
        {"outcome": Outcome.CONNECTED, "hung_up_by": "visitor"},
    ),
    Row(
        "done by Interrupted with every leg gone",
        SEQ,
        [start(0.0), intr(1.0, "shutdown", A0), *LATE],
        [[P_RINGING, O(0)], [FIN], *[[] for _ in LATE]],
        {"outcome": Outcome.FAILED, "cause": "interrupted: shutdown"},
    ),
    Row(
        "done after a normal connected call",
        NO_WHISPER,
        [start(0.0), ans(2.0, A0), gone(2.5, A1, 16), gone(2.5, A2, 16), ans(9.0, V),
         gone(20.0, A0, 16), gone(20.5, V, 16), *LATE],
        Sub(gone(20.5, V, 16), FIN),  # run_row's invariants: nothing at all after Finish
        {"outcome": Outcome.CONNECTED, "talk_s": 11.0, "hung_up_by": "agent"},
    ),
]


@table(AFTER_DONE)
def test_after_done(row: Row) -> None:
    run_row(row)


def test_invariant_check_is_not_vacuous() -> None:
    """The runner's visitor invariant rejects a transcript that dials the visitor too early."""
    plan = make_plan()
    early = [
        (start(0.0), [P_RINGING, O(0), O(1), O(2)]),
        (ring(1.0, A0), [OV]),  # no agent answered yet
    ]
    with pytest.raises(AssertionError, match="no answered agent"):
        check_invariants(plan, early)
    unheard = [
        (start(0.0), [P_RINGING, O(0), O(1), O(2)]),
        (ans(2.0, A0), [HangUp(A1), HangUp(A2), OV]),  # whisper configured, not heard
    ]
    with pytest.raises(AssertionError, match="whisper"):
        check_invariants(plan, unheard)
    agent_gone = [
        (start(0.0), [P_RINGING, O(0), O(1), O(2)]),
        (ans(2.0, A0), [HangUp(A1), HangUp(A2)]),
        (played(3.0, A0), []),
        (gone(3.5, A0, 16), [OV]),  # the agent is gone
    ]
    with pytest.raises(AssertionError, match="no answered agent"):
        check_invariants(plan, agent_gone)


def test_plan_needs_an_agent() -> None:
    with pytest.raises(ValueError):
        make_plan(agent_endpoints=())


# ---- recording: the notice, then the bridge and the tap ------------------------------------

NOTICE = "sound:/var/lib/callengine-asterisk/prompts/recording-notice"
RECORD = {"record": True, "recording_notice": NOTICE, "whisper": None}
TO_VISITOR_ANSWER = [start(0), ans(1, A0), gone(1.1, A1, 16), gone(1.1, A2, 16), ans(3, V)]

RECORDING = [
    Row("recorded call: notice to the visitor first, then bridge and tap", RECORD,
        [*TO_VISITOR_ANSWER, played(6, V), gone(16, V, 16), gone(16.1, A0, 16)],
        Sub(ans(3, V), Progress(State.NOTICE, agent="PJSIP/agent1"), Play(V, NOTICE),
            StartTimer("notice", 60.0), played(6, V), CancelTimer("notice"),
            IndicateRinging(A0, on=False), Bridge((A0, V)), StartRecording(V),
            Progress(State.CONNECTED, agent="PJSIP/agent1"), forbid=[]),
        {"outcome": Outcome.CONNECTED, "talk_s": 10, "visitor_ring_s": 2, "retryable": False}),
    Row("no recording: no notice, no tap", {"whisper": None},
        [*TO_VISITOR_ANSWER, gone(8, V, 16), gone(8.1, A0, 16)],
        Sub(ans(3, V), Bridge((A0, V)), forbid=[StartRecording(V), Play(V, NOTICE)]),
        {"outcome": Outcome.CONNECTED, "talk_s": 5}),
    Row("the notice could not be played: bridged, never recorded", RECORD,
        [*TO_VISITOR_ANSWER, PlaybackDone(4, V, failed=True), gone(9, V, 16), gone(9, A0, 16)],
        Sub(Bridge((A0, V)), forbid=[StartRecording(V)]),
        {"outcome": Outcome.CONNECTED, "talk_s": 5}),
    Row("the notice guard fires: bridged, never recorded", RECORD,
        [*TO_VISITOR_ANSWER, fired(63, "notice"), gone(70, V, 16), gone(70, A0, 16)],
        Sub(Bridge((A0, V)), forbid=[StartRecording(V)]),
        {"outcome": Outcome.CONNECTED, "talk_s": 7}),
    Row("the visitor hangs up on the notice: failed, not retried", RECORD,
        [*TO_VISITOR_ANSWER, gone(4, V, 16), gone(4.1, A0, 16)],
        Sub(gone(4, V, 16), CancelTimer("notice"), HangUp(A0),
            forbid=[Bridge((A0, V)), StartRecording(V)]),
        {"outcome": Outcome.FAILED, "retryable": False, "connected": False,
         "cause": "the visitor hung up during the recording notice"}),
    Row("the agent hangs up during the notice: failed, retryable", RECORD,
        [*TO_VISITOR_ANSWER, gone(4, A0, 16), gone(4.1, V, 16)],
        Sub(gone(4, A0, 16), CancelTimer("notice"), HangUp(V), forbid=[Bridge((A0, V))]),
        {"outcome": Outcome.FAILED, "retryable": True,
         "cause": "the agent hung up before the call was bridged"}),
]


@table(RECORDING)
def test_recording(row: Row) -> None:
    run_row(row)
