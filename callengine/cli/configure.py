"""`agent`, `group`, `widget`: what the engine calls with and for whom."""

from __future__ import annotations

import argparse
import json
from typing import Any

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.flow import Strategy
from callengine.services import views
from callengine.services.configuration import KEEP

STRATEGY_HELP = ("the order agents ring in: " + ", ".join(s.value for s in Strategy)
                 + " (docs/config.md)")


def cmd_agent_add(config: Config, args: argparse.Namespace) -> int:
    agent = run(config, lambda s: s.config.add_agent(principal(args), args.name, args.endpoint))
    print(f"agent {agent.name} added ({agent.endpoint})")
    return 0


def cmd_agent_list(config: Config, args: argparse.Namespace) -> int:
    agents = run(config, lambda s: s.config.agents(principal(args)))
    emit([views.agent_view(a) for a in agents])
    return 0


def cmd_agent_edit(config: Config, args: argparse.Namespace) -> int:
    agent = run(config, lambda s: s.config.update_agent(principal(args), args.name,
                                                        endpoint=args.endpoint))
    print(f"agent {agent.name}: endpoint {agent.endpoint}")
    return 0


def cmd_agent_disable(config: Config, args: argparse.Namespace) -> int:
    enabled = args.sub == "enable"
    agent = run(config, lambda s: s.config.update_agent(principal(args), args.name,
                                                        enabled=enabled))
    print(f"agent {agent.name} {'enabled' if agent.enabled else 'disabled: not rung from now'}")
    return 0


def cmd_agent_pause(config: Config, args: argparse.Namespace) -> int:
    paused = args.sub == "pause"
    agent = run(config, lambda s: s.config.update_agent(principal(args), args.name,
                                                        paused=paused))
    print(f"agent {agent.name} {'paused: not rung until resumed' if agent.paused else 'resumed'}")
    return 0


def cmd_agent_remove(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.config.remove_agent(principal(args), args.name))
    print(f"agent {args.name} removed")
    return 0


def cmd_group_add(config: Config, args: argparse.Namespace) -> int:
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    added = run(config, lambda s: s.config.add_group(
        principal(args), args.name, args.strategy, args.ring_timeout, agents,
        accept_digit=_accept_key(args.accept_digit), accept_timeout=args.accept_timeout or 10))
    print(f"group {added.name} added: {', '.join(a.name for a in added.agents)}")
    return 0


def cmd_group_edit(config: Config, args: argparse.Namespace) -> int:
    agents = None if args.agents is None else [
        a.strip() for a in args.agents.split(",") if a.strip()]
    key = KEEP if args.accept_digit is None else _accept_key(args.accept_digit)
    edited = run(config, lambda s: s.config.update_group(
        principal(args), args.name, strategy=args.strategy, ring_timeout=args.ring_timeout,
        agents=agents, accept_digit=key, accept_timeout=args.accept_timeout))
    accept = ("" if edited.accept_digit is None else
              f" press {edited.accept_digit} within {edited.accept_timeout}s,")
    print(f"group {edited.name}: {edited.strategy.value}, ring {edited.ring_timeout}s,{accept}"
          f" {', '.join(a.name for a in edited.agents)}")
    return 0


def _accept_key(value: str | None) -> str | None:
    """--accept-digit: a key, or "off" / "none" to answer without pressing one."""
    return None if value is None or value.lower() in ("off", "none") else value


def cmd_group_remove(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.config.remove_group(principal(args), args.name))
    print(f"group {args.name} removed")
    return 0


def cmd_group_list(config: Config, args: argparse.Namespace) -> int:
    groups = run(config, lambda s: s.config.groups(principal(args)))
    emit([views.group_view(g) for g in groups])
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """--settings (a JSON object) with the per-setting flags given over it."""
    raw: dict[str, Any] = json.loads(args.settings) if args.settings else {}
    for key in ("group", "caller_id", "visitor_endpoint", "default_region", "whisper"):
        value = getattr(args, key)
        if value is not None:
            raw[key] = value
    if args.regions is not None:
        raw["allowed_regions"] = args.regions
    return raw


def cmd_widget_add(config: Config, args: argparse.Namespace) -> int:
    raw = _settings(args)
    widget = run(config, lambda s: s.config.add_widget(principal(args), args.id, args.name, raw))
    if args.quiet:
        print(widget.public_key)
    else:
        emit(views.widget_view(widget))
    return 0


def cmd_widget_list(config: Config, args: argparse.Namespace) -> int:
    widgets = run(config, lambda s: s.config.widgets(principal(args)))
    emit([views.widget_view(w) for w in widgets])
    return 0


def cmd_widget_show(config: Config, args: argparse.Namespace) -> int:
    widget = run(config, lambda s: s.config.widget(principal(args), args.id))
    emit(views.widget_view(widget))
    return 0


def cmd_widget_edit(config: Config, args: argparse.Namespace) -> int:
    """The settings given (flags, --settings) merged over the current ones."""
    raw = _settings(args)
    widget = run(config, lambda s: s.config.edit_widget(principal(args), args.id,
                                                       name=args.name, settings=raw))
    emit(views.widget_view(widget))
    return 0


def cmd_widget_disable(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.config.set_widget_enabled(principal(args), args.id, False))
    print(f"widget {args.id} disabled: it takes no new leads (those it took are still called)")
    return 0


def cmd_widget_enable(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.config.set_widget_enabled(principal(args), args.id, True))
    print(f"widget {args.id} enabled")
    return 0


def cmd_widget_remove(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.config.remove_widget(principal(args), args.id))
    print(f"widget {args.id} removed, with its clause records")
    return 0


def _setting_flags(sub: argparse.ArgumentParser, *, group_required: bool) -> None:
    sub.add_argument("--name")
    sub.add_argument("--group", required=group_required)
    sub.add_argument("--regions", help="countries that may be called, e.g. PL,DE")
    sub.add_argument("--caller-id", dest="caller_id")
    sub.add_argument("--visitor-endpoint", dest="visitor_endpoint",
                     help="dial string with {number}, default PJSIP/{number}@pstn")
    sub.add_argument("--default-region", dest="default_region")
    sub.add_argument("--whisper", help="media played to the agent first, e.g. sound:beep")
    sub.add_argument("--settings", help="further settings as a JSON object (docs/config.md)")


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    agent = group(commands, "agent", "agents (SIP phones)")
    sub = command("add", cmd_agent_add, "add an agent", agent)
    sub.add_argument("name")
    sub.add_argument("endpoint", help="Asterisk dial string, e.g. PJSIP/agent1")
    command("list", cmd_agent_list, "list agents", agent)
    sub = command("edit", cmd_agent_edit, "change an agent's endpoint", agent)
    sub.add_argument("name")
    sub.add_argument("--endpoint", required=True, help="Asterisk dial string")
    for action, text in (("disable", "stop ringing an agent (a call in progress goes on)"),
                         ("enable", "ring a disabled agent again")):
        command(action, cmd_agent_disable, text, agent).add_argument("name")
    for action, text in (("pause", "stop ringing an agent until resumed (as the phone's *45)"),
                         ("resume", "ring a paused agent again")):
        command(action, cmd_agent_pause, text, agent).add_argument("name")
    command("remove", cmd_agent_remove, "remove an agent (refused while in a group)",
            agent).add_argument("name")

    groups = group(commands, "group", "agent groups")
    sub = command("add", cmd_group_add, "add an agent group", groups)
    sub.add_argument("name")
    sub.add_argument("--agents", required=True, help="comma-separated agent names, in order")
    sub.add_argument("--strategy", default="ring-all", help=STRATEGY_HELP)
    sub.add_argument("--ring-timeout", type=int, default=20, help="seconds an agent rings")
    _accept_flags(sub)
    command("list", cmd_group_list, "list agent groups", groups)
    sub = command("edit", cmd_group_edit, "change a group (what is given)", groups)
    sub.add_argument("name")
    sub.add_argument("--agents", help="comma-separated agent names, in order (replaces them)")
    sub.add_argument("--strategy", help=STRATEGY_HELP)
    sub.add_argument("--ring-timeout", type=int, help="seconds an agent rings")
    _accept_flags(sub)
    command("remove", cmd_group_remove, "remove a group (refused while a widget uses it)",
            groups).add_argument("name")

    widget = group(commands, "widget", "website widgets")
    sub = command("add", cmd_widget_add, "add a widget; prints its public key", widget)
    sub.add_argument("id")
    _setting_flags(sub, group_required=True)
    sub.add_argument("-q", "--quiet", action="store_true", help="print only the public key")
    command("list", cmd_widget_list, "list widgets", widget)
    sub = command("show", cmd_widget_show, "show a widget and its settings", widget)
    sub.add_argument("id")
    sub = command("edit", cmd_widget_edit, "change a widget's name or settings (those given"
                  " are merged over the current ones)", widget)
    sub.add_argument("id")
    _setting_flags(sub, group_required=False)
    for name, handler, text in (
            ("disable", cmd_widget_disable, "disable a widget: no new leads (those it took"
             " are still called)"),
            ("enable", cmd_widget_enable, "enable a disabled widget again"),
            ("remove", cmd_widget_remove, "remove a widget and its clause records (refused"
             " while any lead names it: disable it instead)")):
        sub = command(name, handler, text, widget)
        sub.add_argument("id")


def _accept_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--accept-digit", nargs="?", const="1", metavar="KEY",
                     help="the agent must press KEY (alone: 1) after the whisper to take the"
                          " call; off: answering is enough")
    sub.add_argument("--accept-timeout", type=int, metavar="S",
                     help="seconds to press it in, from the prompt's end (default 10)")
