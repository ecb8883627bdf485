"""The call flow's tables for the whisper and dialling the visitor (rows: tests/core/flow_rows.py)."""

from __future__ import annotations

from callengine.flow import (
    Bridge,
    HangUp,
    IndicateRinging,
    Outcome,
    Play,
    StartTimer,
    State,
    WHISPER_GUARD_S,
)
from tests.core.flow_rows import (
    A0,
    A1,
    A2,
    AGENT_CONFIRMS,
    ans,
    CANCEL_ENDING,
    CANCEL_WHISPER,
    connect_cmds,
    dial_cmds,
    ENDING_ON_VISITOR_GONE,
    FIN,
    fired,
    full_result,
    gone,
    NO_WHISPER,
    O,
    OV,
    P_DIALLING,
    P_RINGING,
    P_WHISPER,
    played,
    ring,
    Row,
    run_row,
    SEQ,
    start,
    START_ENDING,
    Sub,
    table,
    V,
    visitor_ended,
    whisper_cmds,
    WHISPERED,
    WHISPERED_CMDS,
)


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


