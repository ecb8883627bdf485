"""Rows → records: what a SELECT returns becomes the model's dataclasses. Personal fields are
decrypted here, and only here, each with its data subject's key (crypto.fields.SubjectCipher);
a lead whose subject has no key any more (erased, seen in a store restored from an older
backup) reads as ERASED."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from callengine.crypto.fields import SubjectCipher
from callengine.flow import Acceptance, Answer, Strategy
from callengine.model import (
    ERASED, LEAD_QUEUED, Agent, Attempt, Consent, Group, Lead, Recording, Widget, widget_settings_from_input,
)

Ciphers = Mapping[str, SubjectCipher]  # subject id → cipher (Store._ciphers)


def to_agent(row: sqlite3.Row) -> Agent:
    return Agent(row["name"], row["endpoint"], bool(row["enabled"]), bool(row["paused"]))


def to_widget(row: sqlite3.Row) -> Widget:
    settings = widget_settings_from_input(json.loads(row["settings"]))
    return Widget(row["id"], row["name"], row["public_key"], settings, row["disabled_at"])


def to_attempt(row: sqlite3.Row) -> Attempt:
    fields: dict[str, Any] = {key: row[key] for key in row.keys()}
    fields["connected"] = bool(fields["connected"])
    fields["notice_played"] = bool(fields.get("notice_played", 0))
    fields["acceptances"] = tuple(
        Acceptance(i["agent"], Answer(i["answer"]), i["at"], i.get("digit"))
        for i in json.loads(fields.get("acceptances") or "[]"))
    return Attempt(**fields)


def acceptances_json(acceptances: tuple[Acceptance, ...]) -> str | None:
    """An attempt's acceptances column (NULL when nobody was asked)."""
    if not acceptances:
        return None
    return json.dumps([{"agent": a.agent, "answer": a.answer.value, "at": a.at,
                        **({"digit": a.digit} if a.digit is not None else {})}
                       for a in acceptances])


def to_group(row: sqlite3.Row, agents: tuple[Agent, ...]) -> Group:
    return Group(row["name"], Strategy(row["strategy"]), row["ring_timeout"], agents,
                 row["accept_digit"], row["accept_timeout"])


def _field(row: sqlite3.Row, ciphers: Ciphers, column: str, context: str) -> str | None:
    cipher = ciphers.get(row["subject_id"])
    if cipher is None:
        return None if row[column] is None else ERASED
    return cipher.decrypt(row[column], context)


def to_lead(row: sqlite3.Row, ciphers: Ciphers) -> Lead:
    lead_id = row["id"]
    return Lead(
        id=lead_id,
        widget_id=row["widget_id"],
        phone_e164=_field(row, ciphers, "phone_enc", f"leads.phone:{lead_id}") or "",
        phone_region=row["phone_region"],
        phone_kind=row["phone_kind"],
        name=_field(row, ciphers, "name_enc", f"leads.name:{lead_id}"),
        email=_field(row, ciphers, "email_enc", f"leads.email:{lead_id}"),
        consent=Consent(
            bool(row["consent_marketing"]), bool(row["consent_recording"]),
            row["clause_version"], row["clause_sha256"], row["clause_language"],
            row["notice_version"], row["consent_at"], row["origin"],
        ),
        status=row["status"],
        progress=row["progress"],
        outcome=row["outcome"],
        cause=row["cause"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        scheduled_for=row["scheduled_for"],
    )


def to_recording(row: sqlite3.Row, ciphers: Ciphers) -> Recording:
    """A recordings row joined with its lead's phone_enc, subject_id and widget_id."""
    fields: dict[str, Any] = {key: row[key] for key in row.keys()
                              if key not in ("phone_enc", "subject_id")}
    fields["phone_e164"] = _field(
        row, ciphers, "phone_enc", f"leads.phone:{row['lead_id']}") or ""
    return Recording(**fields)


def new_lead(lead_id: str, widget_id: str, phone_e164: str, phone_region: str, phone_kind: str,
             name: str | None, email: str | None, consent: Consent, now: float,
             scheduled_for: float | None) -> Lead:
    """A lead create_lead has just accepted: queued, due now or at scheduled_for."""
    return Lead(
        id=lead_id, widget_id=widget_id, phone_e164=phone_e164, phone_region=phone_region,
        phone_kind=phone_kind, name=name, email=email, consent=consent,
        status=LEAD_QUEUED, progress=None, outcome=None, cause=None, attempts=0,
        next_attempt_at=scheduled_for or now, created_at=now, closed_at=None,
        scheduled_for=scheduled_for,
    )
