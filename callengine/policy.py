"""Decisions beside the call flow that need no I/O: whether and when a lead is called again."""

from __future__ import annotations

from collections.abc import Sequence

from callengine.flow import Result
from callengine.model import WidgetSettings
from callengine.retries import rule_for


def retry_at(result: Result, settings: WidgetSettings, attempt_number: int,
             now: float, earlier: Sequence[str | None] = ()) -> float | None:
    """When to call the lead again after attempt `attempt_number` ended with `result`, or None
    to close it: only a retryable result, while attempts are left (max_attempts counts them
    all, the first included), after an outcome the widget retries: one its retry_schedule
    names (the n-th time the lead's attempts ended with it waits its n-th delay, the last
    repeated, while its max_retries allows; `earlier`: the outcomes of the lead's attempts
    before this one), else one in retry_on (after retry_delay_s). A retry that falls outside
    the widget's calling hours moves to their next opening (closed for good: None)."""
    if not result.retryable or attempt_number >= settings.max_attempts:
        return None
    delay = retry_delay(result.outcome.value, settings, earlier)
    if delay is None:
        return None
    return settings.calendar().next_opening(now + delay)


def retry_delay(outcome: str, settings: WidgetSettings,
                earlier: Sequence[str | None] = ()) -> int | None:
    """The wait before the retry after an attempt that ended with `outcome` (None: none)."""
    rule = rule_for(settings.retry_schedule, outcome)
    if rule is not None:
        return rule.delay(1 + sum(1 for other in earlier if other == outcome))
    return settings.retry_delay_s if outcome in settings.retry_on else None


def needs_history(result: Result, settings: WidgetSettings) -> bool:
    """Whether retry_at needs the outcomes of the lead's earlier attempts for this result."""
    return result.retryable and result.outcome.value in settings.retry_schedule
