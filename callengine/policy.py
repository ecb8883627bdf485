"""Decisions beside the call flow that need no I/O: whether and when a lead is called again."""

from __future__ import annotations

from callengine.flow import Result
from callengine.model import WidgetSettings


def retry_at(result: Result, settings: WidgetSettings, attempt_number: int,
             now: float) -> float | None:
    """When to call the lead again after attempt `attempt_number` ended with `result`, or None
    to close it: only a retryable result whose outcome the widget retries on, while attempts
    are left (max_attempts counts them all, the first included). A retry that falls outside
    the widget's calling hours moves to their next opening (closed for good: None)."""
    if (
        result.retryable
        and result.outcome.value in settings.retry_on
        and attempt_number < settings.max_attempts
    ):
        return settings.calendar().next_opening(now + settings.retry_delay_s)
    return None
