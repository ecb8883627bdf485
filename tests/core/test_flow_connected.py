"""The call flow's tables once connected, interrupted, the retry flag, after done, the invariant
checker itself and recording (rows: tests/core/flow_rows.py)."""

from __future__ import annotations

import pytest

from callengine.flow import (
    Bridge,
    CancelTimer,
    DestroyBridge,
    HangUp,
    IndicateRinging,
    Outcome,
    Play,
    PlaybackDone,
    Progress,
    StartRecording,
    StartTimer,
    State,
)
from tests.core.flow_rows import (
    A0,
    A1,
    A2,
    AGENT_CONFIRMS,
    ans,
    CANCEL_ENDING,
    CANCEL_WHISPER,
    check_invariants,
    connect_cmds,
    dial_cmds,
    ENDING_ON_VISITOR_GONE,
    FIN,
    fired,
    full_result,
    gone,
    intr,
    make_plan,
    NO_WHISPER,
    O,
    OV,
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
