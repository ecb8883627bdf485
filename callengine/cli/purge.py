"""`purge`: leads and recordings past their widget's retention periods."""

from __future__ import annotations

import argparse
import time
from typing import Any

from callengine.cli.common import AddCommand, run
from callengine.config import Config


def cmd_purge(config: Config, args: argparse.Namespace) -> int:
    from rich.progress import Progress as Bar

    async def purge(services):
        with Bar(transient=True) as bar:
            tasks: dict[str, Any] = {}

            def progress(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(f"purging {what}", total=total)
                bar.update(tasks[what], completed=done)

            return await services.purge(time.time(), dry_run=args.dry_run, progress=progress,
                                        outbox=config.outbox_retention)

    report = run(config, purge, args=args, vault=True)
    for widget_id, (leads, recordings) in sorted(report.by_widget.items()):
        print(f"  widget {widget_id}: {leads} expired lead(s), {recordings} expired recording(s)")
    print(report.summary())
    return 1 if report.skipped else 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    sub = command("purge", cmd_purge,
                  "purge leads and recordings past their widget's retention periods")
    sub.add_argument("--dry-run", action="store_true", help="only say what would go")
