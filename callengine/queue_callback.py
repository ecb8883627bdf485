"""A caller waiting in an Asterisk queue asks to be called back (docs/queue-callback.md).

The queue's exit context hands the caller's channel over as
`Stasis(callengine,queue-callback,<queue>,<joined>,<caller id>)` when they press 1 while waiting.
This handler (the inbound purpose "queue-callback", callengine.inbound) confirms the number to
call back (the caller ID, or one typed on the keypad), checks it against the widget's number
policy at once, asks for recording consent when the queue's widget records, takes the lead
(validated and rate-limited by the services like any other) and says thank you; the engine
then hangs up. The lead is dialled like any other, but its "agent" is a placeholder that waits
in the queue in the caller's old place (callengine.dispatch.queue_placeholder).

Every prompt played and every key pressed, with its time, is the consent evidence kept with
the lead. A caller who cannot be taken (no widget for the queue, a number refused three times,
a limit) hears "I'm sorry" and goes back into the queue in their place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from callengine.errors import InvalidInput, RateLimited, WidgetDisabled
from callengine.inbound import InboundChannel
from callengine.model import Lead, Widget
from callengine.numbers import NumberRejected, check_number

log = logging.getLogger(__name__)

PURPOSE = "queue-callback"
QUEUE_CALLBACK_CONTEXT = "callengine-queue-callback"  # back in line: dialplan/…callengine.conf
KEY_CALLBACK = "1"  # what the caller pressed in the queue (the queue's exit context has it)
KEY_CONFIRM = "1"
KEY_OTHER_NUMBER = "2"
KEY_RECORDING = "1"
TRIES = 3  # numbers offered or typed before the caller goes back in line
# Asterisk's core sounds (asterisk-core-sounds-en); a list separated by "," is one playback.
NUMBER_IS = "sound:telephone-number,{digits}"  # the digits one by one (sound:digits/N)
CONFIRM = "sound:if-correct-press,sound:digits/1,sound:vm-toenternumber,sound:vm-press,sound:digits/2"
ENTER_NUMBER = "sound:vm-enter-num-to-call"
NUMBER_REFUSED = "sound:check-number-dial-again"
RECORDING_AGREE = "sound:vm-press,sound:digits/1"
THANK_YOU = "sound:auth-thankyou,sound:goodbye"
SORRY = "sound:im-sorry"
ANSWER_S = 8.0  # to press a key after a question
FIRST_DIGIT_S, NEXT_DIGIT_S = 10.0, 4.0

FindWidget = Callable[[str], Awaitable[Widget | None]]
# services.leads.Leads.create_from_queue
CreateLead = Callable[..., Awaitable[Lead]]


class Evidence:
    """What the caller heard and pressed, in order, with the seconds since they pressed 1."""

    def __init__(self, started: float, clock: Callable[[], float]):
        self._clock = clock
        self._started = started
        self.steps: list[dict[str, Any]] = [{"key": KEY_CALLBACK, "for": "callback", "at": 0.0}]

    def heard(self, media: str) -> None:
        self.steps.append({"prompt": media, "at": self._at()})

    def pressed(self, key: str | None, meaning: str) -> None:
        self.steps.append({"key": key, "for": meaning, "at": self._at()})

    def _at(self) -> float:
        return round(self._clock() - self._started, 3)


def queue_callback_handler(find_widget: FindWidget, create_lead: CreateLead,
                           clock: Callable[[], float]
                           ) -> Callable[[InboundChannel], Awaitable[None]]:
    """The "queue-callback" handler."""

    async def handle(channel: InboundChannel) -> None:
        try:
            queue, joined = channel.args[0], float(channel.args[1])
        except (IndexError, ValueError):
            log.warning("%s queue callback without its queue and join time: hanging up",
                        channel.log_prefix)
            return
        caller = channel.args[2] if len(channel.args) > 2 else ""
        widget = await find_widget(queue)
        if widget is None:
            log.warning("%s queue %s has no enabled widget (setting queue): back in line",
                        channel.log_prefix, queue)
            await _back_in_line(channel, queue, joined)
            return
        evidence = Evidence(clock(), clock)
        number = await _confirmed_number(channel, widget, caller, evidence)
        if number is None:
            log.info("%s no number confirmed: back in line", channel.log_prefix)
            await _back_in_line(channel, queue, joined)
            return
        recording = await _recording_consent(channel, widget, evidence)
        try:
            lead = await create_lead(widget, number, recording, queue=queue, joined_at=joined,
                                     evidence={"steps": evidence.steps})
        except (NumberRejected, InvalidInput, RateLimited, WidgetDisabled) as exc:
            log.info("%s callback refused (%s): back in line", channel.log_prefix,
                     type(exc).__name__)
            await _back_in_line(channel, queue, joined)
            return
        log.info("%s queue %s: callback taken as lead %s", channel.log_prefix, queue, lead.id)
        await channel.play(THANK_YOU)

    return handle


async def _confirmed_number(channel: InboundChannel, widget: Widget, caller: str,
                            evidence: Evidence) -> str | None:
    """The caller ID or a typed number, checked against the widget's policy and confirmed
    with 1; None after TRIES refusals or silences."""
    policy = widget.settings.number_policy()
    offered = caller
    for _ in range(TRIES):
        if not offered:
            evidence.heard(ENTER_NUMBER)
            first = await channel.play(ENTER_NUMBER, interruptible=True)
            typed = await channel.digits(most=15, first_timeout=FIRST_DIGIT_S,
                                         between_timeout=NEXT_DIGIT_S)
            offered = ("" if first in (None, "#") else first) + typed
            evidence.pressed("typed" if offered else None, "number")
            if not offered:
                continue
        try:
            check_number(offered, policy)
        except NumberRejected:
            evidence.heard(NUMBER_REFUSED)
            await channel.play(NUMBER_REFUSED)
            offered = ""
            continue
        digits = "".join(c for c in offered if c.isdigit())
        question = f"{NUMBER_IS.format(digits=_spoken(digits))},{CONFIRM}"
        evidence.heard(f"{NUMBER_IS.format(digits='<number>')},{CONFIRM}")  # no number in it
        key = await channel.play(question, interruptible=True) or await channel.digit(ANSWER_S)
        evidence.pressed(key, "confirm-number")
        if key == KEY_CONFIRM:
            return offered
        if key == KEY_OTHER_NUMBER:
            offered = ""
    return None


def _spoken(digits: str) -> str:
    # not ARI's "digits:" media: it failed in Asterisk 22 here ("Playback failed"), while the
    # core sounds' digits/N play
    return ",".join(f"sound:digits/{d}" for d in digits)


async def _recording_consent(channel: InboundChannel, widget: Widget,
                             evidence: Evidence) -> bool:
    """A recording widget's notice; asking for the key when recording needs consent."""
    settings = widget.settings
    if settings.recording != "on" or settings.recording_notice is None:
        return False
    if not settings.recording_requires_consent:
        evidence.heard(settings.recording_notice)
        await channel.play(settings.recording_notice)
        return False
    question = f"{settings.recording_notice},{RECORDING_AGREE}"
    evidence.heard(question)
    key = await channel.play(question, interruptible=True) or await channel.digit(ANSWER_S)
    evidence.pressed(key, "recording")
    return key == KEY_RECORDING


async def _back_in_line(channel: InboundChannel, queue: str, joined: float) -> None:
    """The caller returns to the queue where they were (the dialplan places them by their
    join time, as it does the engine's placeholders)."""
    await channel.play(SORRY)
    await channel.telephony.continue_in_dialplan(
        channel.channel_id, QUEUE_CALLBACK_CONTEXT, f"{joined:.3f}-{queue}")
    channel.handed_on = True


__all__ = ["PURPOSE", "queue_callback_handler"]
