"""Leads: a widget's callback request taken in (validated, rate-limited, committed before the
answer), its public status, and the admin's list and detail views."""

from __future__ import annotations

import logging
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import InvalidInput, NotFound, UnknownWidget
from callengine.model import LEAD_STATUSES, Lead, Widget, lead_from_input
from callengine.numbers import mask
from callengine.services import views
from callengine.services.base import Service

log = logging.getLogger(__name__)


class Leads(Service):
    async def widget_for_key(self, public_key: str) -> Widget:
        try:
            return await self.store.get_widget_by_key(public_key)
        except NotFound:
            raise UnknownWidget() from None

    async def create(self, widget: Widget, data: dict[str, Any], *,
                     client: str | None = None) -> Lead:
        """Validate a visitor's request (`lead_from_input`), queue it, wake the engine.

        client: the visitor's IP address, for the per-client limits; the store keeps only its
        keyed hash. A repeat within the widget's duplicate window returns the earlier lead
        (`lead.duplicate`), nothing new queued."""
        wanted = lead_from_input(data, widget.settings.number_policy())
        lead = await self.store.create_lead(
            widget,
            phone_e164=wanted.number.e164,
            phone_region=wanted.number.region,
            phone_kind=wanted.number.kind,
            name=wanted.name,
            email=wanted.email,
            consent=wanted.consent,
            now=self.ctx.clock(),
            client=client,
        )
        if lead.duplicate:
            log.info("[lead %s] asked for again within the duplicate window", lead.id)
            return lead
        log.info("[lead %s] queued for widget %s (number %s)", lead.id, widget.id,
                 mask(wanted.number.e164))
        self.ctx.on_lead()
        return lead

    async def public_status(self, widget: Widget, lead_id: str) -> Lead:
        lead = await self.store.get_lead(lead_id)
        if lead.widget_id != widget.id:
            raise NotFound("lead", lead_id)
        return lead

    async def list(self, who: Principal, *, widget_id: str | None, status: str | None,
                   limit: int, unmask: bool = False) -> list[dict[str, Any]]:
        require(who, Permission.READ_LEADS)
        if status is not None and status not in LEAD_STATUSES:
            raise InvalidInput("status", "must be " + ", ".join(LEAD_STATUSES[:-1])
                               + f" or {LEAD_STATUSES[-1]}")
        leads = await self.store.list_leads(widget_id=widget_id, status=status, limit=limit)
        unmasked = bool(leads) and await self.ctx.unmask(
            who, unmask, "leads:" + ",".join(lead.id for lead in leads))
        if not unmasked:  # an unmask entry names the token and the leads already
            await self.ctx.token_use(who, "leads.list", f"leads:{len(leads)}"
                                     f" widget={widget_id or '*'} status={status or '*'}")
        return [views.lead_admin_view(lead, unmasked) for lead in leads]

    async def detail(self, who: Principal, lead_id: str, *, unmask: bool = False
                     ) -> dict[str, Any]:
        require(who, Permission.READ_LEADS)
        lead = await self.store.get_lead(lead_id)
        attempts = await self.store.attempts_for(lead.id)
        unmasked = await self.ctx.unmask(who, unmask, f"lead:{lead.id}")
        if not unmasked:
            await self.ctx.token_use(who, "leads.detail", f"lead:{lead.id}")
        return views.lead_detail_view(lead, attempts, unmasked)
