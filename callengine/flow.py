"""The call-flow state machine of one callback attempt: pure, no I/O, no asyncio.

`CallFlow.handle(event)` takes one event (something Asterisk or a timer said) and returns the
commands the driver must execute, in order. Legs are named by role ("agent:0", "agent:1", …,
"visitor"); the driver alone knows which Asterisk channel plays each role. Time comes in with
every event, so durations are computed here and tests need no clock.

The invariants the machine keeps:
- the visitor is dialled only while an agent is on the line (answered, whisper heard);
- the first agent to answer wins, every other ringing agent is hung up at once; when the plan
  asks agents to accept (press a digit after the whisper), the first to accept wins instead:
  the others ring on while one is asked, and one who does not accept makes way for the next;
- the attempt finishes only once every leg it originated is gone (no channel left behind),
  or after a grace timer if Asterisk never confirms.

This module holds the machine (its transitions and the guard timers it starts); its vocabulary
(the plan, events, commands, states, result) is callengine.callplan, split off so each reads on
its own. Every public name there is re-exported here: `flow.Start`, `from callengine.flow
import Result` and the like keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callengine.callplan import (
    ACCEPT_DIGITS,
    CAUSE_CALL_REJECTED,
    CAUSE_NORMAL_CLEARING,
    CAUSE_NO_ANSWER,
    CAUSE_NO_USER_RESPONSE,
    CAUSE_USER_BUSY,
    FIRST_PROGRESS,
    VISITOR,
    Acceptance,
    Answer,
    Bridge,
    CallPlan,
    CancelTimer,
    Command,
    DestroyBridge,
    DigitPressed,
    Event,
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
    StopPlaying,
    Strategy,
    TimerFired,
    accept_prompt,
    agent_leg,
    is_agent_leg,
    visitor_outcome,
)

__all__ = [
    "VISITOR", "CAUSE_NORMAL_CLEARING", "CAUSE_USER_BUSY", "CAUSE_NO_USER_RESPONSE",
    "CAUSE_NO_ANSWER", "CAUSE_CALL_REJECTED", "ACCEPT_DIGITS", "accept_prompt", "Outcome",
    "Strategy", "State", "FIRST_PROGRESS", "CallPlan", "Start", "LegRinging", "LegAnswered",
    "LegGone", "PlaybackDone", "DigitPressed", "TimerFired", "Interrupted", "Event", "Originate",
    "HangUp", "Play", "StopPlaying", "IndicateRinging", "Bridge", "DestroyBridge",
    "StartRecording", "StartTimer", "CancelTimer", "Progress", "Answer", "Acceptance", "Result",
    "Finish", "Command", "agent_leg", "is_agent_leg", "visitor_outcome", "WHISPER_GUARD_S",
    "NOTICE_GUARD_S", "ENDING_GRACE_S", "ACCEPT_PROMPT_GUARD_S", "CallFlow",
]


WHISPER_GUARD_S = 60.0  # a whisper that never reports its end must not hold an agent forever
NOTICE_GUARD_S = 60.0  # likewise for the recording notice played to the visitor
ENDING_GRACE_S = 10.0  # how long to wait for Asterisk to confirm every leg is gone
ACCEPT_PROMPT_GUARD_S = 60.0  # likewise for the prompt asking the agent to press the digit


@dataclass
class _Leg:
    ringing: bool = False
    answered: bool = False


@dataclass
class CallFlow:
    plan: CallPlan
    state: State = State.NEW
    live: dict[str, _Leg] = field(default_factory=dict)  # legs originated and not yet gone
    agent_causes: list[tuple[int, bool]] = field(default_factory=list)  # (cause, originate_failed)
    next_agent: int = 0
    agent: str | None = None  # leg of the agent who answered
    started_at: float = 0.0
    agent_answered_at: float | None = None
    visitor_dialled_at: float | None = None
    visitor_rang: bool = False
    visitor_answered_at: float | None = None
    connected_at: float | None = None
    bridged: bool = False
    pending: Result | None = None  # decided, waiting for the legs to go
    acceptances: list[Acceptance] = field(default_factory=list)  # agents asked, and answers
    prompting: bool = False  # the accept prompt is still playing to the agent asked

    # -- public ---------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Command]:
        if self.state is State.DONE:
            return []
        match event:
            case Start():
                return self._start(event)
            case Interrupted():
                return self._interrupted(event)
            case TimerFired(name="ending") if self.state is State.ENDING:
                return self._finish_now()
            case LegGone():
                if event.leg not in self.live:
                    return []  # a second report of the same hangup
                del self.live[event.leg]
        if self.state is State.ENDING:
            return self._finish_if_quiet()
        handler = {
            State.RINGING_AGENTS: self._ringing_agents,
            State.WHISPER: self._whisper,
            State.ACCEPT: self._accept,
            State.DIALLING_VISITOR: self._dialling_visitor,
            State.NOTICE: self._notice,
            State.CONNECTED: self._connected,
        }.get(self.state)
        if handler is None:
            return []
        return handler(event)

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    @property
    def agent_taken(self) -> bool:
        """An agent took the call (answered, or accepted when asked): no other is rung now."""
        return self.agent is not None and (
            self.plan.accept_digit is None
            or any(a.answer is Answer.ACCEPTED for a in self.acceptances))

    # -- states ---------------------------------------------------------------------------

    def _start(self, event: Start) -> list[Command]:
        if self.state is not State.NEW:
            return []
        self.started_at = event.at
        self.state = FIRST_PROGRESS
        commands: list[Command] = [Progress(FIRST_PROGRESS)]
        if self.plan.strategy is Strategy.RING_ALL:
            for _ in self.plan.agent_endpoints:
                commands.append(self._originate_next_agent())
        else:
            commands.append(self._originate_next_agent())
        return commands

    def _ringing_agents(self, event: Event) -> list[Command]:
        match event:
            case LegRinging(leg=leg) if leg in self.live:
                self.live[leg].ringing = True
            case LegAnswered(leg=leg) if is_agent_leg(leg) and leg in self.live:
                return self._agent_answered(event.at, leg)
            case LegGone(leg=leg) if is_agent_leg(leg):
                self.agent_causes.append((event.cause, event.originate_failed))
                if self.next_agent < len(self.plan.agent_endpoints) and (
                    self.plan.strategy is not Strategy.RING_ALL
                ):
                    return [self._originate_next_agent()]
                if not any(is_agent_leg(other) for other in self.live):
                    return self._end(self._agents_result())
        return []

    def _agent_answered(self, at: float, leg: str) -> list[Command]:
        self.agent = leg
        self.agent_answered_at = at
        self.live[leg].answered = True
        commands: list[Command] = []
        if self.plan.accept_digit is None:  # else the others ring on until one accepts
            commands = [HangUp(other) for other in self.live if other != leg]
        if self.plan.whisper:
            self.state = State.WHISPER
            commands += [
                Progress(State.WHISPER, agent=self._agent_endpoint()),
                Play(leg, self.plan.whisper),
                StartTimer("whisper", WHISPER_GUARD_S),
            ]
            return commands
        if self.plan.accept_digit is not None:
            return commands + [Progress(State.WHISPER, agent=self._agent_endpoint()),
                               *self._ask(leg)]
        return commands + self._dial_visitor(at)

    def _whisper(self, event: Event) -> list[Command]:
        match event:
            case PlaybackDone(leg=leg) if leg == self.agent:
                return [CancelTimer("whisper"), *self._whispered(event.at)]
            case TimerFired(name="whisper"):
                return self._whispered(event.at)
            case LegGone(leg=leg) if leg == self.agent:
                if self.plan.accept_digit is not None:
                    return [CancelTimer("whisper"), *self._declined(event, Answer.HUNG_UP)]
                return self._end(self._agent_left_early(event))
        return self._while_asking(event)

    def _whispered(self, at: float) -> list[Command]:
        if self.plan.accept_digit is None:
            return self._dial_visitor(at)
        assert self.agent is not None
        return self._ask(self.agent)

    # -- accepting: the agent presses the plan's digit, or the call goes to the next agent --

    def _ask(self, leg: str) -> list[Command]:
        assert self.plan.accept_digit is not None
        self.state = State.ACCEPT
        self.prompting = True
        return [Play(leg, accept_prompt(self.plan.accept_digit)),
                StartTimer(f"accept-prompt:{leg}", ACCEPT_PROMPT_GUARD_S)]

    def _accept(self, event: Event) -> list[Command]:
        leg = self.agent
        assert leg is not None
        match event:
            case PlaybackDone(leg=played) if played == leg and self.prompting:
                self.prompting = False  # the N seconds count from the prompt's end
                return [CancelTimer(f"accept-prompt:{leg}"),
                        StartTimer(f"accept:{leg}", self.plan.accept_timeout)]
            case TimerFired(name=name) if name == f"accept-prompt:{leg}":
                self.prompting = False
                return [StartTimer(f"accept:{leg}", self.plan.accept_timeout)]
            case TimerFired(name=name) if name == f"accept:{leg}":
                return self._declined(event, Answer.TIMEOUT)
            case DigitPressed(leg=pressed, digit=digit) if pressed == leg:
                if digit != self.plan.accept_digit:
                    return self._declined(event, Answer.WRONG_DIGIT, digit)
                return self._accepted(event.at)
            case LegGone(leg=gone) if gone == leg:
                return self._declined(event, Answer.HUNG_UP)
        return self._while_asking(event)

    def _accepted(self, at: float) -> list[Command]:
        leg = self.agent
        assert leg is not None
        self._answered(leg, Answer.ACCEPTED, at)
        commands: list[Command] = [CancelTimer(f"accept-prompt:{leg}"),
                                   CancelTimer(f"accept:{leg}")]
        if self.prompting:
            self.prompting = False
            commands.append(StopPlaying(leg))
        commands += [HangUp(other) for other in self.live if is_agent_leg(other) and other != leg]
        return commands + self._dial_visitor(at)

    def _declined(self, event: Event, answer: Answer, digit: str | None = None) -> list[Command]:
        """The agent asked did not accept: their leg ends, the call goes on ringing (the next
        agent in turn, or those of a ring-all group still ringing) as if it had not answered."""
        leg = self.agent
        assert leg is not None
        self._answered(leg, answer, event.at, digit)
        commands: list[Command] = []
        if self.state is State.ACCEPT:
            commands = [CancelTimer(f"accept-prompt:{leg}"), CancelTimer(f"accept:{leg}")]
        self.agent, self.agent_answered_at, self.prompting = None, None, False
        self.state = State.RINGING_AGENTS
        commands.append(Progress(State.RINGING_AGENTS))
        if leg in self.live:
            # Its LegGone, in RINGING_AGENTS, rings the next agent or ends the attempt.
            return commands + [HangUp(leg)]
        assert isinstance(event, LegGone)
        return commands + self._ringing_agents(event)

    def _while_asking(self, event: Event) -> list[Command]:
        """The other agents' legs while one is asked to accept (ring-all: they ring on)."""
        if self.plan.accept_digit is None:
            return []  # they were hung up when the agent answered
        match event:
            case LegRinging(leg=leg) if leg in self.live:
                self.live[leg].ringing = True
            case LegAnswered(leg=leg) if is_agent_leg(leg) and leg in self.live:
                return [HangUp(leg)]  # another agent is being asked: one at a time
            case LegGone(leg=leg) if is_agent_leg(leg) and leg != self.agent:
                self.agent_causes.append((event.cause, event.originate_failed))
        return []

    def _answered(self, leg: str, answer: Answer, at: float, digit: str | None = None) -> None:
        endpoint = self.plan.agent_endpoints[int(leg.split(":")[1])]
        self.acceptances.append(Acceptance(endpoint, answer, round(at - self.started_at, 3),
                                           digit))

    def _dial_visitor(self, at: float) -> list[Command]:
        assert self.agent is not None and self.agent in self.live, "visitor dialled without agent"
        self.state = State.DIALLING_VISITOR
        self.visitor_dialled_at = at
        self.live[VISITOR] = _Leg()
        return [
            Progress(State.DIALLING_VISITOR, agent=self._agent_endpoint()),
            IndicateRinging(self.agent, on=True),
            Originate(
                VISITOR,
                self.plan.visitor_endpoint,
                self.plan.visitor_ring_timeout,
                self.plan.caller_id,
            ),
        ]

    def _dialling_visitor(self, event: Event) -> list[Command]:
        match event:
            case LegRinging(leg=leg) if leg == VISITOR:
                self.visitor_rang = True
            case LegAnswered(leg=leg) if leg == VISITOR:
                self.visitor_answered_at = event.at
                self.live[VISITOR].answered = True
                if self.plan.record and self.plan.recording_notice:
                    self.state = State.NOTICE
                    return [
                        Progress(State.NOTICE, agent=self._agent_endpoint()),
                        Play(VISITOR, self.plan.recording_notice),
                        StartTimer("notice", NOTICE_GUARD_S),
                    ]
                return self._connect(event.at)
            case LegGone(leg=leg) if leg == VISITOR:
                if event.originate_failed:
                    result = self._result(
                        Outcome.FAILED, cause=f"dialling the visitor failed: {event.cause_text}"
                    )
                else:
                    outcome = visitor_outcome(event.cause, self.visitor_rang)
                    result = self._result(outcome, cause=event.cause_text, q850=event.cause)
                return self._end(result)
            case LegGone(leg=leg) if leg == self.agent:
                return self._end(self._agent_left_early(event))
        return []

    def _notice(self, event: Event) -> list[Command]:
        match event:
            case PlaybackDone(leg=leg) if leg == VISITOR:
                # A notice the visitor could not hear makes the recording unlawful: don't record.
                return [CancelTimer("notice"), *self._connect(event.at, record=not event.failed)]
            case TimerFired(name="notice"):
                return self._connect(event.at, record=False)
            case LegGone(leg=leg) if leg == VISITOR:
                # They heard the call would be recorded and hung up: calling again is pushy.
                result = self._result(
                    Outcome.FAILED, cause="the visitor hung up during the recording notice",
                    q850=event.cause, retryable=False,
                )
                return self._end(result)
            case LegGone(leg=leg) if leg == self.agent:
                return self._end(self._agent_left_early(event))
        return []

    def _connect(self, at: float, record: bool = True) -> list[Command]:
        assert self.agent is not None and self.agent in self.live
        self.state = State.CONNECTED
        self.connected_at = at
        self.bridged = True
        commands: list[Command] = [
            IndicateRinging(self.agent, on=False),
            Bridge((self.agent, VISITOR)),
        ]
        if self.plan.record and record:
            commands.append(StartRecording(VISITOR))
        commands.append(Progress(State.CONNECTED, agent=self._agent_endpoint()))
        return commands

    def _connected(self, event: Event) -> list[Command]:
        match event:
            case LegGone(leg=leg) if leg in (self.agent, VISITOR):
                assert self.connected_at is not None
                result = self._result(
                    Outcome.CONNECTED,
                    cause=event.cause_text,
                    q850=event.cause,
                    talk_s=event.at - self.connected_at,
                    hung_up_by="visitor" if leg == VISITOR else "agent",
                )
                return self._end(result)
        return []

    def _interrupted(self, event: Interrupted) -> list[Command]:
        for leg in event.legs_gone:
            self.live.pop(leg, None)
        if self.state is State.ENDING:
            return self._finish_if_quiet()
        talk_s = event.at - self.connected_at if self.connected_at is not None else None
        result = self._result(Outcome.FAILED, cause=f"interrupted: {event.reason}", talk_s=talk_s)
        return self._end(result)

    # -- ending ---------------------------------------------------------------------------

    def _end(self, result: Result) -> list[Command]:
        """Hang up whatever is still up; finish once Asterisk confirms every leg is gone."""
        self.pending = result
        commands: list[Command] = [HangUp(leg) for leg in self.live]
        if self.state in (State.WHISPER, State.NOTICE):
            commands.insert(0, CancelTimer("whisper" if self.state is State.WHISPER else "notice"))
        if self.state is State.ACCEPT and self.agent is not None:
            commands[:0] = [CancelTimer(f"accept-prompt:{self.agent}"),
                            CancelTimer(f"accept:{self.agent}")]
        self.state = State.ENDING
        if self.bridged:
            commands.append(DestroyBridge())
            self.bridged = False
        if self.live:
            commands.append(StartTimer("ending", ENDING_GRACE_S))
            return commands
        return commands + self._finish_now()

    def _finish_if_quiet(self) -> list[Command]:
        if self.live:
            return []
        return [CancelTimer("ending"), *self._finish_now()]

    def _finish_now(self) -> list[Command]:
        assert self.pending is not None
        self.state = State.DONE
        return [Finish(self.pending)]

    # -- helpers --------------------------------------------------------------------------

    def _originate_next_agent(self) -> Originate:
        index = self.next_agent
        self.next_agent += 1
        leg = agent_leg(index)
        self.live[leg] = _Leg()
        return Originate(
            leg, self.plan.agent_endpoints[index], self.plan.agent_ring_timeout, self.plan.caller_id
        )

    def _agent_endpoint(self) -> str | None:
        if self.agent is None:
            return None
        return self.plan.agent_endpoints[int(self.agent.split(":")[1])]

    def _agents_result(self) -> Result:
        causes = [cause for cause, failed in self.agent_causes if not failed]
        if not causes:
            return self._result(
                Outcome.FAILED, cause="no agent could be called (originate failed)"
            )
        if self.acceptances:  # some answered, none accepted: as good as no answer
            return self._result(Outcome.AGENTS_NO_ANSWER, q850=causes[-1],
                                cause="no agent accepted the call")
        if all(cause == CAUSE_USER_BUSY for cause in causes):
            return self._result(Outcome.AGENTS_BUSY, q850=CAUSE_USER_BUSY, cause="User busy")
        return self._result(Outcome.AGENTS_NO_ANSWER, q850=causes[-1], cause="no agent answered")

    def _agent_left_early(self, event: LegGone) -> Result:
        return self._result(
            Outcome.FAILED,
            cause="the agent hung up before the call was bridged",
            q850=event.cause,
        )

    def _result(self, outcome: Outcome, **fields) -> Result:
        agent_ring_s = (
            self.agent_answered_at - self.started_at if self.agent_answered_at is not None else None
        )
        visitor_ring_s = None
        if self.visitor_answered_at is not None and self.visitor_dialled_at is not None:
            visitor_ring_s = self.visitor_answered_at - self.visitor_dialled_at
        # Retrying is right only while the visitor has not talked to anyone yet.
        fields.setdefault(
            "retryable", outcome is not Outcome.CONNECTED and self.connected_at is None
        )
        return Result(
            outcome=outcome,
            agent=self._agent_endpoint(),
            agent_ring_s=agent_ring_s,
            visitor_ring_s=visitor_ring_s,
            connected=self.connected_at is not None,
            acceptances=tuple(self.acceptances),
            **fields,
        )
