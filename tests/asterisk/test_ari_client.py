"""The ARI client without Asterisk: HTTP statuses become the port's typed errors, the
add-to-bridge retry, and both the client and the shared fake match the ports' signatures."""

from __future__ import annotations

import inspect

import pytest

from callengine.asterisk import ari as ari_module
from callengine.asterisk.ari import AriClient, ari_error, retry_not_ready
from callengine.telephony import ExternalMedia, Gone, NotReady, Telephony, TelephonyError
from tests.support.fake_ari import FakeAri


@pytest.mark.parametrize("status, kind, unavailable", [
    (404, Gone, False), (422, NotReady, False), (500, TelephonyError, False),
    (409, TelephonyError, False), (0, TelephonyError, True),
])
def test_statuses_become_typed_errors(status, kind, unavailable):
    error = ari_error("POST", "/channels", status, "Allocation failed")
    assert type(error) is kind and error.unavailable is unavailable
    assert str(error) == f"ARI POST /channels → {status}: Allocation failed"
    assert error.reason == "Allocation failed"


def test_an_html_404_during_a_restart_is_gone_and_unavailable():
    error = ari_error("DELETE", "/channels/x", 404, "Not Found", unavailable=True)
    assert isinstance(error, Gone) and error.unavailable


class Flaky:
    def __init__(self, failures: int, error=NotReady):
        self.calls = 0
        self.failures = failures
        self.error = error

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error("ARI POST /bridges/b/addChannel → 422: Channel not in Stasis")


@pytest.fixture
def pauses(monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))

    monkeypatch.setattr(ari_module.asyncio, "sleep", sleep)
    return slept


async def test_not_ready_is_retried_with_a_growing_pause(pauses):
    add = Flaky(3)
    assert await retry_not_ready(add) == 4
    assert pauses == [0.1, 0.2, 0.3]


async def test_five_tries_at_most(pauses):
    add = Flaky(100)
    with pytest.raises(NotReady):
        await retry_not_ready(add)
    assert add.calls == 5 and pauses == [0.1, 0.2, 0.3, 0.4]


async def test_no_pause_past_the_timeout(pauses):
    add = Flaky(100)
    with pytest.raises(NotReady):
        await retry_not_ready(add, timeout=0.25)  # (the fake sleep takes no time)
    assert add.calls == 3 and pauses == [0.1, 0.2]


async def test_other_errors_are_not_retried(pauses):
    add = Flaky(1, error=Gone)
    with pytest.raises(Gone):
        await retry_not_ready(add)
    assert add.calls == 1 and pauses == []


def _parameters(function) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("implementation", [AriClient, FakeAri])
@pytest.mark.parametrize("port", [Telephony, ExternalMedia])
def test_implementations_match_the_ports(port, implementation):
    methods = [name for name, value in vars(port).items()
               if callable(value) and not name.startswith("_")]
    assert methods
    for name in methods:
        assert _parameters(getattr(implementation, name)) == _parameters(getattr(port, name)), name
