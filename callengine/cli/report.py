"""`report`: a widget's calls in a period, as CSV or JSON (masked unless --unmask, audited)."""

from __future__ import annotations

import argparse
import json

from callengine.cli.common import AddCommand, principal, run
from callengine.config import Config
from callengine.services.views import report_csv


def cmd_report(config: Config, args: argparse.Namespace) -> int:
    rows = run(config, lambda s: s.reports.calls(principal(args), args.widget, args.start,
                                                 args.end, unmask=args.unmask))
    print(report_csv(rows) if args.format == "csv" else json.dumps(rows, indent=2), end="")
    if args.format == "json":
        print()
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    sub = command("report", cmd_report,
                  "calls of a widget in a period: outcomes, durations, consents (masked)")
    sub.add_argument("widget")
    sub.add_argument("--from", dest="start", required=True, help="first day, e.g. 2026-11-01")
    sub.add_argument("--to", dest="end", required=True, help="day after the last, e.g. 2026-12-01")
    sub.add_argument("--format", choices=["csv", "json"], default="csv")
    sub.add_argument("--unmask", action="store_true", help="full numbers (audited)")
