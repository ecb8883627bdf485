"""The call flow's table for accepting: after the whisper the agent is asked to press the plan's
digit within accept_timeout seconds of the prompt's end; the right digit dials the visitor, a
timeout, a wrong digit or a hangup hands the call to the next agent (sequential) or to the agents
still ringing (ring-all). Rows: tests/core/flow_rows.py."""

from __future__ import annotations

from callengine.flow import (
    ACCEPT_PROMPT_GUARD_S,
    Acceptance,
    Answer,
    CallFlow,
    CancelTimer,
    DestroyBridge,
    HangUp,
    Outcome,
    Play,
    StartTimer,
    State,
    StopPlaying,
    accept_prompt,
)
from tests.core.flow_rows import (
    A0,
    A1,
    A2,
    CANCEL_ENDING,
    CANCEL_WHISPER,
    EP,
    FIN,
    NO_WHISPER,
    O,
    P_RINGING,
    P_WHISPER,
    SEQ,
    START_ENDING,
    Row,
    Sub,
    V,
    ans,
    connect_cmds,
    dial_cmds,
    fired,
    gone,
    intr,
    make_plan,
    played,
    press,
    ring,
    run_row,
    start,
    table,
    whisper_cmds,
)

ACC = {"accept_digit": "1", "accept_timeout": 5}
SEQ_ACC = {**SEQ, **ACC}
PROMPT = "sound:vm-press,sound:digits/1"


def ask_cmds(leg: str) -> list:
    return [Play(leg, PROMPT), StartTimer(f"accept-prompt:{leg}", ACCEPT_PROMPT_GUARD_S)]


def prompted_cmds(leg: str) -> list:
    return [CancelTimer(f"accept-prompt:{leg}"), StartTimer(f"accept:{leg}", 5)]


def cancel_accept(leg: str) -> list:
    return [CancelTimer(f"accept-prompt:{leg}"), CancelTimer(f"accept:{leg}")]


def asked(leg: str, answered_at: float) -> list:
    """Events: `leg` answers, hears the whisper (1 s) and the prompt (2 s)."""
    return [ans(answered_at, leg), played(answered_at + 1, leg), played(answered_at + 3, leg)]


def asked_cmds(i: int) -> list:
    leg = f"agent:{i}"
    return [[P_WHISPER(i), *whisper_cmds(i)], [CANCEL_WHISPER, *ask_cmds(leg)],
            prompted_cmds(leg)]


ACCEPT = [
    Row(
        "sequential: the agent hears the whisper, then the prompt; the digit dials the visitor",
        SEQ_ACC,
        [start(0.0), *asked(A0, 2.0), press(6.5, A0, "1"), ans(9.0, V), gone(20.0, V, 16),
         gone(20.1, A0, 16)],
        [[P_RINGING, O(0)], *asked_cmds(0), [*cancel_accept(A0), *dial_cmds(0)],
         connect_cmds(0), [HangUp(A0), DestroyBridge(), START_ENDING], [CANCEL_ENDING, FIN]],
        {"outcome": Outcome.CONNECTED, "agent": EP[0], "agent_ring_s": 2.0,
         "acceptances": (Acceptance(EP[0], Answer.ACCEPTED, 6.5),)},
    ),
    Row(
        "the digit during the prompt stops the prompt and dials the visitor",
        SEQ_ACC,
        [start(0.0), ans(2.0, A0), played(3.0, A0), press(3.5, A0, "1")],
        [[P_RINGING, O(0)], [P_WHISPER(0), *whisper_cmds(0)], [CANCEL_WHISPER, *ask_cmds(A0)],
         [*cancel_accept(A0), StopPlaying(A0), *dial_cmds(0)]],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "a digit during the whisper is not an answer: the agent has not been asked yet",
        SEQ_ACC,
        [start(0.0), ans(2.0, A0), press(2.5, A0, "1"), played(3.0, A0)],
        [[P_RINGING, O(0)], [P_WHISPER(0), *whisper_cmds(0)], [],
         [CANCEL_WHISPER, *ask_cmds(A0)]],
        None,
        State.ACCEPT,
    ),
    Row(
        "no whisper: the agent is asked as they answer",
        {**SEQ_ACC, **NO_WHISPER},
        [start(0.0), ans(2.0, A0), played(4.0, A0), press(5.0, A0, "1")],
        [[P_RINGING, O(0)], [P_WHISPER(0), *ask_cmds(A0)], prompted_cmds(A0),
         [*cancel_accept(A0), *dial_cmds(0)]],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "timeout: the agent's leg ends and the next agent rings once it is gone",
        SEQ_ACC,
        [start(0.0), *asked(A0, 2.0), fired(10.0, "accept:agent:0"), gone(10.1, A0, 16),
         *asked(A1, 12.0), press(16.0, A1, "1")],
        [[P_RINGING, O(0)], *asked_cmds(0), [*cancel_accept(A0), P_RINGING, HangUp(A0)],
         [O(1)], *asked_cmds(1), [*cancel_accept(A1), *dial_cmds(1)]],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "a wrong digit declines at once; the next agent accepts, and both are kept",
        SEQ_ACC,
        [start(0.0), *asked(A0, 2.0), press(6.0, A0, "2"), gone(6.1, A0, 16),
         *asked(A1, 8.0), press(12.0, A1, "1"), ans(14.0, V), gone(30.0, A1, 16),
         gone(30.1, V, 16)],
        Sub(press(6.0, A0, "2"), HangUp(A0), gone(6.1, A0, 16), O(1),
            press(12.0, A1, "1"), *dial_cmds(1), FIN),
        {"outcome": Outcome.CONNECTED, "agent": EP[1], "agent_ring_s": 8.0,
         "hung_up_by": "agent",
         "acceptances": (Acceptance(EP[0], Answer.WRONG_DIGIT, 6.0, "2"),
                         Acceptance(EP[1], Answer.ACCEPTED, 12.0))},
    ),
    Row(
        "the agent hangs up while asked: the next agent rings at once",
        SEQ_ACC,
        [start(0.0), ans(2.0, A0), played(3.0, A0), gone(4.0, A0, 16)],
        [[P_RINGING, O(0)], [P_WHISPER(0), *whisper_cmds(0)], [CANCEL_WHISPER, *ask_cmds(A0)],
         [*cancel_accept(A0), P_RINGING, O(1)]],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "the agent hangs up during the whisper: declined too, the next agent rings",
        SEQ_ACC,
        [start(0.0), ans(2.0, A0), gone(2.5, A0, 16)],
        [[P_RINGING, O(0)], [P_WHISPER(0), *whisper_cmds(0)], [CANCEL_WHISPER, P_RINGING, O(1)]],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "the prompt never reports its end: its guard starts the N seconds",
        SEQ_ACC,
        [start(0.0), ans(2.0, A0), played(3.0, A0), fired(63.0, "accept-prompt:agent:0"),
         fired(68.0, "accept:agent:0")],
        [[P_RINGING, O(0)], [P_WHISPER(0), *whisper_cmds(0)], [CANCEL_WHISPER, *ask_cmds(A0)],
         [StartTimer("accept:agent:0", 5)], [*cancel_accept(A0), P_RINGING, HangUp(A0)]],
        None,
        State.RINGING_AGENTS,
    ),
    Row(
        "nobody accepts: agents-no-answer (retried like it), every answer kept",
        {**SEQ_ACC, "agent_endpoints": EP[:2]},
        [start(0.0), *asked(A0, 2.0), fired(10.0, "accept:agent:0"), gone(10.1, A0, 16),
         *asked(A1, 12.0), press(16.0, A1, "9"), gone(16.1, A1, 16)],
        Sub(O(1), press(16.0, A1, "9"), HangUp(A1), gone(16.1, A1, 16), FIN),
        {"outcome": Outcome.AGENTS_NO_ANSWER, "cause": "no agent accepted the call",
         "q850": 16, "retryable": True, "agent": None, "agent_ring_s": None,
         "acceptances": (Acceptance(EP[0], Answer.TIMEOUT, 10.0),
                         Acceptance(EP[1], Answer.WRONG_DIGIT, 16.0, "9"))},
    ),
    Row(
        "sequential: an agent who doesn't answer is skipped as before, then one accepts",
        SEQ_ACC,
        [start(0.0), gone(20.0, A0, 19), *asked(A1, 22.0), press(26.0, A1, "1")],
        [[P_RINGING, O(0)], [O(1)], *asked_cmds(1), [*cancel_accept(A1), *dial_cmds(1)]],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "ring-all: the others ring on while one is asked; the accept hangs them up",
        ACC,
        [start(0.0), ring(1.0, A0), ring(1.0, A1), ring(1.0, A2), *asked(A1, 3.0),
         press(7.0, A1, "1")],
        [[P_RINGING, O(0), O(1), O(2)], [], [], [], *asked_cmds(1),
         [*cancel_accept(A1), HangUp(A0), HangUp(A2), *dial_cmds(1)]],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "ring-all: another answer while one is asked is hung up; a timeout leaves the rest"
        " ringing; the next to answer is asked and accepts",
        ACC,
        [start(0.0), *asked(A1, 3.0), ans(4.5, A0), gone(4.6, A0, 16),
         fired(11.0, "accept:agent:1"), gone(11.1, A1, 16), *asked(A2, 13.0),
         press(17.0, A2, "1")],
        [[P_RINGING, O(0), O(1), O(2)], *asked_cmds(1), [HangUp(A0)], [],
         [*cancel_accept(A1), P_RINGING, HangUp(A1)], [], *asked_cmds(2),
         [*cancel_accept(A2), *dial_cmds(2)]],
        None,
        State.DIALLING_VISITOR,
    ),
    Row(
        "ring-all: the one asked declines and nobody else is ringing: agents-no-answer",
        ACC,
        [start(0.0), gone(1.0, A0, 17), gone(1.0, A2, 19), *asked(A1, 3.0),
         press(7.0, A1, "#"), gone(7.1, A1, 16)],
        Sub(press(7.0, A1, "#"), HangUp(A1), gone(7.1, A1, 16), FIN),
        {"outcome": Outcome.AGENTS_NO_ANSWER, "cause": "no agent accepted the call",
         "acceptances": (Acceptance(EP[1], Answer.WRONG_DIGIT, 7.0, "#"),)},
    ),
    Row(
        "interrupted while asking: the accept timers are cancelled, the leg hung up",
        SEQ_ACC,
        [start(0.0), *asked(A0, 2.0), intr(6.0, "Asterisk shut down"), gone(6.1, A0, 16)],
        Sub(intr(6.0, "Asterisk shut down"), *cancel_accept(A0), HangUp(A0), START_ENDING,
            gone(6.1, A0, 16), CANCEL_ENDING, FIN),
        {"outcome": Outcome.FAILED, "cause": "interrupted: Asterisk shut down",
         "acceptances": ()},
    ),
    Row(
        "without accept_digit a digit changes nothing",
        SEQ,
        [start(0.0), ans(2.0, A0), press(2.5, A0, "1"), played(3.0, A0), press(3.5, A0, "5")],
        [[P_RINGING, O(0)], [P_WHISPER(0), *whisper_cmds(0)], [],
         [CANCEL_WHISPER, *dial_cmds(0)], []],
        None,
        State.DIALLING_VISITOR,
    ),
]


@table(ACCEPT)
def test_accept(row: Row) -> None:
    run_row(row)


def test_agent_taken_waits_for_the_accept() -> None:
    """The driver keeps the agents not rung yet while the one who answered is only asked."""
    flow = CallFlow(make_plan(**SEQ_ACC))
    for event in (start(0.0), ans(2.0, A0), played(3.0, A0)):
        flow.handle(event)
    assert flow.agent == A0 and not flow.agent_taken
    flow.handle(press(4.0, A0, "1"))
    assert flow.agent_taken
    plain = CallFlow(make_plan(**SEQ))
    plain.handle(start(0.0))
    plain.handle(ans(2.0, A0))
    assert plain.agent_taken


def test_the_prompt_names_the_digit() -> None:
    assert accept_prompt("1") == PROMPT
    assert accept_prompt("#") == "sound:vm-press,sound:digits/pound"
    assert accept_prompt("*") == "sound:vm-press,sound:digits/star"
