"""The login pages' texts, in English and Polish (the pages' own are elsewhere)."""

from __future__ import annotations

LANGUAGES = ("en", "pl")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "callengine panel",
        "skip": "Skip to content",
        "login_title": "Log in",
        "username": "User name",
        "password": "Password",
        "submit": "Log in",
        "totp_title": "One-time code",
        "totp_help": "Enter the 6-digit code from your authenticator app.",
        "totp_code": "Code",
        "totp_submit": "Confirm",
        "back_to_login": "Start again",
        "bad_credentials": "Wrong user name or password.",
        "locked": "Too many failed logins. Try again in {minutes} minutes.",
        "totp_invalid": "Wrong or already used code. Wait for the next code and try again.",
        "totp_not_enrolled": "Administrators need a second factor. Ask another administrator"
                             " to enrol one (callengine user totp).",
        "login_expired": "This login form has expired. Please try again.",
        "csrf_title": "This form has expired",
        "csrf_text": "The page you sent it from is out of date or was not this panel's. Go back,"
                     " reload the page and try again.",
        "csrf_back": "Back to the panel",
        "logged_out": "You are logged out.",
    },
    "pl": {
        "title": "Panel callengine",
        "skip": "Przejdź do treści",
        "login_title": "Logowanie",
        "username": "Nazwa użytkownika",
        "password": "Hasło",
        "submit": "Zaloguj",
        "totp_title": "Kod jednorazowy",
        "totp_help": "Wpisz 6-cyfrowy kod z aplikacji uwierzytelniającej.",
        "totp_code": "Kod",
        "totp_submit": "Potwierdź",
        "back_to_login": "Zacznij od nowa",
        "bad_credentials": "Błędna nazwa użytkownika lub hasło.",
        "locked": "Zbyt wiele nieudanych prób logowania. Spróbuj ponownie za {minutes} min.",
        "totp_invalid": "Błędny lub już użyty kod. Poczekaj na następny kod i spróbuj ponownie.",
        "totp_not_enrolled": "Administrator musi mieć drugi składnik logowania. Poproś innego"
                             " administratora o jego dodanie (callengine user totp).",
        "login_expired": "Formularz logowania wygasł. Spróbuj ponownie.",
        "csrf_title": "Formularz wygasł",
        "csrf_text": "Strona, z której go wysłano, jest nieaktualna lub nie pochodzi z tego"
                     " panelu. Wróć, odśwież stronę i spróbuj ponownie.",
        "csrf_back": "Powrót do panelu",
        "logged_out": "Wylogowano.",
    },
}


def texts(language: str) -> dict[str, str]:
    return TEXTS.get(language, TEXTS["en"])
