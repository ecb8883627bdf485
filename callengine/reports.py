"""Call reports per widget and period: each lead with its outcome, durations, consents and the
information-clause version the visitor saw. Masked by default; CSV or JSON.

Purged and erased leads still count: they appear from their tombstones, without personal data."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any

from callengine.storage import Store

COLUMNS = [
    "lead", "created_at", "status", "outcome", "attempts", "phone", "agent", "agent_ring_s",
    "visitor_ring_s", "talk_s", "q850", "recorded", "consent_marketing", "consent_recording",
    "information_clause_version", "purged",
]


def parse_day(text: str) -> float:
    """A date (YYYY-MM-DD, UTC midnight) or a full ISO timestamp, as Unix seconds."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date like 2026-11-01") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


async def call_report(store: Store, widget_id: str, start: float, end: float, *,
                      unmasked: bool = False) -> list[dict[str, Any]]:
    await store.get_widget(widget_id)  # NotFound for an unknown widget
    report = []
    for lead, extra in await store.report_rows(widget_id, start, end):
        if lead is None:  # a tombstone
            report.append({
                "lead": extra["id"], "created_at": _iso(extra["created_at"]), "status": "done",
                "outcome": extra["outcome"], "attempts": extra["attempts"], "phone": None,
                "agent": None, "agent_ring_s": None, "visitor_ring_s": None, "talk_s": None,
                "q850": None, "recorded": None,
                "consent_marketing": bool(extra["consent_marketing"]),
                "consent_recording": bool(extra["consent_recording"]),
                "information_clause_version": extra["clause_version"],
                "purged": extra["reason"],
            })
            continue
        report.append({
            "lead": lead.id, "created_at": _iso(lead.created_at), "status": lead.status,
            "outcome": lead.outcome, "attempts": lead.attempts,
            "phone": lead.phone_e164 if unmasked else lead.phone_masked,
            "agent": extra["agent"], "agent_ring_s": extra["agent_ring_s"],
            "visitor_ring_s": extra["visitor_ring_s"], "talk_s": extra["talk_s"],
            "q850": extra["q850"], "recorded": bool(extra["recordings"]),
            "consent_marketing": lead.consent.marketing,
            "consent_recording": lead.consent.recording,
            "information_clause_version": lead.consent.clause_version,
            "purged": None,
        })
    return report


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
