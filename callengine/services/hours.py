"""Calling hours: what a widget tells visitors (open now, the next opening, the slots with their
free places) and when a new lead is to be called (callengine.hours does the arithmetic)."""

from __future__ import annotations

from typing import Any

from callengine.errors import Closed, InvalidInput, SlotInvalid
from callengine.model import Widget, WidgetSettings
from callengine.services.base import Service


def schedule(settings: WidgetSettings, slot: Any, now: float, wanted: Any = None
             ) -> tuple[float | None, int | None]:
    """When a new lead is due and the slot capacity it takes: (None, None) = now (open, no
    slot); (next opening, None) after hours; (slot start, capacity) for a picked slot, which
    must be one offered now (SlotInvalid); a time `wanted` (the CRM's scheduled_for) moves to
    the first opening at or after it. Closed when the hours never open."""
    calendar = settings.calendar()
    if wanted is not None:
        if (isinstance(wanted, bool) or not isinstance(wanted, (int, float))
                or not now - 86400 < wanted < now + 366 * 86400):
            raise InvalidInput("scheduled_for", "must be an epoch time within the next year")
        if slot is not None:
            raise InvalidInput("scheduled_for", "give a slot or a time, not both")
        opening = calendar.next_opening(max(now, float(wanted)))
        if opening is None:
            raise Closed()
        return (None if opening <= now else opening), None
    if slot is not None:
        if (isinstance(slot, bool) or not isinstance(slot, (int, float))
                or settings.slot_capacity == 0):
            raise SlotInvalid()
        offered = {s.start for s in calendar.slots(now, settings.slot_days,
                                                   settings.slot_minutes)}
        if float(slot) not in offered:
            raise SlotInvalid()
        return float(slot), settings.slot_capacity
    if calendar.is_open(now):
        return None, None
    opening = calendar.next_opening(now)
    if opening is None:
        raise Closed()
    return opening, None


class Hours(Service):
    async def public(self, widget: Widget) -> dict[str, Any]:
        """GET /api/v1/widgets/{key}/hours: open now?, the next opening, the offered slots."""
        settings = widget.settings
        now = self.ctx.clock()
        calendar = settings.calendar()
        is_open = calendar.is_open(now)
        slots = [] if settings.slot_capacity == 0 else calendar.slots(
            now, settings.slot_days, settings.slot_minutes)
        taken = await self.store.leads_in_slots(widget.id, [s.start for s in slots]) \
            if slots else {}
        return {
            "open": is_open,
            "time_zone": settings.time_zone,
            "next_open_at": None if is_open else calendar.next_opening(now),
            "slots": [{"start": int(s.start), "end": int(s.end),
                       "free": max(0, settings.slot_capacity - taken.get(s.start, 0))}
                      for s in slots],
        }


__all__ = ["Hours", "schedule"]
