"""A widget's retry schedule per outcome (docs/config.md "Retries"): its shape, checked, and
the wait it gives. Pure, no I/O; callengine.policy decides with it.

    "retry_schedule": {
        "agents-no-answer": [120, 300, 900],
        "visitor-busy": {"delays": [300, 900], "max_retries": 2}
    }

An outcome named here is retried after it (named in `retry_on` or not): the n-th time the
lead's attempts ended with it, the lead waits the n-th delay (seconds; the last one repeated),
at most `max_retries` times after that outcome (none: until `max_attempts` is reached; 0: never
after it). An outcome not named keeps the simple form: `retry_delay_s` if it is in `retry_on`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from callengine.errors import InvalidInput

FIELD = "retry_schedule"
MAX_DELAY_S = 86400  # as retry_delay_s
MAX_DELAYS = 10  # as many as max_attempts allows retries, and one more
MAX_RETRIES = 10


@dataclass(frozen=True)
class Rule:
    delays: tuple[int, ...]
    max_retries: int | None = None  # None: as many as max_attempts allows

    def delay(self, occurrence: int) -> int | None:
        """The wait before the retry after the `occurrence`-th attempt (1: the first) that
        ended with this rule's outcome; None: no retry after that one."""
        if occurrence < 1 or (self.max_retries is not None and occurrence > self.max_retries):
            return None
        return self.delays[min(occurrence, len(self.delays)) - 1]


def rule_for(schedule: Mapping[str, Any], outcome: str) -> Rule | None:
    """The checked schedule's rule for `outcome` (None: the outcome is not named)."""
    entry = schedule.get(outcome)
    if entry is None:
        return None
    if isinstance(entry, Mapping):
        return Rule(tuple(entry["delays"]), entry.get("max_retries"))
    return Rule(tuple(entry))


def check_retry_schedule(value: Any, outcomes: Collection[str]) -> dict[str, Any]:
    """The schedule as given, checked (outcomes: the ones that may be retried); {} when none.
    Raises InvalidInput("retry_schedule", …) saying what is wrong."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(FIELD, "must be an object {outcome: [delays in seconds]}")
    checked: dict[str, Any] = {}
    for outcome, entry in value.items():
        if outcome not in outcomes:
            raise InvalidInput(FIELD, f"{outcome!r} is not an outcome that is retried; use "
                               f"{', '.join(sorted(outcomes))}")
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"delays", "max_retries"})
            if unknown or "delays" not in entry:
                raise InvalidInput(FIELD, f"{outcome}: expected {{\"delays\": [seconds, …],"
                                   " \"max_retries\": n}")
            delays = _delays(outcome, entry["delays"])
            if "max_retries" not in entry or entry["max_retries"] is None:
                checked[outcome] = {"delays": delays}
                continue
            retries = entry["max_retries"]
            if not _whole(retries) or not 0 <= retries <= MAX_RETRIES:
                raise InvalidInput(FIELD, f"{outcome}: max_retries must be a whole number"
                                   f" from 0 to {MAX_RETRIES}")
            checked[outcome] = {"delays": delays, "max_retries": retries}
        else:
            checked[outcome] = _delays(outcome, entry)
    return checked


def _delays(outcome: str, value: Any) -> list[int]:
    if (not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_DELAYS
            or not all(_whole(d) and 0 <= d <= MAX_DELAY_S for d in value)):
        raise InvalidInput(FIELD, f"{outcome}: expected a list of 1 to {MAX_DELAYS} delays,"
                           f" each a whole number of seconds from 0 to {MAX_DELAY_S}")
    return list(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
