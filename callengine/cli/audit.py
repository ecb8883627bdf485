"""`audit verify|list`: the tamper-evident audit log (docs/audit.md)."""

from __future__ import annotations

import argparse

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.services.views import audit_entry_view


def cmd_audit_verify(config: Config, args: argparse.Namespace) -> int:
    """One line per finding (`entry SEQ: KIND: what`), then the verdict; 1 if broken."""
    check = run(config, lambda s: s.audit.verify())
    for finding in check.findings:
        print(("BROKEN " if finding.problem else "note ") + str(finding))
    if not check.intact:
        kinds = sorted({f.kind for f in check.problems})
        print(f"audit log BROKEN: {len(check.problems)} finding(s) ({', '.join(kinds)}) in"
              f" {len(check.entries)} entries")
        return 1
    head = f"seq {check.entries[-1].seq}, MAC {check.entries[-1].hash}" if check.entries \
        else "(empty)"
    print(f"audit log intact: {len(check.entries)} entries, head {head}")
    return 0


def cmd_audit_list(config: Config, args: argparse.Namespace) -> int:
    entries = run(config, lambda s: s.audit.entries(principal(args)))
    emit([audit_entry_view(e) for e in entries[-args.last:]])
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    audit = group(commands, "audit", "the tamper-evident audit log")
    command("verify", cmd_audit_verify,
            "check the audit log's keyed chain and its anchor; names each break", audit)
    sub = command("list", cmd_audit_list, "the last audit entries", audit)
    sub.add_argument("--last", type=int, default=50)
