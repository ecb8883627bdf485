"""Call reports per widget and period: each lead with its outcome, durations, consents and the
information-clause version the visitor saw. Masked by default; the rows (JSON or CSV) are
`views.report_row`/`tombstone_row`.

Purged and erased leads still count: they appear from their tombstones, without personal data."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import InvalidInput
from callengine.services import views
from callengine.services.base import Service
from callengine.storage import Store


def parse_day(text: str) -> float:
    """A date (YYYY-MM-DD, UTC midnight) or a full ISO timestamp, as Unix seconds."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date like 2026-11-01") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


async def call_report(store: Store, widget_id: str, start: float, end: float, *,
                      unmasked: bool = False) -> list[dict[str, Any]]:
    await store.get_widget(widget_id)  # NotFound for an unknown widget
    return [
        views.tombstone_row(extra) if lead is None else views.report_row(lead, extra, unmasked)
        for lead, extra in await store.report_rows(widget_id, start, end)
    ]


class Reports(Service):
    async def calls(self, who: Principal, widget_id: str, start: str, end: str, *,
                    unmask: bool = False) -> list[dict[str, Any]]:
        """Each lead of a widget in [start, end) (days or ISO timestamps); numbers unmasked
        only when asked by a role that may, and audited only when there were rows."""
        require(who, Permission.READ_REPORTS)
        try:
            first, last = parse_day(start), parse_day(end)
        except ValueError as exc:
            raise InvalidInput("from/to", str(exc)) from None
        rows = await call_report(self.store, widget_id, first, last)
        if rows and await self.ctx.unmask(who, unmask, f"report:{widget_id}:{start}..{end}"):
            rows = await call_report(self.store, widget_id, first, last, unmasked=True)
        else:
            await self.ctx.token_use(who, "reports.calls",
                                     f"report:{widget_id}:{start}..{end} rows={len(rows)}")
        return rows
