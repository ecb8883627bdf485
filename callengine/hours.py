"""A widget's calling hours: when visitors may be called, the next opening, and the slots a
visitor may pick for a scheduled callback. Pure (no I/O): times are epoch seconds, the hours
are wall-clock times in the widget's IANA time zone (zoneinfo).

Rules (docs/config.md):
- `hours` None = always open (the default, as before hours existed); otherwise a mapping of
  "mon".."sun" to a list of ["HH:MM", "HH:MM"] intervals; a day missing or empty is closed.
  An interval ends after it starts on the same day; "24:00" ends at midnight. An interval
  crossing midnight is written as two (["22:00","24:00"] and the next day's ["00:00","02:00"]).
- `holidays`: local dates "YYYY-MM-DD", closed all day.
- DST: intervals are wall-clock. A time that doesn't exist on a spring-forward day is read
  with the offset before the change (02:30 in Warsaw on that day is 03:30 CEST), so an
  interval 02:00–03:00 is empty that day and 01:00–04:00 lasts two real hours. A time that
  exists twice on a fall-back day is its first occurrence (01:00–04:00 lasts four hours).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callengine.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEARCH_DAYS = 400  # how far next_opening looks: beyond a year of holidays, it is never open
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Slot:
    start: float
    end: float


@dataclass(frozen=True)
class Calendar:
    time_zone: str = "UTC"
    # day index (0 = Monday) → ((start minute, end minute), ...); None = always open
    weekly: tuple[tuple[tuple[int, int], ...], ...] | None = None
    holidays: frozenset[str] = frozenset()

    @property
    def always_open(self) -> bool:
        return self.weekly is None and not self.holidays

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def _local_date(self, at: float) -> date:
        return datetime.fromtimestamp(at, self._zone()).date()

    def intervals(self, day: date) -> list[tuple[float, float]]:
        """The open intervals of local date `day`, as epoch (start, end), empty ones dropped."""
        return list(_intervals(self, day))

    def _from(self, at: float, days: int) -> Iterator[tuple[float, float]]:
        first = self._local_date(at) - timedelta(days=1)
        for n in range(days + 1):
            yield from self.intervals(first + timedelta(days=n))

    def is_open(self, at: float) -> bool:
        if self.always_open:
            return True
        return any(a <= at < b for a, b in self._from(at, 2))

    def next_opening(self, after: float) -> float | None:
        """The first moment at or after `after` when calls may be made (`after` itself when
        open), or None if it never opens within SEARCH_DAYS."""
        if self.weekly is None and not self.holidays:
            return after
        for a, b in self._from(after, SEARCH_DAYS):
            if b > after:
                return max(a, after)
        return None

    def slots(self, after: float, days: int, minutes: int) -> list[Slot]:
        """Whole slots of `minutes` inside the open intervals, starting after `after`, on the
        local dates from `after`'s to `days` - 1 later. Slots start at each interval's start."""
        if days <= 0 or minutes <= 0:
            return []
        step = minutes * 60
        today = self._local_date(after)
        found: list[Slot] = []
        for n in range(days):
            for a, b in self.intervals(today + timedelta(days=n)):
                start = a
                while start + step <= b:
                    if start > after:
                        found.append(Slot(start, start + step))
                    start += step
        return found


def _epoch(day: date, minute: int, zone: ZoneInfo) -> float:
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    # fold=0 for times that don't exist (spring forward): the offset before the change;
    # and the first of times that exist twice (fall back). Round-trip through UTC.
    return local.astimezone(timezone.utc).timestamp()


# ---- settings -----------------------------------------------------------------------------


def check_time_zone(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise InvalidInput("time_zone", "must be an IANA time zone like Europe/Warsaw")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput("time_zone", f"{value!r} is not a known IANA time zone") from None
    return value


def check_hours(value: Any) -> dict[str, list[list[str]]] | None:
    """The weekly hours setting, normalised (None = always open)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput("hours", 'must be an object like {"mon": [["09:00", "17:00"]]}')
    out: dict[str, list[list[str]]] = {}
    for day, spans in value.items():
        if day not in DAYS:
            raise InvalidInput("hours", f"{day!r} is not one of {', '.join(DAYS)}")
        if not isinstance(spans, Sequence) or isinstance(spans, str) or len(spans) > 24:
            raise InvalidInput("hours", f"{day}: must be a list of [start, end] pairs")
        parsed = []
        for span in spans:
            if (not isinstance(span, Sequence) or isinstance(span, str) or len(span) != 2
                    or not all(isinstance(t, str) and _HHMM.match(t) for t in span)):
                raise InvalidInput("hours", f"{day}: each interval is [\"HH:MM\", \"HH:MM\"]")
            start, end = (_minute(t) for t in span)
            if start >= end:
                raise InvalidInput("hours", f"{day}: {span[0]}–{span[1]} must end after it"
                                   " starts (split an interval crossing midnight in two)")
            parsed.append((start, end, [span[0], span[1]]))
        parsed.sort()
        for (_, end, _s), (start, _, span) in zip(parsed, parsed[1:]):
            if start < end:
                raise InvalidInput("hours", f"{day}: intervals overlap at {span[0]}")
        out[day] = [p[2] for p in parsed]
    return out


def check_holidays(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or len(value) > 1000:
        raise InvalidInput("holidays", "must be a list of dates YYYY-MM-DD")
    for item in value:
        try:
            if not isinstance(item, str) or not _DATE.match(item):
                raise ValueError
            date.fromisoformat(item)
        except ValueError:
            raise InvalidInput("holidays", f"{item!r} is not a date YYYY-MM-DD") from None
    return tuple(sorted(set(value)))



# Every lead asks whether its widget is open now: a day's intervals (zone arithmetic) are worked
# out once per calendar and date. The calendar is frozen (hashable); a settings change makes a
# new one.
@functools.lru_cache(maxsize=4096)
def _intervals(calendar: Calendar, day: date) -> tuple[tuple[float, float], ...]:
    if day.isoformat() in calendar.holidays:
        return ()
    spans = ((0, 1440),) if calendar.weekly is None else calendar.weekly[day.weekday()]
    zone = calendar._zone()
    out = []
    for start, end in spans:
        a, b = _epoch(day, start, zone), _epoch(day, end, zone)
        if b > a:
            out.append((a, b))
    return tuple(out)

def calendar(time_zone: str, hours: Mapping[str, Any] | None,
             holidays: Sequence[str]) -> Calendar:
    """The Calendar of checked settings."""
    weekly = None
    if hours is not None:
        weekly = tuple(
            tuple((_minute(a), _minute(b)) for a, b in hours.get(day, ())) for day in DAYS)
    return Calendar(time_zone, weekly, frozenset(holidays))


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)
