"""`clause add|list|show`: a widget's information clauses (docs/consent.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.services.clauses import clause_admin_view


def _read(source: str) -> str:
    """The exact text: from a file ('-' is stdin), bytes decoded as UTF-8, nothing stripped."""
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    return data.decode("utf-8")


def cmd_clause_add(config: Config, args: argparse.Namespace) -> int:
    data = {"language": args.language, "version": args.clause_version,
            "text": _read(args.text), "privacy_url": args.privacy_url}
    if args.notice_version or args.notice:
        data["recording_notice"] = {"version": args.notice_version,
                                    "text": _read(args.notice) if args.notice else None}
    made = run(config, lambda s: s.clauses.create(principal(args), args.widget, data,
                                                   replace=args.replace))
    print(f"clause {made['language']}/{made['version']} of widget {args.widget}:"
          f" sha256 {made['sha256']}")
    return 0


def cmd_clause_list(config: Config, args: argparse.Namespace) -> int:
    rows = run(config, lambda s: s.clauses.list(principal(args), args.widget, args.language))
    emit([{k: v for k, v in clause_admin_view(r).items() if k != "text"} for r in rows])
    return 0


def cmd_clause_show(config: Config, args: argparse.Namespace) -> int:
    async def show(s):
        await s.clauses.list(principal(args), args.widget)  # the permission check
        return await s.clauses.get(args.widget, args.language, args.clause_version)
    emit(clause_admin_view(run(config, show)))
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    clause = group(commands, "clause", "information clauses shown by a widget")
    sub = command("add", cmd_clause_add, "add a clause version (text from a file or -)", clause)
    sub.add_argument("widget")
    sub.add_argument("--language", required=True)
    sub.add_argument("--version", dest="clause_version", required=True)
    sub.add_argument("--text", required=True, help="file with the exact text, - for stdin")
    sub.add_argument("--privacy-url", required=True)
    sub.add_argument("--notice", help="file with the recording notice's text")
    sub.add_argument("--notice-version")
    sub.add_argument("--replace", action="store_true",
                     help="replace a version no lead has named yet")
    sub = command("list", cmd_clause_list, "list a widget's clause versions", clause)
    sub.add_argument("widget")
    sub.add_argument("--language")
    sub = command("show", cmd_clause_show, "show one clause version with its text", clause)
    sub.add_argument("widget")
    sub.add_argument("--language", required=True)
    sub.add_argument("--version", dest="clause_version", required=True)
