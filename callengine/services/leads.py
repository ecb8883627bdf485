"""Leads: a widget's callback request taken in (validated, rate-limited, committed before the
answer), its public status, and the admin's list and detail views."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import (
    ClauseUnknown, InvalidInput, NotFound, UnknownWidget, WidgetDisabled,
)
from callengine.model import LEAD_OUTCOMES, LEAD_STATUSES, Lead, Widget, lead_from_input
from callengine.services import views
from callengine.services.base import Service
from callengine.services.hours import schedule
from callengine.services.reports import parse_day
from callengine.storage import LeadFilter

log = logging.getLogger(__name__)

# The consent's clause_version of a lead taken on the phone: what the caller heard is the
# prompts of callengine.queue_callback (their list is in the lead's evidence); a widget with
# registered clauses registers one under this version for its queue's callers.
QUEUE_CLAUSE_VERSION = "queue-ivr-1"


class Leads(Service):
    async def widget_for_key(self, public_key: str) -> Widget:
        try:
            return await self.store.get_widget_by_key(public_key)
        except NotFound:
            raise UnknownWidget() from None

    async def create_for(self, who: Principal, data: dict[str, Any]) -> tuple[Widget, Lead]:
        """POST /api/v1/leads (a CRM): a lead for widget `widget` (its id), through create,
        optionally with a `slot` or a `scheduled_for` time (moved into the calling hours)."""
        require(who, Permission.CREATE_LEADS)
        data = dict(data)
        widget_id = data.pop("widget", None)
        if not isinstance(widget_id, str):
            raise InvalidInput("widget", "required: the id of the widget the lead is for")
        widget = await self.store.get_widget(widget_id)
        lead = await self.create(widget, data, crm=True)
        await self.ctx.audit(who, "lead.create", f"lead:{lead.id}", f"widget={widget.id}")
        return widget, lead

    async def create(self, widget: Widget, data: dict[str, Any], *, crm: bool = False,
                     client: str | None = None, origin: str | None = None) -> Lead:
        """Validate a visitor's request (`lead_from_input`), queue it, wake the engine. Outside
        the widget's calling hours it is due at the next opening; with a `slot` (one of those
        services.hours offers), at the slot's start, while the slot has places. A disabled
        widget takes none (WidgetDisabled, nothing written); those it took before are called.

        From the widget (not the CRM): the honeypot `website` must be absent or empty, and with
        the widget's `challenge` on, `altcha` must be a solved, unexpired, unused challenge
        (redeemed last, after every other check, so a refused request does not spend it).

        client: the visitor's IP address, for the per-client limits; the store keeps only its
        keyed hash. A repeat within the widget's duplicate window returns the earlier lead
        (`lead.duplicate`), nothing new queued.
        origin: the request's Origin header; kept as evidence only when it is one of the
        widget's allowed origins (web/security.py refuses the others)."""
        if not widget.enabled:  # before anything is read or spent (its challenge)
            raise WidgetDisabled()
        data = dict(data)
        honeypot = data.pop("website", None)
        proof = data.pop("altcha", None)
        if honeypot not in (None, ""):
            raise InvalidInput("website", "must be left empty")
        slot = data.pop("slot", None)
        at = data.pop("scheduled_for", None) if crm else None
        wanted = lead_from_input(data, widget.settings.number_policy())
        now = self.ctx.clock()
        scheduled_for, capacity = schedule(widget.settings, slot, now, at)
        clause = await self._check_clause(widget, wanted.consent.clause_version,
                                          data.get("language", "en"))
        consent = replace(
            wanted.consent, at=now,
            origin=origin if origin in widget.settings.allowed_origins else None,
            **({} if clause is None else {
                "clause_sha256": clause["sha256"], "clause_language": clause["language"],
                "notice_version": (clause.get("notice_version")
                                   if widget.settings.recording == "on" else None)}))
        if not crm and widget.settings.challenge == "on":
            self.ctx.challenges.redeem(proof, now)
        lead = await self.store.create_lead(
            widget,
            phone_e164=wanted.number.e164,
            phone_region=wanted.number.region,
            phone_kind=wanted.number.kind,
            name=wanted.name,
            email=wanted.email,
            consent=consent,
            now=now,
            scheduled_for=scheduled_for,
            slot_capacity=capacity,
            client=client,
        )
        if lead.duplicate:
            log.info("[lead %s] asked for again within the duplicate window", lead.id)
            return lead
        log.info("[lead %s] queued for widget %s (number %s)%s", lead.id, widget.id,
                 wanted.number.masked(),
                 "" if scheduled_for is None else f", due at {scheduled_for:.0f}")
        self.ctx.on_lead()
        return lead

    async def widget_for_queue(self, queue: str) -> Widget | None:
        """The enabled widget whose `queue` setting names this Asterisk queue (the first, by
        id), or None."""
        widgets = sorted(await self.store.list_widgets(), key=lambda w: w.id)
        return next((w for w in widgets if w.enabled and w.settings.queue == queue), None)

    async def create_from_queue(self, widget: Widget, phone: str, recording: bool, *,
                                queue: str, joined_at: float, evidence: dict[str, Any]) -> Lead:
        """A caller's callback taken on the phone (callengine.queue_callback): validated and
        limited as a CRM's lead of the widget (no challenge: it is a call), with the in-call
        consent (the keys pressed, `evidence`) and the place in line kept beside it."""
        lead = await self.create(widget, {
            "phone": phone, "consent": {"marketing": False, "recording": recording},
            "clause_version": QUEUE_CLAUSE_VERSION}, crm=True)
        if not lead.duplicate:
            await self.store.add_queue_callback(lead.id, queue, joined_at, evidence)
        return lead

    async def _check_clause(self, widget: Widget, version: str,
                            language: Any) -> dict[str, Any] | None:
        """The clause the visitor saw (its record), which must be registered when the widget
        has clauses; a widget without any keeps accepting its integrations' own versions
        (None: an unregistered clause; docs/consent.md)."""
        from callengine.services.clauses import Clauses, check_language

        language = check_language(language)
        try:
            return await Clauses(self.ctx).find(widget.id, language, version)
        except NotFound:
            raise ClauseUnknown(version, language) from None

    def challenge(self, widget: Widget) -> dict[str, object]:
        """A fresh ALTCHA challenge for the widget's visitor (GET …/challenge); one per lead."""
        return self.ctx.challenges.create(self.ctx.clock())

    async def public_status(self, widget: Widget, lead_id: str) -> Lead:
        lead = await self.store.get_lead(lead_id)
        if lead.widget_id != widget.id:
            raise NotFound("lead", lead_id)
        return lead

    async def list(self, who: Principal, *, widget_id: str | None = None,
                   status: str | None = None, outcome: str | None = None,
                   created_from: str | None = None, created_to: str | None = None,
                   limit: int, unmask: bool = False) -> list[dict[str, Any]]:
        """The newest `limit` leads the filters take (lead_filter says which)."""
        require(who, Permission.READ_LEADS)
        where = lead_filter(widget_id, status, outcome, created_from, created_to)
        leads = await self.store.list_leads(where, limit=limit)
        unmasked = bool(leads) and await self.ctx.unmask(
            who, unmask, "leads:" + ",".join(lead.id for lead in leads))
        if not unmasked:  # an unmask entry names the token and the leads already
            await self.ctx.token_use(who, "leads.list", f"leads:{len(leads)}"
                                     f" widget={widget_id or '*'} status={status or '*'}"
                                     + _more(outcome, created_from, created_to))
        return [views.lead_admin_view(lead, unmasked) for lead in leads]

    async def count(self, who: Principal, *, widget_id: str | None = None,
                    status: str | None = None, outcome: str | None = None,
                    created_from: str | None = None, created_to: str | None = None) -> int:
        """How many leads the filters take (all of them, not only a listing's page)."""
        require(who, Permission.READ_LEADS)
        return await self.store.count_leads(
            lead_filter(widget_id, status, outcome, created_from, created_to))

    async def detail(self, who: Principal, lead_id: str, *, unmask: bool = False
                     ) -> dict[str, Any]:
        require(who, Permission.READ_LEADS)
        lead = await self.store.get_lead(lead_id)
        attempts = await self.store.attempts_for(lead.id)
        unmasked = await self.ctx.unmask(who, unmask, f"lead:{lead.id}")
        if not unmasked:
            await self.ctx.token_use(who, "leads.detail", f"lead:{lead.id}")
        return views.lead_detail_view(lead, attempts, unmasked)


def _one_of(field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidInput(field, "must be " + ", ".join(allowed[:-1]) + f" or {allowed[-1]}")
    return value


def _moment(field: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_day(text)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


def lead_filter(widget_id: str | None, status: str | None, outcome: str | None,
                created_from: str | None, created_to: str | None) -> LeadFilter:
    """The listing's filters checked (InvalidInput names the edges' field: status, outcome,
    from, to): a status of LEAD_STATUSES, an outcome of LEAD_OUTCOMES, leads created from
    `created_from` (inclusive) until `created_to` (exclusive), each a day (YYYY-MM-DD, from
    its UTC midnight, as the panel shows times) or an ISO timestamp, as reports take them."""
    start, end = _moment("from", created_from), _moment("to", created_to)
    if start is not None and end is not None and end <= start:
        raise InvalidInput("to", "must be later than from (to is exclusive)")
    return LeadFilter(widget_id, _one_of("status", status, LEAD_STATUSES),
                      _one_of("outcome", outcome, LEAD_OUTCOMES), start, end)


def _more(outcome: str | None, created_from: str | None, created_to: str | None) -> str:
    """The token-use entry's words for the newer filters, when given."""
    return "".join(f" {name}={value}" for name, value in (
        ("outcome", outcome), ("from", created_from), ("to", created_to)) if value is not None)
