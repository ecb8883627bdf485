"""Logging set-up for the entry points, with a last line of defence for phone numbers.

Code never logs a full number on purpose (calls log lead ids, numbers are masked); what a
visitor sends can still reach a log line (aiohttp's errors quote a bad request line, a
traceback names a bad header). So every process's entry point (`callengine run`, the purge
child, the CLI) calls `install_redaction`, which masks numbers in every record of every logger
as it is made -- its message, its arguments, its exception text and its stack -- and in the
tracebacks Python prints itself (uncaught exceptions, in any thread). `setup_logging` adds the
engine's one handler, whose formatter masks again (a record made elsewhere, say by a record
factory installed later, is masked as it is written).

What counts as a full number (docs/config.md, "Logs"): a run of digits standing alone (not
part of a word, a hex id or a dashed id), single spaces or dashes allowed between the digits:
- written with an international prefix ("+", "00" or the URL-encoded "%2B") and 7 to 15
  digits: always masked, valid or not;
- without a prefix, 9 to 15 digits and no separator (a national number, or E.164 without "+"):
  always masked;
- without a prefix, with separators, 9 to 15 digits: masked when it reads as a valid number
  with a "+" in front, or when it starts with a 0 (a national trunk prefix).
Dates, times (1700000000.123 too), IP addresses, durations and UUIDs are left alone.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
import threading
import time
import traceback
from types import TracebackType

import phonenumbers

from callengine.numbers import mask

# not part of a word, a dashed id or a decimal fraction (1700000000.123 is a time)
_STANDALONE_BEFORE = r"(?<![\w\-])(?<!\d\.)"
_STANDALONE_AFTER = r"(?![\w\-]|\.\d)"
_NUMBER = re.compile(
    rf"%2[bB]\d(?:[ \-]?\d){{6,14}}{_STANDALONE_AFTER}"  # URL-encoded "+": the "B" is a letter
    rf"|{_STANDALONE_BEFORE}(?:\+|00)?\d(?:[ \-]?\d){{6,14}}{_STANDALONE_AFTER}"
)


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    prefix = next((p for p in ("+", "%2B", "%2b", "00") if token.startswith(p)), "")
    digits = re.sub(r"\D", "", token[len(prefix):])
    if prefix:
        return mask("+" + digits)
    if len(digits) < 9:
        return token
    if token.isdigit() or token.startswith("0") or _valid_international(digits):
        return _mask_bare(digits)
    # Separated groups that are no number together: each group may still be one on its own.
    return re.sub(r"\d{9,15}", lambda group: _mask_bare(group.group(0)), token)


def _mask_bare(digits: str) -> str:
    return "*" * (len(digits) - 3) + digits[-3:]


def _valid_international(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return False


def redact(text: str) -> str:
    """`text` with every full number masked (see the module's docstring)."""
    return _NUMBER.sub(_mask_match, text)


def redact_record(record: logging.LogRecord,
                  format_exception=logging.Formatter().formatException) -> logging.LogRecord:
    """The record with its message (arguments merged in), exception text and stack masked.
    Changes `record` itself (a record is made once and then only read)."""
    try:
        message = record.getMessage()
    except Exception:  # a broken record: logging reports it as it formats; keep it as it is
        return record
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = format_exception(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFormatter(logging.Formatter):
    """Formats a masked copy of the record (the timestamp and names are not masked)."""

    def format(self, record: logging.LogRecord) -> str:
        clean = copy.copy(record)
        if clean.exc_info and not clean.exc_text:
            clean.exc_text = self.formatException(clean.exc_info)
        return super().format(redact_record(clean))


_LEAD = re.compile(r"\[lead ([0-9a-f-]{36})(?: #(\d+))?\]")


class JsonFormatter(logging.Formatter):
    """One JSON object a line (`[log] format = "json"`): time (UTC, ISO 8601), level, logger,
    message, and for a line about a call its `lead_id` (and `attempt`) as fields of their own,
    from CallLog's record attributes or the message's "[lead …]" prefix. Masked like the text
    format: the message and the exception text go through redact_record."""

    def format(self, record: logging.LogRecord) -> str:
        clean = copy.copy(record)
        if clean.exc_info and not clean.exc_text:
            clean.exc_text = self.formatException(clean.exc_info)
        clean = redact_record(clean)
        message = clean.getMessage()
        line: dict[str, object] = {
            "time": self.formatTime(clean, "%Y-%m-%dT%H:%M:%S") + f".{int(clean.msecs):03d}Z",
            "level": clean.levelname, "logger": clean.name, "message": message,
        }
        lead, attempt = getattr(clean, "lead_id", None), getattr(clean, "attempt", None)
        if lead is None and (found := _LEAD.search(message)) is not None:
            lead, attempt = found.group(1), found.group(2) and int(found.group(2))
        if lead is not None:
            line["lead_id"] = lead
            if attempt is not None:
                line["attempt"] = attempt
        if clean.exc_text:
            line["exception"] = clean.exc_text
        if clean.stack_info:
            line["stack"] = clean.stack_info
        return json.dumps(line, ensure_ascii=False)

    converter = staticmethod(time.gmtime)


def _redacting_factory(make: logging._LogRecordFactory) -> logging._LogRecordFactory:
    def factory(*args, **kwargs) -> logging.LogRecord:
        return redact_record(make(*args, **kwargs))

    factory.redacting = True  # type: ignore[attr-defined]
    return factory


def _print_redacted(exc_type: type[BaseException], exc: BaseException,
                    tb: TracebackType | None) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(redact(text))
    sys.stderr.flush()


def _thread_excepthook(hook_args: threading.ExceptHookArgs) -> None:
    if hook_args.exc_type is SystemExit:
        return
    name = hook_args.thread.name if hook_args.thread is not None else "?"
    sys.stderr.write(f"Exception in thread {name}:\n")
    _print_redacted(hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback)


def install_redaction() -> None:
    """Mask numbers in every log record this process makes, whichever logger and handler
    (its own, aiohttp's, a library's with its own handlers, logging's last resort), and in the
    tracebacks Python prints for uncaught exceptions. Idempotent. For entry points only: the
    test suite runs without it, to see what the code itself logs."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacting", False):
        logging.setLogRecordFactory(_redacting_factory(current))
    sys.excepthook = _print_redacted
    threading.excepthook = _thread_excepthook
    logging.captureWarnings(True)  # warnings become records, so they are masked too


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """The engine's one handler on stderr: text lines, or JSON lines (`fmt` "json")."""
    install_redaction()
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if fmt == "json"
        else RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # No access log: it would list every visitor's address and request line (the engine's own
    # lines name the lead instead). callengine.web.server also starts aiohttp without one.
    logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL + 1)
