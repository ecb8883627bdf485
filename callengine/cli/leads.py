"""`lead list`, `lead show`, `lead add`: callback requests, numbers masked unless --unmask
(audited); `lead list` filters by widget, status, outcome and creation date; `lead add`
queues one as a CRM would (POST /api/v1/leads)."""

from __future__ import annotations

import argparse

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.model import LEAD_OUTCOMES, LEAD_STATUSES
from callengine.services.views import lead_public_view


def cmd_lead_list(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.leads.list(
        principal(args), widget_id=args.widget, status=args.status, outcome=args.outcome,
        created_from=args.start, created_to=args.end, limit=args.limit, unmask=args.unmask)))
    return 0


def cmd_lead_show(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.leads.detail(principal(args), args.id, unmask=args.unmask)))
    return 0


def cmd_lead_add(config: Config, args: argparse.Namespace) -> int:
    data = {"widget": args.widget, "phone": args.phone, "name": args.name, "email": args.email,
            "clause_version": args.clause, "consent": {"marketing": args.marketing,
                                                       "recording": args.recording}}
    if args.slot is not None:
        data["slot"] = args.slot
    if args.at is not None:
        data["scheduled_for"] = args.at

    async def add(s):
        _, lead = await s.leads.create_for(principal(args), data)
        return lead_public_view(lead)
    emit(run(config, add))
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    lead = group(commands, "lead", "callback requests")
    sub = command("list", cmd_lead_list, "list leads (numbers masked)", lead)
    sub.add_argument("--widget")
    sub.add_argument("--status", choices=list(LEAD_STATUSES))
    sub.add_argument("--outcome", choices=list(LEAD_OUTCOMES), help="the lead's last outcome")
    sub.add_argument("--from", dest="start", help="created on or after: a day (UTC), e.g."
                     " 2026-11-01, or an ISO timestamp")
    sub.add_argument("--to", dest="end", help="created before (exclusive), e.g. 2026-12-01")
    sub.add_argument("--limit", type=int, default=50)
    sub.add_argument("--unmask", action="store_true", help="show full numbers (audited)")
    sub = command("show", cmd_lead_show, "one lead with its attempts", lead)
    sub.add_argument("id")
    sub.add_argument("--unmask", action="store_true", help="show the full number (audited)")
    sub = command("add", cmd_lead_add, "queue a callback (outside the calling hours: for the"
                  " next opening)", lead)
    sub.add_argument("widget")
    sub.add_argument("phone")
    sub.add_argument("--clause", required=True, help="the information clause's version")
    sub.add_argument("--name")
    sub.add_argument("--email")
    sub.add_argument("--marketing", action="store_true", help="marketing consent given")
    sub.add_argument("--recording", action="store_true", help="recording consent given")
    sub.add_argument("--slot", type=int, help="a slot's start (epoch) from the widget's hours")
    sub.add_argument("--at", type=float, help="call at this epoch time (within the hours)")
