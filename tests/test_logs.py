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


@pytest.fixture
def entry_point_logging():
    """setup_logging as an entry point runs it, undone afterwards (the suite runs without)."""
    import sys
    import threading

    from callengine.logs import setup_logging

    root = logging.getLogger()
    saved = (logging.getLogRecordFactory(), root.handlers[:], root.level, sys.excepthook,
             threading.excepthook)
    setup_logging("DEBUG")
    try:
        yield root.handlers[0]
    finally:
        logging.setLogRecordFactory(saved[0])
        root.handlers[:], root.level = saved[1], saved[2]
        sys.excepthook, threading.excepthook = saved[3], saved[4]
        logging.captureWarnings(False)


def test_every_logger_handler_and_traceback_is_masked(entry_point_logging):
    import io

    ours = io.StringIO()
    entry_point_logging.stream = ours
    theirs = io.StringIO()
    own = logging.getLogger("somelib.child")
    own.propagate = False
    own.addHandler(logging.StreamHandler(theirs))  # a library's own handler and formatter
    try:
        logging.getLogger("aiohttp.server").error("bad line %s", "FOO /x?phone=+48601777555")
        try:
            raise LookupError("unknown encoding: +48601777666")
        except LookupError:
            logging.getLogger("callengine.web.problems").exception("unhandled")
            own.exception("theirs 0048601777667")
        logging.getLogger("callengine.x.y").warning("stack", stack_info=True,
                                                    extra={"n": "+48601777668"})
    finally:
        own.removeHandler(own.handlers[0])
        own.propagate = True
    text = ours.getvalue() + theirs.getvalue()
    assert "unknown encoding: +48 *** *** 666" in text and "Traceback" in text
    assert "+48 *** *** 555" in text and "stack" in text
    assert not full_numbers_in(text), text


@pytest.mark.parametrize("line, masked", [
    ("x 48601777555 y", "x ********555 y"),  # E.164 without "+"
    ("x 601777555 y", "x ******555 y"),  # national, unseparated
    ("x 0601 777 555 y", "x *******555 y"),  # national with a trunk 0
    ("x 48 601 777 555 y", "x ********555 y"),  # valid read with "+"
    ("q=%2B48601777555&", "q=+48 *** *** 555&"),  # URL-encoded "+"
    ("x 12 601777555 y", "x 12 ******555 y"),  # a number inside groups that are none
])
def test_what_counts_as_a_full_number(line, masked):
    assert redact(line) == masked


@pytest.mark.parametrize("line", [
    "at 2026-12-01 20:44:00 UTC", "talk 12.345 s at 1700000000.123", "from 192.168.100.200:8080",
    "lead 12345678-4771-9603-1700-123456789012", "pid 4242 port 18911",
])
def test_what_is_left_alone(line):
    assert redact(line) == line


def test_json_lines_carry_the_lead_id_and_mask_numbers():
    """[log] format = "json": one object a line; a call's line names its lead and attempt as
    fields (CallLog's attributes, or the "[lead …]" prefix of a line logged without it)."""
    import io
    import json as json_

    from callengine.calls import CallLog
    from callengine.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("callengine.test-json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    lead = "01a2350f-fef9-74d6-95ca-91d861f3b772"
    try:
        CallLog(logger, {"lead": lead, "attempt": 2}).info("dialling %s", "+48 601 234 567")
        logger.warning("[lead %s] widget shop records, but no key", lead)
        logger.info("HTTP API on 127.0.0.1:8080")
    finally:
        logger.removeHandler(handler)
    first, second, third = (json_.loads(line) for line in stream.getvalue().splitlines())
    assert (first["lead_id"], first["attempt"], first["level"]) == (lead, 2, "INFO")
    assert "601 234 567" not in first["message"] and first["message"].endswith("567")
    assert second["lead_id"] == lead and "attempt" not in second
    assert "lead_id" not in third and third["time"].endswith("Z")
