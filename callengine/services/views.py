"""What users see of the records: the JSON views the HTTP API and the CLI print, and the rows
of the call report (JSON or CSV). One shape per thing, whichever edge shows it.

Numbers are masked unless the caller was allowed to unmask them (the services decide that).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any

from callengine.access import AuditCheck, AuditEntry, AuditFinding
from callengine.model import (
    LEAD_DONE,
    Agent,
    Attempt,
    Group,
    Lead,
    Recording,
    Widget,
)
from callengine.numbers import mask


def lead_public_view(lead: Lead) -> dict[str, Any]:
    """What the widget may see of its own lead: no personal data."""
    return {"id": lead.id, "status": lead.status, "progress": lead.progress,
            "outcome": lead.outcome, "scheduled_for": lead.scheduled_for}


def lead_admin_view(lead: Lead, unmasked: bool = False) -> dict[str, Any]:
    return {
        "id": lead.id,
        "widget": lead.widget_id,
        "phone": lead.phone_e164 if unmasked else lead.phone_masked,
        "region": lead.phone_region,
        "status": lead.status,
        "progress": lead.progress,
        "outcome": lead.outcome,
        "cause": lead.cause,
        "attempts": lead.attempts,
        "scheduled_for": lead.scheduled_for,
        "consent": {
            "marketing": lead.consent.marketing,
            "recording": lead.consent.recording,
            "clause_version": lead.consent.clause_version,
            "clause_sha256": lead.consent.clause_sha256,
            "clause_language": lead.consent.clause_language,
            "notice_version": lead.consent.notice_version,
            "at": lead.consent.at,
            "origin": lead.consent.origin,
        },
        "created_at": lead.created_at,
        "closed_at": lead.closed_at,
    }


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number, "status": attempt.status, "outcome": attempt.outcome,
        "q850": attempt.q850, "cause": attempt.cause, "agent": attempt.agent,
        "agent_ring_s": attempt.agent_ring_s, "visitor_ring_s": attempt.visitor_ring_s,
        "talk_s": attempt.talk_s, "started_at": attempt.started_at,
        "ended_at": attempt.ended_at,
        # The agents asked to press the accept digit, in order ([]: nobody was asked).
        "acceptances": [{"agent": a.agent, "answer": a.answer.value, "at": a.at,
                         **({"digit": a.digit} if a.digit is not None else {})}
                        for a in attempt.acceptances],
    }


def lead_detail_view(lead: Lead, attempts: list[Attempt], unmasked: bool = False
                     ) -> dict[str, Any]:
    """One lead with its attempts (docs/api.md, `GET /api/v1/leads/{id}`; `lead show`)."""
    return {**lead_admin_view(lead, unmasked),
            "attempts_detail": [attempt_view(a) for a in attempts]}


def agent_view(agent: Agent, *, enabled: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {"name": agent.name, "endpoint": agent.endpoint}
    if enabled:
        view["enabled"] = agent.enabled
        view["paused"] = agent.paused
    return view


def group_view(group: Group) -> dict[str, Any]:
    return {"name": group.name, "strategy": group.strategy.value,
            "ring_timeout": group.ring_timeout, "agents": [a.name for a in group.agents],
            "accept_digit": group.accept_digit, "accept_timeout": group.accept_timeout}


def widget_view(widget: Widget) -> dict[str, Any]:
    return {
        "id": widget.id, "name": widget.name, "public_key": widget.public_key,
        "settings": widget.settings.to_json(),
        "enabled": widget.enabled, "disabled_at": widget.disabled_at,
    }


def recording_view(recording: Recording) -> dict[str, Any]:
    return {
        "id": recording.id, "lead": recording.lead_id, "widget": recording.widget_id,
        "phone": mask(recording.phone_e164), "status": recording.status,
        "route": recording.route, "key_id": recording.key_id,
        "started_at": recording.started_at, "ended_at": recording.ended_at,
        "duration_s": recording.duration_s, "bytes": recording.bytes,
        "segments": recording.segments, "sha256": recording.sha256,
        "problem": recording.problem, "sample_rate": recording.sample_rate,
    }


def new_token_view(name: str, role: str, token: str) -> dict[str, Any]:
    return {"name": name, "role": role, "token": token}


def audit_entry_view(entry: AuditEntry) -> dict[str, Any]:
    return dict(entry.__dict__)


def audit_finding_view(finding: AuditFinding) -> dict[str, Any]:
    return {"seq": finding.seq, "kind": finding.kind, "text": finding.text,
            "problem": finding.problem}


def audit_log_view(check: AuditCheck) -> dict[str, Any]:
    """What `audit verify` prints, as JSON: intact, each finding, the entries."""
    return {"intact": check.intact, "problem": check.problem,
            "findings": [audit_finding_view(f) for f in check.findings],
            "entries": [audit_entry_view(e) for e in check.entries]}


# ---- a data subject's export -------------------------------------------------------------------


def subject_lead_view(lead: Lead, attempts: list[Attempt], recordings: list[Recording],
                      clause: dict[str, Any] | None = None,
                      notice: dict[str, Any] | None = None,
                      by_phone: dict[str, Any] | None = None) -> dict[str, Any]:
    """All that is held about one lead, unmasked: the data subject asked for it; `by_phone`,
    a queue callback's in-call consent (store.queue_callbacks)."""
    view = {
        "id": lead.id,
        "widget": lead.widget_id,
        "created_at": lead.created_at,
        "phone": lead.phone_e164,
        "name": lead.name,
        "email": lead.email,
        "consent": {
            "marketing": lead.consent.marketing,
            "recording": lead.consent.recording,
            "information_clause_version": lead.consent.clause_version,
            "information_clause_language": lead.consent.clause_language,
            # the exact text shown, its sha256 as stored, verified against the record (None:
            # an unregistered clause: the engine holds no text for it)
            "information_clause": clause,
            "recording_notice_version": lead.consent.notice_version,
            # the exact notice text shown beside that clause (None: the widget did not record)
            "recording_notice": notice,
            "given_at": lead.consent.at,
            "origin": lead.consent.origin,
        },
        "status": lead.status,
        "outcome": lead.outcome,
        "attempts": [
            {"number": a.number, "started_at": a.started_at, "ended_at": a.ended_at,
             "outcome": a.outcome, "cause": a.cause, "talk_s": a.talk_s,
             "notice_played": a.notice_played}
            for a in attempts
        ],
        "recordings": [
            {"id": r.id, "status": r.status, "started_at": r.started_at,
             "duration_s": r.duration_s, "sample_rate": r.sample_rate}
            for r in recordings
        ],
    }
    if by_phone is not None:
        view["consent"]["by_phone"] = {"queue": by_phone["queue"],
                                       "joined_at": by_phone["joined_at"],
                                       "steps": by_phone["evidence"]["steps"]}
    return view


# ---- the call report ---------------------------------------------------------------------------

REPORT_COLUMNS = [
    "lead", "created_at", "status", "outcome", "attempts", "phone", "agent", "agent_ring_s",
    "visitor_ring_s", "talk_s", "q850", "recorded", "consent_marketing", "consent_recording",
    "information_clause_version", "clause_language", "clause_sha256", "notice_version",
    "notice_played", "purged",
]
UNREGISTERED = "unregistered"  # clause_sha256 of a lead whose clause has no record


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


def report_row(lead: Lead, extra: dict[str, Any], unmasked: bool) -> dict[str, Any]:
    return {
        "lead": lead.id, "created_at": _iso(lead.created_at), "status": lead.status,
        "outcome": lead.outcome, "attempts": lead.attempts,
        "phone": lead.phone_e164 if unmasked else lead.phone_masked,
        "agent": extra["agent"], "agent_ring_s": extra["agent_ring_s"],
        "visitor_ring_s": extra["visitor_ring_s"], "talk_s": extra["talk_s"],
        "q850": extra["q850"], "recorded": bool(extra["recordings"]),
        "consent_marketing": lead.consent.marketing,
        "consent_recording": lead.consent.recording,
        "information_clause_version": lead.consent.clause_version,
        "clause_language": lead.consent.clause_language,
        "clause_sha256": lead.consent.clause_sha256 or UNREGISTERED,
        "notice_version": lead.consent.notice_version,
        "notice_played": None if extra["notice_played"] is None else bool(extra["notice_played"]),
        "purged": None,
    }


def tombstone_row(tombstone: dict[str, Any]) -> dict[str, Any]:
    """A purged or erased lead: counted, with no personal data."""
    return {
        "lead": tombstone["id"], "created_at": _iso(tombstone["created_at"]),
        "status": LEAD_DONE, "outcome": tombstone["outcome"],
        "attempts": tombstone["attempts"], "phone": None, "agent": None,
        "agent_ring_s": None, "visitor_ring_s": None, "talk_s": None, "q850": None,
        "recorded": None,
        "consent_marketing": bool(tombstone["consent_marketing"]),
        "consent_recording": bool(tombstone["consent_recording"]),
        "information_clause_version": tombstone["clause_version"],
        "clause_language": tombstone["clause_language"],
        "clause_sha256": tombstone["clause_sha256"] or UNREGISTERED,
        "notice_version": tombstone["notice_version"],
        "notice_played": None,
        "purged": tombstone["reason"],
    }


def report_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
