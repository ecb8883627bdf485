"""The log check itself must be able to fail: it finds numbers in the shapes code might log."""

from __future__ import annotations

import logging

import pytest

from callengine.logs import redact
from tests.support.logcheck import full_numbers_in


@pytest.mark.parametrize("line", [
    "calling +48601234567", "dial PJSIP/+48601234567@pstn", "number 0048 601 234 567",
    "visitor 48601234567 busy", "+1 415-555-0132 rang",
])
def test_detects_full_numbers(line):
    assert full_numbers_in(line)


@pytest.mark.parametrize("line", [
    "[lead 3f2a51c0-1a2b-4c3d-9e8f-123456789abc #1] ringing", "number +48 *** *** 567",
    "talk 12.345 s at 1700000000.123", "channel ce-2f81588a7b0e4fa5b0acc9c945cad4ae",
    "bridge 3b1f2c44-4771-9603-17ab-5c2d1e0f9a8b", "lead 12345678-4771-9603-1700-123456789012",
])
def test_leaves_other_lines_alone(line):
    assert not full_numbers_in(line)


def test_entry_point_filter_masks_what_slips_through():
    assert redact("dial PJSIP/+48601234567@pstn") == "dial PJSIP/+48 *** *** 567@pstn"
    assert not full_numbers_in(redact("x 0048601234567 y"))


def test_check_catches_a_leak(no_phone_numbers_in_logs):
    logging.getLogger("callengine.test").info("oops +48601234567")
    assert any(full_numbers_in(line) for line in no_phone_numbers_in_logs.lines)
    no_phone_numbers_in_logs.lines.clear()  # this test leaked on purpose
