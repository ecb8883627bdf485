"""Checks of single input values shared by the records' validation (callengine.model,
callengine.appearance): one line of printable text, a whole number in a range."""

from __future__ import annotations

import unicodedata
from typing import Any

from callengine.errors import InvalidInput

# Not "one line" of text: line and paragraph separators (Zl, Zp) and the Unicode categories of
# control (Cc: NUL…, CR, LF, NEL), format (Cf: bidi overrides and isolates, LRM/RLM, zero-width
# characters), surrogate (Cs: a lone one can't even be encoded), private use (Co) and
# unassigned (Cn) characters.
_NOT_ONE_LINE = frozenset({"Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"})


def is_one_line(text: str) -> bool:
    """Printable text on one line: no separators, controls, bidi or invisible formatting
    characters, surrogates, private-use or unassigned code points."""
    if text.isascii():  # the usual case, quickly: only C0 controls and DEL are refused
        return text.isprintable()
    return not any(unicodedata.category(c) in _NOT_ONE_LINE for c in text)


def whole_in(field_name: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(field_name, f"must be a whole number from {low} to {high}")
    return value
