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


# ---- the retry schedule per outcome (retry_schedule) ----------------------------------------

SCHEDULED = WidgetSettings(
    group="g", max_attempts=6, retry_on=("failed",), retry_delay_s=60,
    retry_schedule={"agents-no-answer": [120, 300, 900],
                    "visitor-busy": {"delays": [300, 900], "max_retries": 2},
                    "visitor-no-answer": {"delays": [1800], "max_retries": 0}})
NA, VB = Outcome.AGENTS_NO_ANSWER.value, Outcome.VISITOR_BUSY.value


@pytest.mark.parametrize("outcome, attempt_number, earlier, expected", [
    (Outcome.AGENTS_NO_ANSWER, 1, [], NOW + 120),  # the n-th time it ended so: the n-th wait
    (Outcome.AGENTS_NO_ANSWER, 2, [NA], NOW + 300),
    (Outcome.AGENTS_NO_ANSWER, 3, [NA, NA], NOW + 900),
    (Outcome.AGENTS_NO_ANSWER, 5, [NA, NA, NA, NA], NOW + 900),  # the last repeated
    (Outcome.AGENTS_NO_ANSWER, 6, [NA] * 5, None),  # max_attempts overall
    (Outcome.AGENTS_NO_ANSWER, 2, [VB], NOW + 120),  # counted per outcome
    (Outcome.VISITOR_BUSY, 2, [NA], NOW + 300),
    (Outcome.VISITOR_BUSY, 3, [VB, NA], NOW + 900),
    (Outcome.VISITOR_BUSY, 3, [VB, VB], None),  # its max_retries
    (Outcome.VISITOR_NO_ANSWER, 1, [], None),  # max_retries 0: never
    (Outcome.FAILED, 1, [], NOW + 60),  # not named: the simple form
    (Outcome.AGENTS_BUSY, 1, [], None),  # neither named nor in retry_on
    (Outcome.VISITOR_UNREACHABLE, 1, [], None),
])
def test_retry_schedule(outcome, attempt_number, earlier, expected):
    result = Result(outcome, retryable=True)
    assert retry_at(result, SCHEDULED, attempt_number, NOW, earlier) == expected


def test_a_scheduled_retry_outside_the_hours_moves_to_the_next_opening():
    settings = WidgetSettings(group="g", max_attempts=3, time_zone="UTC",
                              hours={"thu": [["09:00", "10:00"]]},
                              retry_schedule={"agents-busy": [600]})
    thursday_0955 = 1_764_842_100.0  # 2025-12-04 09:55 UTC
    thursday_next_week_0900 = 1_765_443_600.0  # 2025-12-11 09:00 UTC
    result = Result(Outcome.AGENTS_BUSY, retryable=True)
    assert retry_at(result, settings, 1, thursday_0955) == thursday_next_week_0900
    assert retry_at(result, settings, 1, thursday_0955 - 600) == thursday_0955


@pytest.mark.parametrize("schedule, says", [
    ({"connected": [60]}, "not an outcome"),
    ({"visitor-busy": []}, "list of 1 to 10"),
    ({"visitor-busy": [60, -1]}, "list of 1 to 10"),
    ({"visitor-busy": [86401]}, "list of 1 to 10"),
    ({"visitor-busy": [True]}, "list of 1 to 10"),
    ({"visitor-busy": {"delays": [60], "max_retries": 11}}, "max_retries"),
    ({"visitor-busy": {"delays": [60], "tries": 1}}, "expected"),
    ({"visitor-busy": {"max_retries": 1}}, "expected"),
    ([60], "must be an object"),
])
def test_a_refused_schedule_says_why(schedule, says):
    from callengine.errors import InvalidInput
    from callengine.model import widget_settings_from_input

    with pytest.raises(InvalidInput) as refused:
        widget_settings_from_input({"group": "g", "retry_schedule": schedule})
    assert refused.value.field == "retry_schedule" and says in refused.value.message


def test_a_schedule_is_kept_as_given():
    from callengine.model import widget_settings_from_input

    schedule = {"visitor-busy": [60, 120], "agents-busy": {"delays": [5], "max_retries": 1}}
    settings = widget_settings_from_input({"group": "g", "retry_schedule": schedule})
    assert settings.retry_schedule == schedule
    assert settings.to_json()["retry_schedule"] == schedule
