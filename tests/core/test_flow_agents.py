"""The call flow's tables for ringing agents: ring-all and sequential (rows: tests/core/flow_rows.py)."""

from __future__ import annotations

from callengine.flow import (
    DestroyBridge,
    HangUp,
    Outcome,
    State,
)
from tests.core.flow_rows import (
    A0,
    A1,
    A2,
    ans,
    CANCEL_ENDING,
    CANCEL_WHISPER,
    connect_cmds,
    dial_cmds,
    FIN,
    fired,
    full_result,
    gone,
    O,
    P_RINGING,
    P_WHISPER,
    played,
    ring,
    Row,
    run_row,
    SEQ,
    start,
    START_ENDING,
    table,
    V,
    whisper_cmds,
)


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


