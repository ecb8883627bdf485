"""The retry decision (callengine.policy.retry_at), table-driven."""

from __future__ import annotations

import pytest

from callengine.flow import Outcome, Result
from callengine.model import WidgetSettings
from callengine.policy import retry_at

NOW = 1_000.0
DEFAULTS = WidgetSettings(group="g", max_attempts=3, retry_delay_s=120)


@pytest.mark.parametrize(
    "outcome, retryable, attempt_number, settings, expected",
    [
        # retried: retryable, an outcome the widget retries on, attempts left
        (Outcome.AGENTS_NO_ANSWER, True, 1, DEFAULTS, NOW + 120),
        (Outcome.AGENTS_BUSY, True, 2, DEFAULTS, NOW + 120),
        (Outcome.FAILED, True, 1, DEFAULTS, NOW + 120),
        (Outcome.FAILED, True, 1, WidgetSettings(group="g", max_attempts=2, retry_delay_s=5),
         NOW + 5),
        # the last attempt: closed
        (Outcome.AGENTS_NO_ANSWER, True, 3, DEFAULTS, None),
        (Outcome.AGENTS_NO_ANSWER, True, 4, DEFAULTS, None),
        # the default widget tries once
        (Outcome.AGENTS_NO_ANSWER, True, 1, WidgetSettings(group="g"), None),
        # not retryable (somebody reached the visitor): closed whatever the outcome
        (Outcome.FAILED, False, 1, DEFAULTS, None),
        (Outcome.CONNECTED, False, 1, DEFAULTS, None),
        (Outcome.VISITOR_NO_ANSWER, False, 1, DEFAULTS, None),
        # retryable, but not an outcome the widget retries on
        (Outcome.VISITOR_BUSY, True, 1, DEFAULTS, None),
        (Outcome.FAILED, True, 1,
         WidgetSettings(group="g", max_attempts=3, retry_on=("agents-busy",)), None),
        (Outcome.AGENTS_BUSY, True, 1,
         WidgetSettings(group="g", max_attempts=3, retry_on=("agents-busy",)), NOW + 120),
    ],
)
def test_retry_at(outcome, retryable, attempt_number, settings, expected):
    result = Result(outcome, retryable=retryable)
    assert retry_at(result, settings, attempt_number, NOW) == expected
