"""`lead list`, `lead show`: callback requests, numbers masked unless --unmask (audited)."""

from __future__ import annotations

import argparse

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.model import LEAD_STATUSES


def cmd_lead_list(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.leads.list(
        principal(args), widget_id=args.widget, status=args.status, limit=args.limit,
        unmask=args.unmask)))
    return 0


def cmd_lead_show(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.leads.detail(principal(args), args.id, unmask=args.unmask)))
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    lead = group(commands, "lead", "callback requests")
    sub = command("list", cmd_lead_list, "list leads (numbers masked)", lead)
    sub.add_argument("--widget")
    sub.add_argument("--status", choices=list(LEAD_STATUSES))
    sub.add_argument("--limit", type=int, default=50)
    sub.add_argument("--unmask", action="store_true", help="show full numbers (audited)")
    sub = command("show", cmd_lead_show, "one lead with its attempts", lead)
    sub.add_argument("id")
    sub.add_argument("--unmask", action="store_true", help="show the full number (audited)")
