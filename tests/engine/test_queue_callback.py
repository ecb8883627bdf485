"""The queue-callback dialogue (callengine/queue_callback.py) against a scripted channel: which
prompts a caller hears, what each key does, what is taken as the lead and what is kept as
evidence. End to end with app_queue: test_queue_callback_asterisk.py."""

from __future__ import annotations

import asyncio

import pytest

from callengine import queue_callback as qc
from callengine.errors import RateLimited
from callengine.inbound import InboundChannel
from callengine.model import Widget, widget_settings_from_input
from callengine.telephony import DigitPressed, PlaybackFinished

CALLER = "+48601234567"


class ScriptedChannel:
    """A telephony port whose caller answers each prompt from a script: `answers` maps a
    prompt's first media to the keys pressed while it plays (a prompt not in it plays out)."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = {k: list(v) for k, v in answers.items()}
        self.played: list[str] = []
        self.continued: tuple[str, str] | None = None
        self.channel = InboundChannel("ch-1", "PJSIP/queue-caller-1", (), self)

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        self.played.append(media)
        pending = self.answers.get(media.split(",")[0])
        for key in pending.pop(0) if pending else "":
            self.channel.events.put_nowait(DigitPressed(channel_id, key))
        self.channel.events.put_nowait(PlaybackFinished(playback_id, channel_id, False))

    async def stop_playback(self, playback_id: str) -> None:
        pass

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str) -> None:
        self.continued = (context, extension)


def widget(**settings) -> Widget:
    raw = {"group": "g", "allowed_regions": ["PL"], "default_region": "PL", "queue": "support",
           **settings}
    return Widget("q", "Queue", "pk", widget_settings_from_input(raw))


async def talk(script: ScriptedChannel, *, caller: str = CALLER, found: Widget | None = None,
               refuse: Exception | None = None, no_widget: bool = False):
    taken = []

    async def find(queue):
        assert queue == "support"
        return None if no_widget else (found or widget())

    async def create(w, phone, recording, **kw):
        if refuse is not None:
            raise refuse
        taken.append((phone, recording, kw))
        return type("L", (), {"id": "lead-1"})()

    script.channel.args = ("support", "1796222264.156", caller)
    await qc.queue_callback_handler(find, create, lambda: 100.0)(script.channel)
    return taken


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(qc, "ANSWER_S", 0.05)
    monkeypatch.setattr(qc, "FIRST_DIGIT_S", 0.05)
    monkeypatch.setattr(qc, "NEXT_DIGIT_S", 0.05)


def keys(taken) -> list[tuple[str | None, str]]:
    (_, _, kw), = taken
    return [(s["key"], s["for"]) for s in kw["evidence"]["steps"] if "key" in s]


async def test_the_caller_id_confirmed_with_1_is_the_number_called_back():
    script = ScriptedChannel({"sound:telephone-number": ["1"]})
    taken = await talk(script)
    (phone, recording, kw), = taken
    assert (phone, recording) == (CALLER, False)
    assert kw["queue"] == "support" and kw["joined_at"] == 1796222264.156
    assert keys(taken) == [("1", "callback"), ("1", "confirm-number")]
    question = script.played[0].split(",")
    assert question[1:13] == [f"sound:digits/{d}" for d in "48601234567"] + ["sound:if-correct-press"]
    assert script.played[-1] == qc.THANK_YOU and script.continued is None
    assert "601234567" not in repr(kw["evidence"])  # the prompts are kept without the number


async def test_2_asks_for_another_number_typed_on_the_keypad():
    script = ScriptedChannel({"sound:telephone-number": ["2", "1"],
                              qc.ENTER_NUMBER: ["221234567#"]})
    taken = await talk(script)
    assert taken[0][0] == "221234567"  # a Warsaw number, national: the widget's default region
    assert keys(taken) == [("1", "callback"), ("2", "confirm-number"), ("typed", "number"),
                           ("1", "confirm-number")]


async def test_without_a_caller_id_the_number_is_typed():
    script = ScriptedChannel({qc.ENTER_NUMBER: ["601234567#"], "sound:telephone-number": ["1"]})
    taken = await talk(script, caller="")
    assert taken[0][0] == "601234567"
    assert script.played[0] == qc.ENTER_NUMBER


async def test_a_number_the_policy_refuses_is_not_offered_and_three_misses_send_back_in_line():
    script = ScriptedChannel({})  # a German caller ID for a Polish-only widget; nothing typed
    taken = await talk(script, caller="+4930123456")
    assert taken == []
    assert script.played[0] == qc.NUMBER_REFUSED
    assert script.played.count(qc.ENTER_NUMBER) == 2 and script.played[-1] == qc.SORRY
    assert script.continued == ("callengine-queue-callback", "1796222264.156-support")
    assert script.channel.handed_on  # not hung up: back in the queue


async def test_a_queue_without_a_widget_sends_the_caller_back_in_line():
    script = ScriptedChannel({})
    assert await talk(script, no_widget=True) == []
    assert script.played == [qc.SORRY] and script.continued is not None


async def test_a_limit_refusing_the_lead_sends_the_caller_back_in_line():
    script = ScriptedChannel({"sound:telephone-number": ["1"]})
    assert await talk(script, refuse=RateLimited("number", 60)) == []
    assert script.played[-1] == qc.SORRY and script.continued is not None


@pytest.mark.parametrize("pressed, consent", [("1", True), ("", False)])
async def test_a_recording_widget_asks_for_consent_with_its_notice(pressed, consent):
    notice = "sound:conf-now-recording"
    script = ScriptedChannel({"sound:telephone-number": ["1"], notice: [pressed]})
    taken = await talk(script, found=widget(recording="on", recording_notice=notice))
    assert taken[0][1] is consent
    assert script.played[1] == f"{notice},{qc.RECORDING_AGREE}"
    assert keys(taken)[-1] == (pressed or None, "recording")


async def test_a_recording_widget_without_consent_needed_only_tells():
    notice = "sound:conf-now-recording"
    script = ScriptedChannel({"sound:telephone-number": ["1"]})
    taken = await talk(script, found=widget(recording="on", recording_notice=notice,
                                            recording_requires_consent=False))
    assert taken[0][1] is False and script.played[1] == notice


async def test_malformed_arguments_hang_up_without_a_word():
    script = ScriptedChannel({})
    script.channel.args = ("support",)
    await qc.queue_callback_handler(None, None, lambda: 0.0)(script.channel)
    assert script.played == [] and not script.channel.handed_on
    await asyncio.sleep(0)


@pytest.mark.parametrize("settings, field", [
    ({"queue": "sup port"}, "queue"), ({"queue": "-x"}, "queue"), ({"queue": 5}, "queue"),
    ({"queue": "support", "queue_wait_s": 59}, "queue_wait_s"),
    ({"queue": "support", "queue_wait_s": 86401}, "queue_wait_s"),
])
def test_the_queue_settings_are_checked(settings, field):
    from callengine.errors import InvalidInput
    with pytest.raises(InvalidInput) as refused:
        widget_settings_from_input({"group": "g", **settings})
    assert refused.value.field == field


def test_the_placeholder_waits_in_the_callers_place_for_the_widgets_wait():
    from callengine.dispatch import QUEUE_ROW_GRACE_S, queue_placeholder
    from callengine.flow import Strategy
    from callengine.model import Group
    from callengine.model import Consent, Lead

    w = widget(queue_wait_s=900)
    group = Group("g", Strategy.ROUND_ROBIN, 20, accept_digit="1")
    lead = Lead("l1", "q", CALLER, "PL", "mobile", None, None, Consent(False, False, "v"),
                "queued", None, None, None, 0, 1000.0, 1000.0, None)
    waiting, (endpoint,) = queue_placeholder(lead, w, group, {"joined_at": 990.25}, 1001.0)
    assert endpoint == "Local/990.250-support@callengine-queue-callback/n"
    assert (waiting.strategy, waiting.ring_timeout, waiting.accept_digit) == (
        Strategy.SEQUENTIAL, 900, None)
    # its row not written yet: not dialled, until the grace is over (then by its creation)
    assert queue_placeholder(lead, w, group, None, 1001.0) is None
    late = queue_placeholder(lead, w, group, None, 1000.0 + QUEUE_ROW_GRACE_S)
    assert late[1] == ("Local/1000.000-support@callengine-queue-callback/n",)
    assert group.strategy is Strategy.ROUND_ROBIN  # the group itself is not changed


async def test_the_in_call_consent_is_exported_and_goes_with_its_lead(tmp_path):
    import time
    from callengine.access import Principal, Role
    from callengine.flow import Strategy
    from callengine.model import Consent
    from callengine.services.subjects import export_subject
    from callengine.storage import Store
    from tests.support.engine import DATA_KEY

    steps = [{"key": "1", "for": "callback", "at": 0.0},
             {"key": "1", "for": "confirm-number", "at": 3.5}]
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
        await store.add_group("g", Strategy.RING_ALL, 20, [])
        w = await store.add_widget("q", "Queue", widget().settings, time.time())
        lead = await store.create_lead(
            w, phone_e164=CALLER, phone_region="PL", phone_kind="mobile", name=None,
            email=None, consent=Consent(False, False, "queue-ivr-1"), now=time.time())
        await store.add_queue_callback(lead.id, "support", 990.25, {"steps": steps})
        exported = await export_subject(store, CALLER, Principal("dpo", Role.ADMIN),
                                        time.time(), vault=None)
        (view,) = exported["leads"]
        assert view["consent"]["by_phone"] == {"queue": "support", "joined_at": 990.25,
                                               "steps": steps}
        await store.purge_leads([lead.id], time.time(), reason="erasure")
        assert await store.queue_callbacks([lead.id]) == {}
