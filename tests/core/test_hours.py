"""Calling hours (callengine.hours): open/closed, the next opening, slots — DST and holidays."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callengine.errors import InvalidInput
from callengine.flow import Outcome, Result
from callengine.hours import calendar, check_holidays, check_hours, check_time_zone
from callengine.model import WidgetSettings, widget_settings_from_input
from callengine.policy import retry_at

WAW = ZoneInfo("Europe/Warsaw")
WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=WAW).timestamp()


def test_default_is_always_open():
    cal = WidgetSettings(group="g").calendar()
    assert cal.is_open(0) and cal.is_open(1.7e9)
    assert cal.next_opening(1.7e9) == 1.7e9


@pytest.mark.parametrize("moment, expected", [
    ("2026-12-01 08:59", False), ("2026-12-01 09:00", True), ("2026-12-01 16:59", True),
    ("2026-12-01 17:00", False), ("2026-12-05 12:00", False),  # a Saturday
    ("2026-12-25 12:00", False),  # holiday
])
def test_is_open(moment, expected):
    cal = calendar("Europe/Warsaw", WEEKDAYS, ["2026-12-25"])
    assert cal.is_open(at(moment)) is expected


@pytest.mark.parametrize("moment, opening", [
    ("2026-12-01 07:00", "2026-12-01 09:00"),
    ("2026-12-01 18:00", "2026-12-02 09:00"),
    ("2026-12-04 18:00", "2026-12-07 09:00"),  # Friday evening → Monday
    ("2026-12-24 18:00", "2026-12-28 09:00"),  # holiday Friday 25th
    ("2026-12-01 10:00", "2026-12-01 10:00"),  # open: now
])
def test_next_opening(moment, opening):
    cal = calendar("Europe/Warsaw", {**WEEKDAYS, "fri": [["09:00", "12:00"], ["13:00", "17:00"]]},
                   ["2026-12-25"])
    assert cal.next_opening(at(moment)) == at(opening)


def test_never_open_has_no_opening():
    assert calendar("UTC", {}, []).next_opening(0) is None


def test_spring_forward_in_warsaw():
    # 2026-03-29: 02:00 CET → 03:00 CEST. 01:00–04:00 lasts two real hours; 02:00–03:00 none.
    cal = calendar("Europe/Warsaw", {"sun": [["01:00", "04:00"]]}, [])
    (a, b), = cal.intervals(datetime(2026, 3, 29).date())
    assert b - a == 2 * 3600
    assert calendar("Europe/Warsaw", {"sun": [["02:00", "03:00"]]}, []).intervals(
        datetime(2026, 3, 29).date()) == []
    slots = cal.slots(at("2026-03-28 12:00"), 2, 60)
    assert [s.end - s.start for s in slots] == [3600, 3600]
    assert slots[0].start == at("2026-03-29 01:00")


def test_fall_back_in_warsaw():
    # 2026-10-25: 03:00 CEST → 02:00 CET. 01:00–04:00 lasts four real hours: four 1-h slots.
    cal = calendar("Europe/Warsaw", {"sun": [["01:00", "04:00"]]}, [])
    slots = cal.slots(at("2026-10-24 12:00"), 2, 60)
    assert len(slots) == 4 and slots[-1].end == at("2026-10-25 04:00")
    assert cal.is_open(at("2026-10-25 03:30"))


def test_midnight_is_two_intervals():
    cal = calendar("Europe/Warsaw", {"mon": [["22:00", "24:00"]], "tue": [["00:00", "02:00"]]}, [])
    assert cal.is_open(at("2026-11-30 23:30")) and cal.is_open(at("2026-12-01 01:30"))
    assert not cal.is_open(at("2026-12-01 02:00"))
    with pytest.raises(InvalidInput, match="crossing midnight"):
        check_hours({"mon": [["22:00", "02:00"]]})


def test_slots_are_whole_and_after_now():
    cal = calendar("Europe/Warsaw", {"tue": [["09:00", "10:45"]]}, [])
    slots = cal.slots(at("2026-12-01 09:10"), 1, 30)
    assert [s.start for s in slots] == [at("2026-12-01 09:30"), at("2026-12-01 10:00")]


@pytest.mark.parametrize("settings, field", [
    ({"time_zone": "Mars/Olympus"}, "time_zone"), ({"time_zone": ""}, "time_zone"),
    ({"hours": {"mon": [["9:00", "17:00"]]}}, "hours"), ({"hours": {"xyz": []}}, "hours"),
    ({"hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "hours"),
    ({"holidays": ["2026-02-30"]}, "holidays"), ({"slot_minutes": 0}, "slot_minutes"),
    ({"slot_capacity": -1}, "slot_capacity"), ({"slot_days": 0}, "slot_days"),
])
def test_bad_settings_are_refused(settings, field):
    with pytest.raises(InvalidInput) as refused:
        widget_settings_from_input({"group": "g", **settings})
    assert refused.value.field == field


def test_settings_round_trip():
    s = widget_settings_from_input({"group": "g", "time_zone": "Europe/Warsaw",
                                    "hours": WEEKDAYS, "holidays": ["2026-12-25"]})
    assert widget_settings_from_input(s.to_json()) == s
    assert check_time_zone("UTC") == "UTC" and check_holidays("2026-01-01") == ("2026-01-01",)


@pytest.mark.parametrize("ended, expected", [
    ("2026-12-01 10:00", "2026-12-01 10:02"),  # inside: the retry rules as before
    ("2026-12-01 16:59", "2026-12-02 09:00"),  # the retry would fall after closing
    ("2026-12-04 16:59", "2026-12-07 09:00"),  # … on a Friday
])
def test_retry_stays_inside_hours(ended, expected):
    settings = WidgetSettings(group="g", max_attempts=3, retry_delay_s=120,
                              time_zone="Europe/Warsaw", hours=WEEKDAYS)
    result = Result(Outcome.AGENTS_NO_ANSWER, retryable=True)
    assert retry_at(result, settings, 1, at(ended)) == at(expected)
