"""`audit verify|list`: the tamper-evident audit log."""

from __future__ import annotations

import argparse

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.services.views import audit_entry_view


def cmd_audit_verify(config: Config, args: argparse.Namespace) -> int:
    entries, problem = run(config, lambda s: s.audit.verify())
    if problem:
        print(f"audit log BROKEN: {problem}")
        return 1
    head = entries[-1].hash if entries else "(empty)"
    print(f"audit log intact: {len(entries)} entries, head {head}")
    return 0


def cmd_audit_list(config: Config, args: argparse.Namespace) -> int:
    entries = run(config, lambda s: s.audit.entries(principal(args)))
    emit([audit_entry_view(e) for e in entries[-args.last:]])
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    audit = group(commands, "audit", "the tamper-evident audit log")
    command("verify", cmd_audit_verify, "check the audit log's hash chain", audit)
    sub = command("list", cmd_audit_list, "the last audit entries", audit)
    sub.add_argument("--last", type=int, default=50)
