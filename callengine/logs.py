"""Logging set-up for the entry points, with a last line of defence for phone numbers.

Code never logs a full number on purpose (calls log lead ids, numbers are masked); the filter
below masks anything that still looks like an international number before it is written.
"""

from __future__ import annotations

import logging
import re

from callengine.numbers import mask

_NUMBER = re.compile(r"(?<![\w*])(?:\+|00)\d{7,15}(?!\d)")


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    return mask("+" + token[2:] if token.startswith("00") else token)


def redact(text: str) -> str:
    return _NUMBER.sub(_mask_match, text)


class RedactNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactNumbers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
