"""The clause hash is of the exact text; the language fallback."""

from __future__ import annotations

import hashlib

from callengine.services.clauses import fallbacks, text_sha256

POLISH = "Wyrażam zgodę na kontakt telefoniczny; administrator: Żółw sp. z o.o."


def test_sha256_is_of_the_exact_utf8_text():
    assert text_sha256(POLISH) == hashlib.sha256(POLISH.encode("utf-8")).hexdigest()
    assert text_sha256(POLISH + " ") != text_sha256(POLISH)
    assert text_sha256(POLISH + "\n") != text_sha256(POLISH)
    # no normalisation: a decomposed "ż" (z + combining dot) is another text
    assert text_sha256(POLISH.replace("ż", "z\u0307")) != text_sha256(POLISH)


def test_language_fallback():
    assert fallbacks("pl-PL") == ["pl-PL", "pl", "en"]
    assert fallbacks("en") == ["en"]
