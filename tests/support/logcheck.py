"""Finding full phone numbers in text (log lines): the check the whole suite applies."""

from __future__ import annotations

import re

import phonenumbers

# A full number is a run of 9+ digits, separators allowed, that phonenumbers accepts as a valid
# number with a "+" (after dropping a 00 international prefix).
# The run must stand alone: not part of a longer word, hex string or dashed id (UUIDs hold
# runs like 4771-9603-17 that phonenumbers would accept).
_DIGIT_RUN = re.compile(r"(?<![\w\-])\+?\d[\d \-]{7,18}\d(?![\w\-])")


def full_numbers_in(text: str) -> list[str]:
    found = []
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if digits.startswith("00"):
            digits = digits[2:]
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse("+" + digits)):
                found.append(match.group(0))
        except phonenumbers.NumberParseException:
            pass
    return found
