"""Information clauses (docs/consent.md): the texts a widget shows next to its consent
checkboxes, versioned per widget and language with the SHA-256 of the exact UTF-8 text.
Admins write them (audited); the widget reads the current one for its language.

Language fallback for `current`: the asked language ("pl-PL"), then its primary subtag
("pl"), then "en", then none (NotFound: the public route's 404 `clause-missing`)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import InvalidInput, NotFound
from callengine.services.base import Service
from callengine.storage import Store

_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")  # the same rule as a lead's clause_version
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
MAX_TEXT = 20_000
FALLBACK_LANGUAGE = "en"


class ClauseMissing(NotFound):
    """No clause for the widget in the language nor its fallbacks."""


def text_sha256(text: str) -> str:
    """The hash of exactly the text (UTF-8, no normalisation, whitespace kept)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_language(value: Any) -> str:
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise InvalidInput("language", "a language tag such as en or pl")
    return value


def check_version(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise InvalidInput(field, "1-64 letters, digits, '.', '_' or '-'")
    return value


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "required text")
    if len(value) > MAX_TEXT:
        raise InvalidInput(field, f"at most {MAX_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "not valid text (lone surrogate)") from None
    return value


def fallbacks(language: str) -> list[str]:
    chain = [language, language.split("-", 1)[0], FALLBACK_LANGUAGE]
    return list(dict.fromkeys(chain))


class Clauses(Service):
    async def create(self, who: Principal, widget_id: str, data: dict[str, Any], *,
                     replace: bool = False) -> dict[str, Any]:
        """A new clause version (Conflict if it exists; with replace, an unreferenced one is
        replaced, a referenced one never)."""
        require(who, Permission.CONFIGURE)
        await self.store.get_widget(widget_id)
        text = _text("text", data.get("text"))
        privacy_url = data.get("privacy_url")
        if not isinstance(privacy_url, str) or not re.fullmatch(r"https?://\S{1,2000}",
                                                                privacy_url):
            raise InvalidInput("privacy_url", "an http(s) address of the privacy policy")
        notice = data.get("recording_notice")
        notice_version = notice_text = None
        if notice is not None:
            if not isinstance(notice, dict):
                raise InvalidInput("recording_notice", "an object {version, text} or null")
            notice_version = check_version("recording_notice.version", notice.get("version"))
            notice_text = _text("recording_notice.text", notice.get("text"))
        clause = {
            "widget_id": widget_id, "language": check_language(data.get("language")),
            "version": check_version("version", data.get("version")), "text": text,
            "sha256": text_sha256(text), "privacy_url": privacy_url,
            "notice_version": notice_version, "notice_text": notice_text,
            "created_at": self.ctx.clock(),
        }
        await self.store.put_clause(clause, replace=replace)
        await self.ctx.audit(who, "clauses.replace" if replace else "clauses.create",
                             f"widget:{widget_id}",
                             f"{clause['language']}/{clause['version']} {clause['sha256']}")
        return clause

    async def delete(self, who: Principal, widget_id: str, language: str, version: str) -> None:
        require(who, Permission.CONFIGURE)
        await self.store.delete_clause(widget_id, language, version)
        await self.ctx.audit(who, "clauses.delete", f"widget:{widget_id}",
                             f"{language}/{version}")

    async def list(self, who: Principal, widget_id: str, language: str | None = None
                   ) -> list[dict[str, Any]]:
        require(who, Permission.READ_REPORTS)  # clauses are evidence, read with the reports
        await self.store.get_widget(widget_id)
        return await self.store.list_clauses(widget_id, language)

    async def shown_for(self, who: Principal, lead_id: str) -> dict[str, Any] | None:
        """The consent evidence of one lead: the exact clause text its visitor saw, checked
        against the hash the lead kept (`clause_shown`); for whoever may read the lead."""
        require(who, Permission.READ_LEADS)
        return await clause_shown(self.store, await self.store.get_lead(lead_id))

    async def get(self, widget_id: str, language: str, version: str) -> dict[str, Any]:
        return await self.store.get_clause(widget_id, language, version)

    async def current(self, widget_id: str, language: str) -> dict[str, Any]:
        """The newest version for the language, by the fallback rule (module docstring)."""
        for candidate in fallbacks(check_language(language)):
            rows = await self.store.list_clauses(widget_id, candidate)
            if rows:
                return rows[-1]
        raise ClauseMissing("clause", f"{widget_id}/{language}")

    async def find(self, widget_id: str, language: str, version: str) -> dict[str, Any] | None:
        """The version the visitor's lead names, in its language or a fallback; None if the
        widget has no clause records at all (an unregistered clause), InvalidInput-like
        NotFound when it has some but not this one."""
        return await self.store.clause_for_lead(widget_id, tuple(fallbacks(language)), version)


async def shown_to(store: Store, lead: Any) -> tuple[dict[str, Any] | None,
                                                      dict[str, Any] | None]:
    """The exact texts the lead's visitor saw: the information clause, from its record
    (widget, language, version) checked against the hash the lead stored (None: an unregistered
    clause); and the recording notice shown beside it, from the same record when its version is
    the one the lead stored (None: the widget did not record). A data subject's export has
    both (services.subjects); the panel's lead page has `clause_shown`."""
    consent = lead.consent
    clause: dict[str, Any] | None = None
    if consent.clause_sha256 is not None and consent.clause_language is not None:
        try:
            clause = await store.get_clause(lead.widget_id, consent.clause_language,
                                            consent.clause_version)
        except NotFound:
            clause = None
    return _clause_evidence(consent, clause), _notice_evidence(consent, clause)


async def clause_shown(store: Store, lead: Any) -> dict[str, Any] | None:
    """`shown_to`'s clause with the recording notice's text beside it (None when the lead
    names no notice or its record holds another version)."""
    clause, notice = await shown_to(store, lead)
    if clause is None or clause["text"] is None:
        return clause
    return {"text": clause["text"], "sha256": clause["sha256"],
            "privacy_url": clause["privacy_url"],
            "notice_text": None if notice is None else notice["text"],
            "verified": clause["verified"]}


def _clause_evidence(consent: Any, clause: dict[str, Any] | None) -> dict[str, Any] | None:
    if consent.clause_sha256 is None or consent.clause_language is None:
        return None
    if clause is None:
        return {"text": None, "sha256": consent.clause_sha256, "verified": False}
    return {"text": clause["text"], "sha256": consent.clause_sha256,
            "privacy_url": clause["privacy_url"],
            "verified": clause["sha256"] == consent.clause_sha256
            and text_sha256(clause["text"]) == consent.clause_sha256}


def _notice_evidence(consent: Any, clause: dict[str, Any] | None) -> dict[str, Any] | None:
    """The notice's text from the record of the clause the lead names, when that record holds
    the notice version the lead stored; `sha256` that of the text as held. `verified` would be,
    as the clause's, whether the text hashes to a hash the lead kept, but the lead keeps only
    the notice's version (docs/consent.md): null, nothing to check it against. `text` null
    and `verified` false: the record, or that version of the notice in it, is not there."""
    if consent.notice_version is None:
        return None
    if clause is None or clause.get("notice_version") != consent.notice_version:
        return {"version": consent.notice_version, "text": None, "sha256": None,
                "verified": False}
    text = clause["notice_text"]
    return {"version": consent.notice_version, "text": text, "sha256": text_sha256(text),
            "verified": None}


def clause_view(clause: dict[str, Any]) -> dict[str, Any]:
    """The public shape (plan contract): no widget id, no timestamps beyond the record."""
    notice = None
    if clause.get("notice_version"):
        notice = {"version": clause["notice_version"], "text": clause["notice_text"]}
    return {"version": clause["version"], "language": clause["language"],
            "text": clause["text"], "sha256": clause["sha256"],
            "privacy_url": clause["privacy_url"], "recording_notice": notice}


def clause_admin_view(clause: dict[str, Any]) -> dict[str, Any]:
    return {**clause_view(clause), "widget_id": clause["widget_id"],
            "created_at": clause["created_at"]}
