"""`webhook add|list|update|remove|rotate|deliveries|attempts|replay`: the CRMs' webhook
endpoints and their deliveries (docs/webhooks.md)."""

from __future__ import annotations

import argparse
import sys

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.hooks.events import DELIVERY_STATUSES, EVENT_TYPES, ROTATION_GRACE_S


def _with_secret(made: dict) -> int:
    secret = made.pop("secret")
    emit(made)
    print(secret)
    print(f"webhook {made['id']}: its secret is shown only now", file=sys.stderr)
    return 0


def cmd_add(config: Config, args: argparse.Namespace) -> int:
    data = {"url": args.url, "description": args.description,
            "full_numbers": args.full_numbers}
    if args.event:
        data["events"] = args.event
    return _with_secret(run(config, lambda s: s.webhooks.add(principal(args), data)))


def cmd_list(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.webhooks.list(principal(args))))
    return 0


def cmd_update(config: Config, args: argparse.Namespace) -> int:
    data = {"url": args.url, "events": args.event or None,
            "full_numbers": args.full_numbers, "enabled": args.enabled}
    emit(run(config, lambda s: s.webhooks.update(
        principal(args), args.id, {k: v for k, v in data.items() if v is not None})))
    return 0


def cmd_remove(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.webhooks.remove(principal(args), args.id))
    print(f"webhook {args.id} removed, with its deliveries")
    return 0


def cmd_rotate(config: Config, args: argparse.Namespace) -> int:
    return _with_secret(run(config, lambda s: s.webhooks.rotate(
        principal(args), args.id, args.grace)))


def cmd_deliveries(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.webhooks.deliveries(
        principal(args), endpoint_id=args.endpoint, status=args.status, limit=args.limit)))
    return 0


def cmd_attempts(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.webhooks.attempts(principal(args), args.delivery)))
    return 0


def cmd_replay(config: Config, args: argparse.Namespace) -> int:
    count = run(config, lambda s: s.webhooks.replay(
        principal(args), delivery_id=args.delivery, endpoint_id=args.endpoint))
    print(f"{count} delivery(ies) queued again")
    return 0


def _flag(value: str) -> bool:
    if value not in ("yes", "no"):
        raise argparse.ArgumentTypeError("yes or no")
    return value == "yes"


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    hook = group(commands, "webhook", "webhooks for CRMs: endpoints, secrets, deliveries")
    events = [*EVENT_TYPES, "*"]
    sub = command("add", cmd_add, "add an endpoint (its secret printed once)", hook)
    sub.add_argument("url")
    sub.add_argument("--event", action="append", choices=events,
                     help="an event to send (repeat; default: all)")
    sub.add_argument("--description", default="")
    sub.add_argument("--full-numbers", action="store_true",
                     help="send the full number (each such delivery audited); default masked")
    command("list", cmd_list, "list the endpoints (never their secrets)", hook)
    sub = command("update", cmd_update, "change an endpoint", hook)
    sub.add_argument("id")
    sub.add_argument("--url")
    sub.add_argument("--event", action="append", choices=events)
    sub.add_argument("--full-numbers", type=_flag, metavar="yes|no")
    sub.add_argument("--enabled", type=_flag, metavar="yes|no")
    sub = command("remove", cmd_remove, "remove an endpoint and its deliveries", hook)
    sub.add_argument("id")
    sub = command("rotate", cmd_rotate, "a new secret (printed once); the old one signs too"
                  " for the grace period", hook)
    sub.add_argument("id")
    sub.add_argument("--grace", type=float, default=ROTATION_GRACE_S,
                     help=f"seconds the old secret stays valid (default {ROTATION_GRACE_S})")
    sub = command("deliveries", cmd_deliveries, "list deliveries, newest first", hook)
    sub.add_argument("--status", choices=DELIVERY_STATUSES)
    sub.add_argument("--endpoint")
    sub.add_argument("--limit", type=int, default=100)
    sub = command("attempts", cmd_attempts, "a delivery's attempts", hook)
    sub.add_argument("delivery")
    sub = command("replay", cmd_replay, "queue a delivery again, or an endpoint's dead ones", hook)
    which = sub.add_mutually_exclusive_group(required=True)
    which.add_argument("--delivery")
    which.add_argument("--endpoint")
