"""`subject export|erase`: data-subject rights (audited)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from callengine.cli.common import AddCommand, group, principal, run
from callengine.config import Config
from callengine.numbers import VisitorNumber, any_number


def cmd_subject_export(config: Config, args: argparse.Namespace) -> int:
    from rich.progress import Progress as Bar

    async def export(services) -> dict[str, Any]:
        with Bar(transient=True) as bar:
            task = bar.add_task("decrypting recordings", total=None)
            return await services.subjects.export(
                principal(args), args.number,
                audio_dir=Path(args.audio) if args.audio else None,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )

    data = run(config, export, args=args, vault=True)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    recordings = sum(len(lead["recordings"]) for lead in data["leads"])
    print(f"exported {len(data['leads'])} lead(s), {recordings} recording(s) for "
          f"{any_number(args.number)}"
          + (f" (audio in {args.audio})" if args.audio else ""), file=sys.stderr)
    return 0


def cmd_subject_erase(config: Config, args: argparse.Namespace) -> int:
    def confirm(number: VisitorNumber) -> bool:
        if not args.yes:
            print(f"this erases everything held about {number}; add --yes to do it",
                  file=sys.stderr)
        return args.yes

    erasure = run(config, lambda s: s.subjects.erase(principal(args), args.number,
                                                     confirm=confirm), args=args, vault=True)
    if erasure is None:
        return 2
    print(f"erased {erasure.leads} lead(s) and crypto-shredded {erasure.recordings} "
          f"recording(s) of {any_number(args.number)}")
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    subject = group(commands, "subject", "data-subject rights")
    sub = command("export", cmd_subject_export,
                  "everything held about a number, as JSON (audited)", subject)
    sub.add_argument("number")
    sub.add_argument("--out", help="write the JSON here (mode 0600) instead of stdout")
    sub.add_argument("--audio", help="also decrypt the recordings into this directory")
    sub.add_argument("--key", action="append", help="private key file (repeatable)")
    sub = command("erase", cmd_subject_erase,
                  "erase everything held about a number (audited)", subject)
    sub.add_argument("number")
    sub.add_argument("--yes", action="store_true", help="really erase")
