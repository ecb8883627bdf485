"""The widget's built-in texts, in English and Polish; a widget's `texts` setting overrides
them per language (appearance.WIDGET_TEXT_KEYS are the keys). `{seconds}` in "countdown" is the
seconds left; `{time}` in "scheduled" the local time the call is due."""

from __future__ import annotations

BUILT_IN: dict[str, dict[str, str]] = {
    "en": {
        "button": "Call me back",
        "title": "We'll call you back",
        "intro": "Leave your number and we'll call you in a moment, free of charge.",
        "phone_label": "Your phone number",
        "phone_hint": "For example +44 20 7946 0958",
        "name_label": "Your name",
        "email_label": "Your e-mail address",
        "consent_marketing": "I agree to be contacted about offers.",
        "consent_recording": "I agree that the call may be recorded.",
        "slot_label": "When should we call?",
        "slot_now": "As soon as possible",
        "submit": "Call me",
        "cancel": "Cancel",
        "close": "Close",
        "sending": "Sending…",
        "challenge": "Checking that you're not a robot…",
        "queued": "Thank you! We'll call you shortly.",
        "scheduled": "Thank you! We'll call you at {time}.",
        "calling": "We're calling you now.",
        "countdown": "We'll call you in {seconds} s.",
        "connected": "You're connected. Thank you!",
        "failed": "We couldn't reach you this time. Please try again later.",
        "closed": "We're closed now; we'll call you when we open.",
        "error": "Something went wrong. Please try again.",
        "rate_limited": "Too many requests. Please try again later.",
        "invalid_number": "This number can't be called back.",
    },
    "pl": {
        "button": "Zadzwońcie do mnie",
        "title": "Oddzwonimy do Ciebie",
        "intro": "Zostaw numer, a oddzwonimy za chwilę, bezpłatnie.",
        "phone_label": "Twój numer telefonu",
        "phone_hint": "Na przykład +48 601 234 567",
        "name_label": "Twoje imię",
        "email_label": "Twój adres e-mail",
        "consent_marketing": "Zgadzam się na kontakt w sprawie ofert.",
        "consent_recording": "Zgadzam się na nagrywanie rozmowy.",
        "slot_label": "Kiedy mamy zadzwonić?",
        "slot_now": "Jak najszybciej",
        "submit": "Zadzwońcie",
        "cancel": "Anuluj",
        "close": "Zamknij",
        "sending": "Wysyłanie…",
        "challenge": "Sprawdzamy, czy nie jesteś robotem…",
        "queued": "Dziękujemy! Zaraz oddzwonimy.",
        "scheduled": "Dziękujemy! Zadzwonimy o {time}.",
        "calling": "Właśnie dzwonimy.",
        "countdown": "Zadzwonimy za {seconds} s.",
        "connected": "Połączono. Dziękujemy!",
        "failed": "Tym razem nie udało się połączyć. Spróbuj ponownie później.",
        "closed": "Teraz jesteśmy nieczynni; zadzwonimy po otwarciu.",
        "error": "Coś poszło nie tak. Spróbuj ponownie.",
        "rate_limited": "Zbyt wiele prób. Spróbuj ponownie później.",
        "invalid_number": "Pod ten numer nie możemy oddzwonić.",
    },
}
FALLBACK = "en"


def choose_language(requested: str | None, available: set[str]) -> str:
    """The requested language ("pl-PL" → "pl"), if there are texts for it, else English."""
    if requested:
        wanted = requested.strip().lower().replace("_", "-")
        for candidate in (wanted, wanted.split("-", 1)[0]):
            if candidate in available:
                return candidate
    return FALLBACK


def texts_for(language: str, overrides: dict[str, dict[str, str]]) -> dict[str, str]:
    """The built-in English texts, under the language's own, under the widget's overrides
    (English overrides apply to every language that does not override the key itself)."""
    merged = dict(BUILT_IN[FALLBACK])
    merged.update(overrides.get(FALLBACK, {}))
    if language != FALLBACK:
        merged.update(BUILT_IN.get(language, {}))
        merged.update(overrides.get(language, {}))
    return merged
