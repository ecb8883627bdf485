"""Channels the dialplan hands to the engine (callengine.inbound): each goes to the handler of
its purpose with its own events, strangers and failed dialogues are hung up, a caller's hang-up
ends the dialogue, and a channel that vanished while events were lost counts as ended. Fake ARI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.inbound import ChannelGone, InboundChannel, InboundHandler
from callengine.storage import Store
from tests.support.engine import DATA_KEY, poll
from tests.support.fake_ari import FakeAri


@asynccontextmanager
async def engine_with(tmp_path, ari: FakeAri, handlers: dict[str, InboundHandler]
                      ) -> AsyncIterator[Engine]:
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=3, poll_interval_s=0.05), inbound=handlers)
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.wait_for(engine.ready.wait(), 5)
            yield engine
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def hung_up(ari: FakeAri, channel_id: str):
    async def check() -> bool | None:
        return ("hangup", channel_id) in ari.calls or None
    return check


async def test_a_purpose_gets_its_channel_args_and_digits_and_the_channel_ends_after(tmp_path):
    ari = FakeAri()
    heard: list[object] = []

    async def collect(channel: InboundChannel) -> None:
        heard.append(channel.args)
        await channel.play("sound:beep")
        heard.append(await channel.digits(most=12, first_timeout=2, between_timeout=1))

    async with engine_with(tmp_path, ari, {"collect": collect}):
        ari.hand_over("1700000000.1", "PJSIP/caller", "collect", "sales", "17")
        await poll(lambda: _async(("play", "1700000000.1") in [c[:2] for c in ari.calls] or None))
        ari.press("1700000000.1", "601#9")
        await poll(hung_up(ari, "1700000000.1"))
    assert heard == [("sales", "17"), "601"]


async def test_a_stranger_and_an_unknown_purpose_are_hung_up(tmp_path):
    ari = FakeAri()
    async with engine_with(tmp_path, ari, {"collect": _never}):
        ari.hand_over("1700000000.2", "PJSIP/caller")
        ari.hand_over("1700000000.3", "PJSIP/caller", "no-such-purpose")
        await poll(hung_up(ari, "1700000000.2"))
        await poll(hung_up(ari, "1700000000.3"))


async def test_a_failing_handler_hangs_its_channel_up_and_the_engine_goes_on(tmp_path):
    ari = FakeAri()

    async def broken(channel: InboundChannel) -> None:
        raise RuntimeError("bug")

    async with engine_with(tmp_path, ari, {"broken": broken, "collect": _never}) as engine:
        ari.hand_over("1700000000.4", "PJSIP/caller", "broken")
        await poll(hung_up(ari, "1700000000.4"))
        assert engine.ready.is_set()


def waiting_for_a_digit(ended: list[str]):
    """A handler that waits for a digit and notes the channels that went meanwhile."""
    async def waits(channel: InboundChannel) -> None:
        try:
            await channel.digit(30)
        except ChannelGone:
            ended.append(channel.channel_id)
            raise
    return waits


async def test_the_callers_hang_up_ends_the_dialogue_without_a_hangup_request(tmp_path):
    ari = FakeAri()
    ended: list[str] = []
    waits = waiting_for_a_digit(ended)
    async with engine_with(tmp_path, ari, {"waits": waits}):
        ari.hand_over("1700000000.5", "PJSIP/caller", "waits")
        await asyncio.sleep(0.1)
        ari.reject("1700000000.5", 16, "Normal Clearing")
        await poll(lambda: _async(ended or None))
        await asyncio.sleep(0.1)
    assert ended == ["1700000000.5"]
    assert ("hangup", "1700000000.5") not in ari.calls


async def test_a_channel_gone_while_events_were_lost_ends_its_dialogue(tmp_path):
    ari = FakeAri()
    ended: list[str] = []
    waits = waiting_for_a_digit(ended)
    async with engine_with(tmp_path, ari, {"waits": waits}):
        ari.hand_over("1700000000.6", "PJSIP/caller", "waits")
        await asyncio.sleep(0.1)
        ari.reconnect(vanished=("1700000000.6",))
        await poll(lambda: _async(ended or None))


async def test_an_interruptible_prompt_stops_at_a_digit(tmp_path):
    ari = FakeAri()
    ari.play_finishes = False
    got: list[str | None] = []

    async def prompt(channel: InboundChannel) -> None:
        got.append(await channel.play("sound:long", interruptible=True))

    async with engine_with(tmp_path, ari, {"prompt": prompt}):
        ari.hand_over("1700000000.7", "PJSIP/caller", "prompt")
        await poll(lambda: _async(ari.requests("play") or None))
        ari.press("1700000000.7", "1")
        await poll(hung_up(ari, "1700000000.7"))
    assert got == ["1"]
    assert len(ari.requests("stop_playback")) == 1


async def _never(channel: InboundChannel) -> None:
    raise AssertionError("not this purpose")


async def _async(value):
    return value
