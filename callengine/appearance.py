"""A widget's own look and words: its challenge, fields, texts, colour and position, as
validated from its settings (callengine.model.widget_settings_from_input takes them from here)."""

from __future__ import annotations

import re
from typing import Any

from callengine.errors import InvalidInput
from callengine.checks import is_one_line, whole_in

# The keys of the widget's texts (callengine.services.widget_texts has the built-in English and
# Polish ones; a widget's `texts` setting overrides them per language).
WIDGET_TEXT_KEYS = frozenset({
    "button", "title", "intro", "phone_label", "phone_hint", "name_label", "email_label",
    "consent_marketing", "consent_recording", "slot_label", "slot_now", "submit", "cancel",
    "close", "sending", "challenge", "queued", "scheduled", "calling", "countdown", "connected",
    "failed", "closed", "error", "rate_limited", "invalid_number",
})
WIDGET_POSITIONS = ("bottom-right", "bottom-left")
_LANGUAGE = re.compile(r"[a-z]{2}")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def appearance(values: dict[str, Any]) -> dict[str, Any]:
    """The widget's own settings: its challenge, fields, texts and look."""
    if values["challenge"] not in ("on", "off"):
        raise InvalidInput("challenge", "must be \"on\" or \"off\"")
    for name in ("ask_name", "ask_email", "exit_intent"):
        if not isinstance(values[name], bool):
            raise InvalidInput(name, "must be true or false")
    colour = values["colour"]
    if not isinstance(colour, str) or not _COLOUR.fullmatch(colour):
        raise InvalidInput("colour", "must be a colour like #1f5fbf")
    if values["position"] not in WIDGET_POSITIONS:
        raise InvalidInput("position", f"must be {' or '.join(WIDGET_POSITIONS)}")
    open_after = values["open_after_s"]
    return {
        "challenge": values["challenge"],
        "ask_name": values["ask_name"],
        "ask_email": values["ask_email"],
        "countdown_s": whole_in("countdown_s", values["countdown_s"], 0, 300),
        "texts": check_texts(values["texts"]),
        "colour": colour.lower(),
        "position": values["position"],
        "open_after_s": None if open_after is None else whole_in("open_after_s", open_after,
                                                                0, 3600),
        "exit_intent": values["exit_intent"],
    }


def check_texts(value: Any) -> dict[str, dict[str, str]]:
    """{lang: {key: text}}: two-letter language codes, known keys, one line of ≤ 300 chars."""
    if not isinstance(value, dict):
        raise InvalidInput("texts", "must be an object {language: {key: text}}")
    texts: dict[str, dict[str, str]] = {}
    for language, entries in value.items():
        if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
            raise InvalidInput("texts", f"{language!r} is not a language code like en or pl")
        if not isinstance(entries, dict):
            raise InvalidInput("texts", f"{language}: must be an object {{key: text}}")
        for key, text in entries.items():
            if key not in WIDGET_TEXT_KEYS:
                raise InvalidInput("texts", f"{language}: {key!r} is not a text of the widget")
            if not isinstance(text, str) or not text.strip() or len(text) > 300 or (
                    not is_one_line(text)):
                raise InvalidInput("texts", f"{language}.{key}: must be one line of at most "
                                   "300 characters")
        texts[language] = dict(entries)
    return texts
