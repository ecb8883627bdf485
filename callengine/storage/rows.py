"""Rows → records: what a SELECT returns becomes the model's dataclasses. Personal fields are
decrypted here, and only here (with the store's FieldCipher)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from callengine.crypto import FieldCipher
from callengine.model import (
    Agent, Attempt, Consent, Lead, Recording, Widget, widget_settings_from_input,
)


def to_agent(row: sqlite3.Row) -> Agent:
    return Agent(row["name"], row["endpoint"], bool(row["enabled"]))


def to_widget(row: sqlite3.Row) -> Widget:
    settings = widget_settings_from_input(json.loads(row["settings"]))
    return Widget(row["id"], row["name"], row["public_key"], settings)


def to_attempt(row: sqlite3.Row) -> Attempt:
    fields: dict[str, Any] = {key: row[key] for key in row.keys()}
    fields["connected"] = bool(fields["connected"])
    return Attempt(**fields)


def to_lead(row: sqlite3.Row, cipher: FieldCipher) -> Lead:
    lead_id = row["id"]
    return Lead(
        id=lead_id,
        widget_id=row["widget_id"],
        phone_e164=cipher.decrypt(row["phone_enc"], f"leads.phone:{lead_id}") or "",
        phone_region=row["phone_region"],
        phone_kind=row["phone_kind"],
        name=cipher.decrypt(row["name_enc"], f"leads.name:{lead_id}"),
        email=cipher.decrypt(row["email_enc"], f"leads.email:{lead_id}"),
        consent=Consent(
            bool(row["consent_marketing"]), bool(row["consent_recording"]),
            row["clause_version"],
        ),
        status=row["status"],
        progress=row["progress"],
        outcome=row["outcome"],
        cause=row["cause"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
    )


def to_recording(row: sqlite3.Row, cipher: FieldCipher) -> Recording:
    """A recordings row joined with its lead's phone_enc and widget_id."""
    fields: dict[str, Any] = {key: row[key] for key in row.keys() if key != "phone_enc"}
    fields["phone_e164"] = cipher.decrypt(
        row["phone_enc"], f"leads.phone:{row['lead_id']}") or ""
    return Recording(**fields)
