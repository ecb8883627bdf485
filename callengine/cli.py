"""`callengine …`: run the engine and manage what it knows (agents, groups, widgets, leads)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from callengine import __version__
from callengine.config import Config, ConfigError, load_config
from callengine.logs import setup_logging
from callengine.model import (
    InvalidInput,
    agent_from_input,
    check_name,
    group_from_input,
    widget_settings_from_input,
)
from callengine.store import Conflict, NotFound, Store
from callengine.web import lead_admin_view, widget_view


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


async def _with_store(config: Config, work: Callable[[Store], Awaitable[Any]]) -> Any:
    async with Store.open(config.database) as store:
        return await work(store)


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from callengine.app import serve

    setup_logging(config.log_level)
    asyncio.run(serve(config))
    return 0


def cmd_check_config(config: Config, args: argparse.Namespace) -> int:
    print(f"configuration OK (store {config.database}, ARI {config.ari.url})")
    return 0


def cmd_db_migrate(config: Config, args: argparse.Namespace) -> int:
    version = asyncio.run(_with_store(config, lambda store: store.schema_version()))
    print(f"store schema at version {version}")
    return 0


def cmd_agent_add(config: Config, args: argparse.Namespace) -> int:
    agent = agent_from_input(args.name, args.endpoint)
    asyncio.run(_with_store(config, lambda store: store.add_agent(agent)))
    print(f"agent {agent.name} added ({agent.endpoint})")
    return 0


def cmd_agent_list(config: Config, args: argparse.Namespace) -> int:
    agents = asyncio.run(_with_store(config, lambda store: store.list_agents()))
    _print([{"name": a.name, "endpoint": a.endpoint, "enabled": a.enabled} for a in agents])
    return 0


def cmd_group_add(config: Config, args: argparse.Namespace) -> int:
    name, strategy, timeout = group_from_input(args.name, args.strategy, args.ring_timeout)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    group = asyncio.run(
        _with_store(config, lambda store: store.add_group(name, strategy, timeout, agents))
    )
    print(f"group {group.name} added: {', '.join(a.name for a in group.agents)}")
    return 0


def cmd_group_list(config: Config, args: argparse.Namespace) -> int:
    groups = asyncio.run(_with_store(config, lambda store: store.list_groups()))
    _print([
        {"name": g.name, "strategy": g.strategy.value, "ring_timeout": g.ring_timeout,
         "agents": [a.name for a in g.agents]}
        for g in groups
    ])
    return 0


def cmd_widget_add(config: Config, args: argparse.Namespace) -> int:
    widget_id = check_name("id", args.id)
    raw: dict[str, Any] = json.loads(args.settings) if args.settings else {}
    for key in ("group", "caller_id", "visitor_endpoint", "default_region", "whisper"):
        value = getattr(args, key)
        if value is not None:
            raw[key] = value
    if args.regions is not None:
        raw["allowed_regions"] = args.regions
    settings = widget_settings_from_input(raw)
    widget = asyncio.run(
        _with_store(
            config,
            lambda store: store.add_widget(widget_id, args.name or widget_id, settings, time.time()),
        )
    )
    if args.quiet:
        print(widget.public_key)
    else:
        _print(widget_view(widget))
    return 0


def cmd_widget_list(config: Config, args: argparse.Namespace) -> int:
    widgets = asyncio.run(_with_store(config, lambda store: store.list_widgets()))
    _print([widget_view(w) for w in widgets])
    return 0


def cmd_lead_list(config: Config, args: argparse.Namespace) -> int:
    leads = asyncio.run(
        _with_store(
            config,
            lambda store: store.list_leads(widget_id=args.widget, status=args.status,
                                           limit=args.limit),
        )
    )
    _print([lead_admin_view(lead) for lead in leads])
    return 0


def cmd_lead_show(config: Config, args: argparse.Namespace) -> int:
    async def show(store: Store) -> dict[str, Any]:
        lead = await store.get_lead(args.id)
        view = lead_admin_view(lead)
        view["attempts_detail"] = [a.__dict__ for a in await store.attempts_for(lead.id)]
        return view

    _print(asyncio.run(_with_store(config, show)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callengine",
        description="Self-hosted, privacy-first call-me-back engine for Asterisk.",
    )
    parser.add_argument("--version", action="version", version=f"callengine {__version__}")
    parser.add_argument(
        "-c", "--config", default=os.environ.get("CALLENGINE_CONFIG", "callengine.toml"),
        help="configuration file (default: $CALLENGINE_CONFIG or ./callengine.toml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[..., int], help_text: str,
                parent: Any = commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("run", cmd_run, "run the engine: ARI controller and HTTP API")
    command("check-config", cmd_check_config, "validate the configuration and secrets")
    command("migrate", cmd_db_migrate, "create or upgrade the store's schema")

    agent = commands.add_parser("agent", help="agents (SIP phones)").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("add", cmd_agent_add, "add an agent", agent)
    sub.add_argument("name")
    sub.add_argument("endpoint", help="Asterisk dial string, e.g. PJSIP/agent1")
    command("list", cmd_agent_list, "list agents", agent)

    group = commands.add_parser("group", help="agent groups").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("add", cmd_group_add, "add an agent group", group)
    sub.add_argument("name")
    sub.add_argument("--agents", required=True, help="comma-separated agent names, in order")
    sub.add_argument("--strategy", default="ring-all", help="ring-all or sequential")
    sub.add_argument("--ring-timeout", type=int, default=20, help="seconds an agent rings")
    command("list", cmd_group_list, "list agent groups", group)

    widget = commands.add_parser("widget", help="website widgets").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("add", cmd_widget_add, "add a widget; prints its public key", widget)
    sub.add_argument("id")
    sub.add_argument("--name")
    sub.add_argument("--group", required=True)
    sub.add_argument("--regions", help="countries that may be called, e.g. PL,DE")
    sub.add_argument("--caller-id", dest="caller_id")
    sub.add_argument("--visitor-endpoint", dest="visitor_endpoint",
                     help="dial string with {number}, default PJSIP/{number}@pstn")
    sub.add_argument("--default-region", dest="default_region")
    sub.add_argument("--whisper", help="media played to the agent first, e.g. sound:beep")
    sub.add_argument("--settings", help="further settings as a JSON object (docs/config.md)")
    sub.add_argument("-q", "--quiet", action="store_true", help="print only the public key")
    command("list", cmd_widget_list, "list widgets", widget)

    lead = commands.add_parser("lead", help="callback requests").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("list", cmd_lead_list, "list leads (numbers masked)", lead)
    sub.add_argument("--widget")
    sub.add_argument("--status", choices=["queued", "calling", "done"])
    sub.add_argument("--limit", type=int, default=50)
    sub = command("show", cmd_lead_show, "one lead with its attempts", lead)
    sub.add_argument("id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        return args.handler(config, args)
    except ConfigError as exc:
        print(f"callengine: {exc}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"callengine: invalid {exc.field}: {exc.message}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"callengine: --settings is not valid JSON: {exc}", file=sys.stderr)
        return 2
    except (NotFound, Conflict) as exc:
        print(f"callengine: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
